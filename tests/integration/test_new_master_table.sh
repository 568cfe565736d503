#!/usr/bin/env bash
# test_new_master_table.sh - the promise of examples/new-master-table: a
# fifth master table (brand_master) is a migration, a YAML file and a few
# lines of Lua, run by the binary as built, with no rebuild. Migrate up with
# the example's migration added; ingot check passes against the live
# schema; the sample CSV imports with partial success (exact good rows,
# slugs from the hook, bad rows named with column and reason); a re-run
# changes nothing; migrate down 1 removes the table.
source "$(dirname "$0")/lib.sh"
EX=examples/new-master-table
PIPE=$EX/pipelines/brand_master.yaml

# The engine knows nothing of the new table: nothing to rebuild.
if grep -rq brand_master src/; then
  fail "src/ mentions brand_master: the example must not need engine changes"
fi

# --- migrate: the shipped migrations plus the example's ------------------
mkdir "$IT_TMP/migrations"
cp migrations/*.sql "$EX"/migrations/0100_brand_master.sql "$IT_TMP/migrations/"
run_ingot 0 migrate up --migrations-dir "$IT_TMP/migrations"
assert_contains "$OUT" "0100_brand_master" "example migration applied"
assert_eq "brand_master_name_live_key,brand_master_slug_live_key" \
  "$(sql "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'brand_master' AND indexdef LIKE '%UNIQUE%WHERE (deleted_at IS NULL)%'")" \
  "partial unique indexes on name and slug"

# --- check against the live schema ---------------------------------------
run_ingot 0 check "$PIPE"
assert_contains "$OUT" "ok: $PIPE" "check passes against the database"
assert_contains "$OUT" "hooks: hooks.brands" "check loads the example's hook"
assert_not_contains "$OUT" "database not checked" "check used the database"

# --- partial success -----------------------------------------------------
cp "$EX/brands.csv" "$IT_TMP/brands.csv"
run_ingot 1 run "$PIPE" "$IT_TMP/brands.csv"
assert_contains "$OUT" "18 inserted" "good rows inserted"
assert_contains "$OUT" "2 failed" "bad rows counted"
assert_contains "$OUT" "row 14 (line 15): brand_master.country [enum] \"UK\" is not one of" "UK refused by the enum, with row, line and column"
assert_contains "$OUT" "row 17 (line 18): website [HOOK] expected scheme://host" "website refused by the hook"
assert_contains "$OUT" "expected scheme://host" "hook's reason reported"
rej="$IT_TMP/brands.csv.rejects.csv"
[ -f "$rej" ] || fail "reject file written"
assert_eq "3" "$(wc -l < "$rej" | tr -d ' ')" "reject file: header + 2 rows"
assert_contains "$(cat "$rej")" '"Thames Tailors","UK"' "reject file keeps the input values"
assert_contains "$(cat "$rej")" '"www.tatra-trail.example.sk"' "reject file keeps the bad website"

assert_eq "18" "$(sql "SELECT count(*) FROM brand_master")" "exactly the good rows"
assert_eq "" "$(sql "SELECT name FROM brand_master WHERE name IN ('Thames Tailors', 'Tatra Trail')")" "no bad row committed"
got=$(sql "SELECT string_agg(name || '|' || slug || '|' || coalesce(country, '-') || '|' || coalesce(website, '-'), E'\n' ORDER BY slug) FROM brand_master")
want="Åsa Design|asa-design|SE|https://asa-design.example.se
Atlas Leather|atlas-leather|MA|https://atlas-leather.example.ma
Bianchi, Rossi & Co.|bianchi-rossi-co|IT|https://bianchi-rossi.example.it
Crème de la Crème|creme-de-la-creme|FR|https://creme.example.fr/shop
Dublin Knit|dublin-knit|IE|https://dublinknit.example.ie
Fjell|fjell|NO|https://fjell.example.no
Harbor & Pine|harbor-pine|US|https://www.harborandpine.example
Kiwi Merino|kiwi-merino|NZ|https://kiwimerino.example.nz
Łódź Textiles|lodz-textiles|PL|http://lodz-textiles.example.pl
Maison Léa|maison-lea|FR|https://maison-lea.example.fr
Nordkapp Outdoor|nordkapp-outdoor|NO|-
Northwind|northwind|US|https://northwind.example.com
Okayama Denim|okayama-denim|JP|https://okayama-denim.example.jp
Outback Gear|outback-gear|AU|https://outback-gear.example.com.au
São Paulo Surf|sao-paulo-surf|BR|https://saopaulosurf.example.com.br
Straße & Söhne|strasse-sohne|DE|https://strasse-soehne.example.de
Urban Thread|urban-thread|CA|https://urbanthread.example.ca
Zürich Watch Co.|zurich-watch-co|CH|https://zurich-watch.example.ch"
assert_eq "$want" "$got" "rows as stored: names squished, slugs from the hook, countries upper-cased, websites trimmed"

# --- the same file again: nothing changes --------------------------------
t0=$(sql "SELECT max(updated_at) FROM brand_master")
run_ingot 1 run "$PIPE" "$IT_TMP/brands.csv" --json --no-reject-file
assert_contains "$OUT" '"inserted": 0' "second run inserts nothing"
assert_contains "$OUT" '"updated": 0' "second run updates nothing"
assert_contains "$OUT" '"unchanged": 18' "second run: all good rows unchanged"
assert_contains "$OUT" '"failed": 2' "second run: the same two rows fail"
assert_eq "$t0" "$(sql "SELECT max(updated_at) FROM brand_master")" "updated_at untouched"

# --- fixing a bad row, and the slug's own unique index -------------------
printf 'name,country,website\nThames Tailors,GB,https://thames-tailors.example.co.uk\n' > "$IT_TMP/fix.csv"
run_ingot 0 run "$PIPE" "$IT_TMP/fix.csv" --json
assert_contains "$OUT" '"inserted": 1' "fixed row imports"
assert_eq "thames-tailors|GB" "$(sql "SELECT slug || '|' || country FROM brand_master WHERE name = 'Thames Tailors'")" "fixed row stored"
# a different name with the same slug is refused by the database, alone
printf 'name,country,website\nMaison Lea,FR,\nNew Brand,FR,\n' > "$IT_TMP/slug.csv"
run_ingot 1 run "$PIPE" "$IT_TMP/slug.csv" --json --no-reject-file
assert_contains "$OUT" '"inserted": 1' "the other row of the batch lands"
assert_contains "$OUT" '"code": "23505"' "slug clash is a unique violation"
assert_contains "$OUT" '"constraint": "brand_master_slug_live_key"' "slug index named"

# --- down removes the table ----------------------------------------------
run_ingot 0 migrate down 1 --migrations-dir "$IT_TMP/migrations"
assert_contains "$OUT" "reverted 0100_brand_master" "example migration reverted"
assert_eq "" "$(sql "SELECT to_regclass('brand_master')")" "brand_master dropped"
assert_eq "item_master" "$(sql "SELECT to_regclass('item_master')")" "the seed's tables stay"
