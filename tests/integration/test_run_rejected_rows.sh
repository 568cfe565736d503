#!/usr/bin/env bash
# test_run_rejected_rows.sh - rows the database rejects, many of them: the
# row pass finds each one with PostgreSQL's reason, in one try per row
# (not a bisection's many), every good row lands with the counts a clean
# import gives, and rows that fail only together still go through
# bisection. (How much faster than bisection: bench/rejects.sh.)
source "$(dirname "$0")/lib.sh"
run_ingot 0 migrate up
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

# --- a fifth of a four-table import breaks a CHECK no rule knows of -------
python3 "$ROOT/bench/gen.py" variants 600 "$IT_TMP/v.csv"
bad=$(python3 -c 'import csv,sys; print(sum(1 for r in csv.DictReader(open(sys.argv[1])) if int(r["stock"]) % 5 == 0))' "$IT_TMP/v.csv")
[ "$bad" -gt 60 ] || fail "the generated file has $bad rows to reject, expected over 60"
good=$((600 - bad))

# The counts of a clean import of the good rows alone, for comparison.
python3 -c '
import csv, sys
r = csv.reader(open(sys.argv[1])); w = csv.writer(open(sys.argv[2], "w", newline=""), lineterminator="\n")
h = next(r); w.writerow(h)
for row in r:
    if int(row[h.index("stock")]) % 5: w.writerow(row)' "$IT_TMP/v.csv" "$IT_TMP/good.csv"
run_ingot 0 run "$ROOT/pipelines/items.yaml" "$IT_TMP/good.csv" --json --batch-size 200
# (A parent's unchanged and skipped split its rows by batch, and the
# batches differ once rows fail: their sum is what must agree.)
outcome() { jq -S '{counts: (.counts | del(.read) | .failed = 0), targets: [.targets[] | {name, inserted, updated, rows: (.inserted + .updated + .unchanged + .skipped)}]}'; }
outcome <<<"$OUT" >"$IT_TMP/clean.json"
sql "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE"

sql "ALTER TABLE item_variant ADD CONSTRAINT stock_not_fives CHECK (stock % 5 <> 0)"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$ROOT/pipelines/items.yaml" "$IT_TMP/v.csv" --json --batch-size 200
assert_eq "$bad" "$(jq '.counts.failed' <<<"$OUT")" "every rejected row reported"
assert_eq "$good" "$(jq '.counts.inserted' <<<"$OUT")" "every good row inserted"
assert_eq "$bad" "$(jq '[.failed_rows[] | select(.reasons[0].code == "23514" and .reasons[0].constraint == "stock_not_fives" and .reasons[0].target == "item_variant" and (.reasons[0].message | startswith("new row for relation \"item_variant\" violates check constraint \"stock_not_fives\"")))] | length' <<<"$OUT")" \
  "each failed row carries SQLSTATE, constraint, target and PostgreSQL's message"
assert_eq "[]" "$(jq -c '[.failed_rows[] | select((.values[9] | tonumber) % 5 != 0)]' <<<"$OUT")" "only rows breaking the constraint failed"
assert_eq "$good|0" "$(sql "SELECT count(*), count(*) FILTER (WHERE stock % 5 = 0) FROM item_variant")" "the good rows, and only they, are in the table"
assert_eq "$(cat "$IT_TMP/clean.json")" "$(outcome <<<"$OUT")" \
  "per-target counts as a clean import of the good rows gives them"
# Found by the row pass, one pass per batch that failed (the debug log
# says so), not by splitting batches in two.
assert_contains "$ERR" "row pass: " "the row pass isolated the rows"
assert_eq "$bad" "$(grep -o 'row pass: [0-9]* of' <<<"$ERR" | awk '{ s += $3 } END { print s }')" "the row passes found every rejected row"

# --- rows that fail only together: the row pass finds none, bisection does
sql "CREATE FUNCTION at_most_40() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN
       IF (SELECT count(*) FROM new_rows) > 40 THEN
         RAISE EXCEPTION 'more than 40 colours in one statement';
       END IF;
       RETURN NULL;
     END \$\$"
sql "CREATE TRIGGER at_most_40 AFTER INSERT ON color_master REFERENCING NEW TABLE AS new_rows
     FOR EACH STATEMENT EXECUTE FUNCTION at_most_40()"
python3 -c '
print("name,code")
for i in range(200): print("Colour %03d,#%06X" % (i, i))' >"$IT_TMP/c.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$ROOT/tests/data/run/colors.yaml" "$IT_TMP/c.csv" --json
assert_contains "$ERR" "the row pass found no row failing alone; bisecting" "bisection takes over when no row fails alone"
assert_eq "200|0" "$(jq -r '"\(.counts.inserted)|\(.counts.failed)"' <<<"$OUT")" "all 200 colours land, in subsets of at most 40"
assert_eq "200" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 'Colour %'")" "all 200 colours in the table"

# --- duplicates: last: the pass tries only the row the upsert applies -----
# An earlier row of a key is skipped, as in a batch nothing rejects, even
# when its own values would be rejected and other rows of its batch are.
sql "ALTER TABLE color_master ADD CONSTRAINT no_bad_codes CHECK (color_code NOT LIKE '#BAD%')"
python3 -c '
print("name,code")
print("Twice,#BAD000")
for i in range(20): print("Bad %02d,#BAD0%02d" % (i, i))
for i in range(10): print("Fine %02d,#00FF%02d" % (i, i))
print("Twice,#00FF00")' >"$IT_TMP/d.csv"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$ROOT/tests/data/run/colors.yaml" "$IT_TMP/d.csv" --json
assert_contains "$ERR" "row pass: 20 of 32 rows failed" "one row pass found the 20 bad rows"
assert_eq "11|1|20" "$(jq -r '"\(.counts.inserted)|\(.counts.skipped)|\(.counts.failed)"' <<<"$OUT")" "the first 'Twice' skipped, not failed"
assert_eq "[]" "$(jq -c '[.failed_rows[] | select(.values[0] | startswith("Bad") | not)]' <<<"$OUT")" "only the Bad rows failed"
assert_eq "#00FF00" "$(sql "SELECT color_code FROM color_master WHERE color_name = 'Twice'")" "the last 'Twice' landed"

# --- ... and in a parent target, the row still makes its child ------------
# items.yaml: the first "Tee" row's item values break a CHECK on
# item_master, the second "Tee" row's do not. A batch keeps the second
# row's item and inserts both variants; so must a batch that another row's
# failure sends to the row pass.
sql "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE"
sql "ALTER TABLE item_variant DROP CONSTRAINT stock_not_fives"
sql "ALTER TABLE item_master ADD CONSTRAINT no_bad_brand CHECK (brand <> 'Bad')"
python3 -c '
print("item_name,description,category,brand,color,color_code,size,sku,price,stock")
print("Tee,Tee,Tops,Bad,Red,#CC0000,S,TEE-1,10.00,1")
print("Tee,Tee,Tops,Good,Red,#CC0000,M,TEE-2,10.00,1")
print("Other,Other,Tops,Bad,Red,#CC0000,S,OTH-1,10.00,1")
for i in range(20): print("Item %02d,Item,Tops,Good,Red,#CC0000,S,IT-%02d,10.00,1" % (i, i))' >"$IT_TMP/p.csv"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$ROOT/pipelines/items.yaml" "$IT_TMP/p.csv" --json
assert_contains "$ERR" "row pass: 1 of 23 rows failed" "the row pass found the one bad row"
assert_eq '["OTH-1"]' "$(jq -c '[.failed_rows[].values[7]]' <<<"$OUT")" "only the unrelated row failed"
assert_eq "Good|TEE-1,TEE-2" "$(sql "SELECT m.brand, string_agg(v.sku, ',' ORDER BY v.sku) FROM item_master m JOIN item_variant v ON v.item_id = m.id WHERE m.name = 'Tee' GROUP BY m.brand")" "both Tee variants, the last Tee item"

# --- rows a batch leaves out write nothing in the pass either -------------
# A row whose lookup finds no parent fails as MISSING_PARENT and writes
# nothing, so its size (XL) does not collide with a later row's (xl)
# under a case-insensitive unique index.
sql "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE"
sql "CREATE UNIQUE INDEX size_ci ON size_master (lower(size_name))"
sql "INSERT INTO item_master (name) VALUES ('Shirt')"
sql "INSERT INTO color_master (color_name) VALUES ('Red')"
cat >"$IT_TMP/sv.yaml" <<'YAML'
targets:
  - table: size_master
    key: [size_name]
    key_predicate: deleted_at IS NULL
    columns:
      size_name: { from: size }
  - table: item_variant
    key: [item_id, color_id, size_id]
    key_predicate: deleted_at IS NULL
    columns:
      item_id:  { lookup: { table: item_master, key: name, from: item, predicate: deleted_at IS NULL } }
      color_id: { lookup: { table: color_master, key: color_name, from: color, predicate: deleted_at IS NULL } }
      size_id:  { lookup: { target: size_master, from: size } }
      sku:      { from: sku }
      price:    { from: price, type: numeric }
YAML
python3 -c '
print("item,color,size,sku,price")
print("Nope,Red,XL,NOPE-1,1")
print("Shirt,Red,xl,SH-XL,1")
for i in range(20): print("Shirt,Red,S%02d,SH-%02d,1" % (i, i))
print("Shirt,Red,S99,SH-NEG,-1")' >"$IT_TMP/sv.csv"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$IT_TMP/sv.yaml" "$IT_TMP/sv.csv" --json
assert_eq '[["NOPE-1","MISSING_PARENT"],["SH-NEG","23514"]]' "$(jq -c '[.failed_rows[] | [.values[3], .reasons[0].code]]' <<<"$OUT")" "the missing parent and the bad price fail, nothing else"
assert_eq "21" "$(sql "SELECT count(*) FROM item_variant")" "the 21 good variants landed"
assert_eq "xl" "$(sql "SELECT size_name FROM size_master WHERE lower(size_name) = 'xl'")" "the missing-parent row's size was not written"

# --- a pass longer than the statement timeout: bisection finishes ---------
sql "TRUNCATE item_variant, item_master, color_master, size_master RESTART IDENTITY CASCADE"
sql "ALTER TABLE item_master DROP CONSTRAINT no_bad_brand"
sql "ALTER TABLE item_variant ADD CONSTRAINT stock_not_fives CHECK (stock % 5 <> 0)"
sql "CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS \$\$
     BEGIN IF pg_trigger_depth() = 1 AND current_query() LIKE '%ingot_rows%' THEN PERFORM pg_sleep(0.01); END IF; RETURN NEW; END \$\$"
sql "CREATE TRIGGER slow_row BEFORE INSERT ON item_variant FOR EACH ROW EXECUTE FUNCTION slow_row()"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$ROOT/pipelines/items.yaml" "$IT_TMP/v.csv" --json --batch-size 200 --statement-timeout 1000
assert_contains "$ERR" "the row pass could not isolate rows: canceling statement due to statement timeout" "the pass hit the statement timeout"
assert_eq "$bad|$good" "$(jq -r '"\(.counts.failed)|\(.counts.inserted)"' <<<"$OUT")" "bisection still isolated every bad row"

# --- one key, many bad rows (duplicates: last): one pass, not one a row ---
# The pass walks each key's rows from the last back until one applies.
sql "CREATE TABLE dup_keys (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
     k text NOT NULL UNIQUE, v integer CHECK (v >= 0))"
cat >"$IT_TMP/dk.yaml" <<'YAML'
targets:
  - table: dup_keys
    key: [k]
    duplicates: last
    columns:
      k: { from: k }
      v: { from: v, type: int }
YAML
python3 -c '
print("k,v")
for i in range(600): print("same,-1" if i % 2 == 0 else "k%03d,%d" % (i, i))
print("same,7")
for v in (-2, -3, -4): print("same,%d" % v)' >"$IT_TMP/dk.csv"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$IT_TMP/dk.yaml" "$IT_TMP/dk.csv" --json
assert_eq "1" "$(grep -c 'row pass: ' <<<"$ERR")" "one row pass for the whole batch"
assert_eq "301|300" "$(jq -r '"\(.counts.inserted)|\(.counts.skipped)"' <<<"$OUT")" "the 300 good keys and the last good 'same'; the earlier 300 'same' rows skipped"
assert_eq '[602,603,604]' "$(jq -c '[.failed_rows[].row]' <<<"$OUT")" "the last three 'same' rows failed, the one before them applies"
assert_eq "7" "$(sql "SELECT v FROM dup_keys WHERE k = 'same'")" "the last 'same' that applies landed"

# --- a deferred constraint is checked per statement, its rows isolated ----
sql "CREATE TABLE def_parent (id integer PRIMARY KEY)"
sql "INSERT INTO def_parent SELECT generate_series(1, 10)"
sql "CREATE TABLE def_child (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
     k text NOT NULL UNIQUE, p integer REFERENCES def_parent (id) DEFERRABLE INITIALLY DEFERRED)"
cat >"$IT_TMP/df.yaml" <<'YAML'
targets:
  - table: def_child
    key: [k]
    columns:
      k: { from: k }
      p: { from: p, type: int }
YAML
python3 -c '
print("k,p")
for i in range(30): print("c%02d,%d" % (i, 99 if i == 17 else 1 + i % 10))' >"$IT_TMP/df.csv"
run_ingot 1 run "$IT_TMP/df.yaml" "$IT_TMP/df.csv" --json --dry-run
assert_eq "29|1|23503" "$(jq -r '"\(.counts.inserted)|\(.counts.failed)|\(.failed_rows[0].reasons[0].code)"' <<<"$OUT")" "a dry run reports the deferred foreign key's row"
run_ingot 1 run "$IT_TMP/df.yaml" "$IT_TMP/df.csv" --json
assert_eq "29|1|c17" "$(jq -r '"\(.counts.inserted)|\(.counts.failed)|\(.failed_rows[0].values[0])"' <<<"$OUT")" "the deferred foreign key's row fails, the rest land"
assert_eq "29" "$(sql "SELECT count(*) FROM def_child")" "29 rows committed"

# --- bisection (subsets under 16 rows) keeps a key's rows together --------
# Under duplicates: last a part holding some of a key's rows would apply
# an earlier row than the batch: a superseded bad row failing, a key's
# earlier row going in (and, under on_conflict: error, its last row
# failing as if the key had existed).
sql "CREATE TABLE small_keys (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
     k text NOT NULL UNIQUE, v integer CHECK (v < 1000))"
for oc in update error; do
  cat >"$IT_TMP/sk_$oc.yaml" <<YAML
targets:
  - table: small_keys
    key: [k]
    duplicates: last
    on_conflict: $oc
    columns:
      k: { from: k }
      v: { from: v, type: int }
YAML
  for case in "a,1 b,5000 a,2|2:23514|1|1|a=2" \
              "z,1 b,5000 b,2 c,5000|4:23514|2|1|b=2 z=1" \
              "a,1 a,2 a,5000|3:23514|1|1|a=2"; do
    IFS='|' read -r rows want_failed want_ins want_skip want_table <<<"$case"
    { echo "k,v"; tr ' ' '\n' <<<"$rows"; } >"$IT_TMP/sk.csv"
    sql "TRUNCATE small_keys"
    run_ingot 1 run "$IT_TMP/sk_$oc.yaml" "$IT_TMP/sk.csv" --json
    assert_eq "$want_failed" "$(jq -r '[.failed_rows[] | "\(.row):\(.reasons[0].code)"] | join(" ")' <<<"$OUT")" \
      "on_conflict $oc, rows $rows: only the bad row the batch applies fails"
    assert_eq "$want_ins|$want_skip" "$(jq -r '"\(.counts.inserted)|\(.counts.skipped)"' <<<"$OUT")" \
      "on_conflict $oc, rows $rows: inserted and skipped as in one batch"
    assert_eq "$want_table" "$(sql "SELECT string_agg(k || '=' || v, ' ' ORDER BY k) FROM small_keys")" \
      "on_conflict $oc, rows $rows: each key holds the row the batch keeps"
  done
done

# A small batch of items.yaml that repeats a colour and holds a row
# PostgreSQL rejects: the colour is written once, with its last row's
# values (inserted once, the other row skipped, as in a batch without the
# rejected row), and the same file again changes nothing.
printf 'item_name,description,category,brand,color,color_code,size,sku,price,stock\nRcZ,z,c1,b1,Rc Green,#00FF00,S,RC-TAKEN,1.00,1\n' >"$IT_TMP/rc0.csv"
run_ingot 0 run "$ROOT/pipelines/items.yaml" "$IT_TMP/rc0.csv" --no-reject-file
cat >"$IT_TMP/rc.csv" <<'CSV'
item_name,description,category,brand,color,color_code,size,sku,price,stock
RcA,d1,c1,b1,Rc Red,#FF0000,S,RC-A-1,1.00,1
RcA,d1,c1,b1,Rc Blue,#0000FF,M,RC-TAKEN,1.00,1
RcB,e1,c1,b1,Rc Red,#FF0001,L,RC-B-1,1.00,1
CSV
run_ingot 1 run "$ROOT/pipelines/items.yaml" "$IT_TMP/rc.csv" --json --no-reject-file
assert_eq "2:23505" "$(jq -r '[.failed_rows[] | "\(.row):\(.reasons[0].code)"] | join(" ")' <<<"$OUT")" "the row with a taken SKU fails"
assert_eq "1|0|1" "$(jq -r '.targets[] | select(.name == "color_master") | "\(.inserted)|\(.updated)|\(.skipped)"' <<<"$OUT")" "the repeated colour written once"
assert_eq "#FF0001" "$(sql "SELECT color_code FROM color_master WHERE color_name = 'Rc Red'")" "with its last row's values"
t_red=$(sql "SELECT updated_at FROM color_master WHERE color_name = 'Rc Red'")
run_ingot 1 run "$ROOT/pipelines/items.yaml" "$IT_TMP/rc.csv" --json --no-reject-file
assert_eq "0|0|1|1" "$(jq -r '.targets[] | select(.name == "color_master") | "\(.inserted)|\(.updated)|\(.unchanged)|\(.skipped)"' <<<"$OUT")" "imported again, the colour is unchanged"
assert_eq "$t_red" "$(sql "SELECT updated_at FROM color_master WHERE color_name = 'Rc Red'")" "and its updated_at untouched"
