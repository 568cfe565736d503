#!/usr/bin/env bash
# test_items_example.sh - the shipped sample data through the shipped items
# pipeline and hook: examples/items.csv imports whole (42 variants, colours
# and sizes normalised by lua/hooks/items.lua), then
# examples/items_with_errors.csv imports in part (exit 1): its five bad rows
# are reported with row, line, column and reason and nothing of them is
# written; its ten good rows are.
source "$(dirname "$0")/lib.sh"
run_ingot 0 migrate up

# --- examples/items.csv: everything lands --------------------------------
cp examples/items.csv examples/items_with_errors.csv "$IT_TMP/"
run_ingot 0 run items "$IT_TMP/items.csv"
assert_contains "$OUT" "42 rows" "42 rows read"
assert_contains "$OUT" "42 inserted, 0 updated, 0 unchanged, 0 skipped, 0 failed" "all 42 inserted"
assert_eq "" "$(ls "$IT_TMP"/items.csv.rejects.csv 2>/dev/null)" "no reject file"
assert_eq "42" "$(sql "SELECT count(*) FROM item_variant")" "42 variants"
assert_eq "7" "$(sql "SELECT count(*) FROM item_master")" "7 items"
# the hook: "white" -> "White", "Grey" -> "Gray", "navy" -> "Navy Blue";
# the pipeline's upper transform: "#2e5e3a" -> "#2E5E3A"
assert_eq "Black=#111111,Forest Green=#2E5E3A,Gray=#8A8D91,Navy Blue=#1F2A44,White=#FFFFFF" \
  "$(sql "SELECT string_agg(color_name || '=' || color_code, ',' ORDER BY color_name) FROM color_master")" \
  "colours normalised"
# the hook: "small" -> "S", "Medium" -> "M"
assert_eq "L,M,S,XL" "$(sql "SELECT string_agg(size_name, ',' ORDER BY size_name) FROM size_master")" "sizes normalised"
assert_eq "Classic Tee|White|S|89.00|93" \
  "$(sql "SELECT i.name || '|' || c.color_name || '|' || s.size_name || '|' || v.price || '|' || v.stock
          FROM item_variant v JOIN item_master i ON i.id = v.item_id
          JOIN color_master c ON c.id = v.color_id JOIN size_master s ON s.id = v.size_id
          WHERE v.sku = 'CT-WHI-SM'")" \
  "a variant joined to its normalised parents"
assert_eq "Crème Hoodie|Maison Léa" "$(sql "SELECT name || '|' || brand FROM item_master WHERE name LIKE 'Cr%'")" "UTF-8 kept"

# --- examples/items_with_errors.csv: partial success ---------------------
run_ingot 1 run items "$IT_TMP/items_with_errors.csv"
assert_contains "$OUT" "15 rows" "15 rows read"
assert_contains "$OUT" "9 inserted, 1 updated, 0 unchanged, 0 skipped, 5 failed" "counts"
assert_contains "$OUT" 'row 4 (line 5): item_variant.price [min] "-5.00" is less than the minimum 0' "negative price"
assert_contains "$OUT" 'row 7 (line 8): color_master.color_code [pattern] "#SANDY1" does not match' "bad colour code"
assert_contains "$OUT" 'row 10 (line 11): size_master.size_name [required] a value is required' "missing size"
assert_contains "$OUT" 'row 11 (line 12): item_variant [DUPLICATE_KEY] duplicate key (item_id, color_id, size_id) in this import: row 2 has the same key' \
  "duplicate variant (Navy/XL after navy/x-large) names the first row"
assert_contains "$OUT" 'row 14 (line 15): [CSV_RAGGED]' "ragged row"
assert_contains "$OUT" '11 fields, expected 10' "ragged row's reason"
rej="$IT_TMP/items_with_errors.csv.rejects.csv"
[ -f "$rej" ] || fail "reject file written"
assert_eq "6" "$(wc -l < "$rej" | tr -d ' ')" "reject file: header + 5 rows"

# nothing of a failed row reached the database, not even its parents
assert_eq "0" "$(sql "SELECT count(*) FROM item_variant WHERE sku IN ('LS-WHI-ME','CT-TOTE-SAN','TS-NAV-XX','LS-NAV-XL2')")" "no bad variant"
assert_eq "0" "$(sql "SELECT count(*) FROM color_master WHERE color_name = 'Sand'")" "bad row's colour not created"
assert_eq "89.99|210" "$(sql "SELECT price || '|' || stock FROM item_variant WHERE sku = 'WB-NAV-L'")" "ragged row did not touch its variant"
# the good rows are there, normalised
assert_eq "51" "$(sql "SELECT count(*) FROM item_variant")" "42 + 9 new variants"
assert_eq "CT-TOTE-BLA|Black|ONE SIZE|29.00
CT-TOTE-NAT|Natural|ONE SIZE|29.00
LS-LGR-ME|Light Gray|M|49.00
LS-NAV-XL|Navy Blue|XL|49.00
LS-OFW-SM|Off White|S|49.00
RP-GRE-L|Gray|L|89.50
TS-GRE-42|Gray|42|12.50
TS-GRE-44|Gray|44|12.50
WB-BLA-SM|Black|S|39.00" \
  "$(sql "SELECT v.sku || '|' || c.color_name || '|' || s.size_name || '|' || v.price
          FROM item_variant v JOIN color_master c ON c.id = v.color_id
          JOIN size_master s ON s.id = v.size_id
          WHERE v.sku NOT IN (SELECT sku FROM item_variant ORDER BY id LIMIT 42)
          ORDER BY v.sku")" \
  "new variants: aliases, hex codes, decimal commas and 'one size' normalised"
assert_eq "#F5F5DC" "$(sql "SELECT color_code FROM color_master WHERE color_name = 'Off White'")" "'f5f5dc' -> '#F5F5DC'"
assert_eq "79.00" "$(sql "SELECT price FROM item_variant WHERE sku = 'CT-WHI-XL'")" "existing variant updated"
