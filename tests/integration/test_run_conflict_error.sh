#!/usr/bin/env bash
# test_run_conflict_error.sh - `on_conflict: error`: a row whose key is
# already in the table is a row error (ALREADY_EXISTS) and every other row
# goes in, also when
#   - the table has columns named like the statement's own row numbers
#     (`_row`, `_rows`);
#   - a BEFORE INSERT trigger changes the key, so the keys the INSERT
#     returns are not the file's (the rows are told apart by counts: the
#     row pass's, or the batch's in parts that keep a key's rows
#     together);
#   - the target is a parent (looked up by another) under
#     `duplicates: last`, and the row pass runs for another row;
#   - under `duplicates: last` one existing key is repeated many times:
#     all its rows fail in one run of the batch, not one rerun per row.
source "$(dirname "$0")/lib.sh"

# last_error_pipeline TABLE: $IT_TMP/TABLE.yaml, columns code and v, key
# code, on_conflict: error, duplicates: last.
last_error_pipeline() {
  cat >"$IT_TMP/$1.yaml" <<EOF
description: duplicates last, on_conflict error
targets:
  - table: $1
    key: [code]
    on_conflict: error
    duplicates: last
    columns:
      code: code
      v: v
EOF
}

# --- columns named _row and _rows -----------------------------------------
sql "CREATE TABLE tagged (id serial PRIMARY KEY, code text NOT NULL UNIQUE,
       _row text, _rows text, v text)"
cat >"$IT_TMP/tagged.yaml" <<'EOF'
description: a table whose columns shadow the statement's row numbers
targets:
  - table: tagged
    key: [code]
    on_conflict: error
    duplicates: last
    columns:
      code: code
      _row: r
      _rows: rs
      v: v
EOF
printf 'code,r,rs,v\na,1,x,first\nb,2,y,b\na,3,z,last\n' >"$IT_TMP/tagged.csv"
run_ingot 0 run "$IT_TMP/tagged.yaml" "$IT_TMP/tagged.csv" --json --no-reject-file
assert_eq '{"read":3,"inserted":2,"updated":0,"unchanged":0,"skipped":1,"failed":0}' \
  "$(jq -c .counts <<<"$OUT")" "columns named _row and _rows: imported"
assert_eq "a|3|z|last;b|2|y|b" \
  "$(sql "SELECT string_agg(concat_ws('|', code, _row, _rows, v), ';' ORDER BY code) FROM tagged")" \
  "the last row of a key, with its _row and _rows values"
run_ingot 2 run "$IT_TMP/tagged.yaml" "$IT_TMP/tagged.csv" --json --no-reject-file
assert_eq "1:ALREADY_EXISTS 2:ALREADY_EXISTS 3:ALREADY_EXISTS" \
  "$(jq -r '[.failed_rows[] | "\(.row):\(.reasons[0].code)"] | join(" ")' <<<"$OUT")" \
  "re-imported: every row of an existing key fails"

# --- a BEFORE INSERT trigger that changes the key -------------------------
sql "CREATE TABLE upper_code (id serial PRIMARY KEY, code text NOT NULL UNIQUE,
       v text CHECK (v <> 'bad'))"
sql "CREATE FUNCTION upper_code_key() RETURNS trigger LANGUAGE plpgsql AS
       \$\$BEGIN NEW.code := upper(NEW.code); RETURN NEW; END\$\$"
sql "CREATE TRIGGER upper_code_key BEFORE INSERT ON upper_code
       FOR EACH ROW EXECUTE FUNCTION upper_code_key()"
cat >"$IT_TMP/upper.yaml" <<'EOF'
description: keys upper-cased by a trigger
targets:
  - table: upper_code
    key: [code]
    on_conflict: error
    columns:
      code: code
      v: v
EOF
# 200 rows k0..k199; K0, K10, .. K190 exist already; every 17th row from
# row 6 breaks the CHECK, so some batches also go through the row pass.
awk 'BEGIN { print "code,v"; for (i = 0; i < 200; i++)
  printf "k%d,%s\n", i, (i % 17 == 5 ? "bad" : "n" i) }' >"$IT_TMP/upper.csv"
for bs in 5000 64 7; do
  sql "TRUNCATE upper_code"
  sql "INSERT INTO upper_code (code, v) SELECT 'K' || g, 'old' FROM generate_series(0, 199, 10) g"
  run_ingot 1 run "$IT_TMP/upper.yaml" "$IT_TMP/upper.csv" --json --no-reject-file --batch-size "$bs"
  want=$(awk 'BEGIN { for (i = 0; i < 200; i++) {
      if (i % 17 == 5) printf "%s%d:23514", s, i + 1
      else if (i % 10 == 0) printf "%s%d:ALREADY_EXISTS", s, i + 1
      else continue; s = " " } }')
  assert_eq "$want" \
    "$(jq -r '[.failed_rows[] | "\(.row):\(.reasons[0].code)"] | join(" ")' <<<"$OUT")" \
    "trigger-changed keys, batch size $bs: the existing keys and the CHECK failures, no other row"
  inserted=$(awk 'BEGIN { for (i = 0; i < 200; i++) if (i % 17 != 5 && i % 10 != 0) n++; print n }')
  assert_eq "$inserted" "$(jq .counts.inserted <<<"$OUT")" "trigger-changed keys, batch size $bs: inserted count"
  assert_eq "$((inserted + 20))|20" \
    "$(sql "SELECT count(*), count(*) FILTER (WHERE v = 'old') FROM upper_code")" \
    "trigger-changed keys, batch size $bs: every good row is in, the old rows untouched"
done

# --- keys the bytes do not decide, with duplicates: last ------------------
# A key's earlier row must not go in and make its last row fail: a
# character(3) key with a trailing space (the stored key drops it when
# compared as text), a key a trigger upper-cases, a key a trigger extends
# so that one row's key becomes another's.
sql "CREATE TABLE padded (id serial PRIMARY KEY, code character(3) UNIQUE, v text)"
sql "INSERT INTO padded (code, v) VALUES ('zz', 'old')"
sql "CREATE TABLE extended (id serial PRIMARY KEY, code text NOT NULL UNIQUE, v text)"
sql "CREATE FUNCTION extend_key() RETURNS trigger LANGUAGE plpgsql AS
       \$\$BEGIN NEW.code := NEW.code || '_'; RETURN NEW; END\$\$"
sql "CREATE TRIGGER extend_key BEFORE INSERT ON extended
       FOR EACH ROW EXECUTE FUNCTION extend_key()"
sql "INSERT INTO extended (code, v) VALUES ('p_', 'old')"   # stored as p__
for case in "padded|code,v\n\"ab \",a\nzz,x\n\"ab \",b\n|ab|b;zz|old" \
            "upper_code|code,v\nk1,a\nk0,x\nk1,b\n|K0|old;K1|b" \
            "extended|code,v\np_,a\np,b\n|p_|b;p__|old"; do
  IFS='|' read -r table csv want1 want2 <<<"$case"
  [ "$table" = upper_code ] && { sql "TRUNCATE upper_code"; sql "INSERT INTO upper_code (code, v) VALUES ('k0', 'old')"; }
  last_error_pipeline "$table"
  printf "$csv" >"$IT_TMP/$table.csv"
  run_ingot 1 run "$IT_TMP/$table.yaml" "$IT_TMP/$table.csv" --json --no-reject-file
  want_rows='["2:ALREADY_EXISTS"]'
  [ "$table" = extended ] && want_rows='["1:ALREADY_EXISTS"]'
  assert_eq "$want_rows" "$(jq -c '[.failed_rows[] | "\(.row):\(.reasons[0].code)"]' <<<"$OUT")" \
    "$table: only the row whose key existed fails"
  assert_eq "$want1|$want2" "$(sql "SELECT string_agg(code || '|' || v, ';' ORDER BY code) FROM $table")" \
    "$table: the last row of the new key went in"
done

# --- no row pass (it hits the statement timeout): split by key ------------
sql "CREATE TABLE slow_upper (id serial PRIMARY KEY, code text NOT NULL UNIQUE, v text)"
sql "CREATE FUNCTION slow_upper_key() RETURNS trigger LANGUAGE plpgsql AS
       \$\$BEGIN NEW.code := upper(NEW.code);
         IF current_query() LIKE '%ingot_rows%' THEN PERFORM pg_sleep(0.01); END IF;
         RETURN NEW; END\$\$"
sql "CREATE TRIGGER slow_upper_key BEFORE INSERT ON slow_upper
       FOR EACH ROW EXECUTE FUNCTION slow_upper_key()"
sql "INSERT INTO slow_upper (code, v) SELECT 'k' || g, 'old' FROM generate_series(0, 199, 10) g"
sed 's/table: upper_code/table: slow_upper/; s/on_conflict: error/on_conflict: error\n    duplicates: last/' \
  "$IT_TMP/upper.yaml" >"$IT_TMP/slow.yaml"
awk 'BEGIN { print "code,v"; for (i = 0; i < 200; i++) printf "k%d,a%d\n", i, i;
  for (i = 0; i < 200; i += 3) printf "k%d,b%d\n", i, i }' >"$IT_TMP/slow.csv"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$IT_TMP/slow.yaml" "$IT_TMP/slow.csv" --json --no-reject-file --statement-timeout 1000
assert_contains "$ERR" "the row pass could not isolate rows" "the pass hit the statement timeout"
# K0, K10, .. K190 exist: each of their rows fails (first and second
# occurrences), every other key's last row goes in.
want=$(awk 'BEGIN { for (i = 0; i < 200; i++) { if (i % 10 == 0) n++ }
  for (i = 0; i < 200; i += 3) if (i % 10 == 0) n++; print n }')
assert_eq "$want" "$(jq .counts.failed <<<"$OUT")" "every row of an existing key failed"
assert_eq '["ALREADY_EXISTS"]' "$(jq -c '[.failed_rows[].reasons[0].code] | unique' <<<"$OUT")" "... as ALREADY_EXISTS"
assert_eq "0" "$(sql "SELECT count(*) FROM slow_upper WHERE v <> 'old' AND right(code, 1) = '0'")" \
  "no existing key was overwritten or added twice"
assert_eq "180" "$(sql "SELECT count(*) FROM slow_upper WHERE v <> 'old'")" "the 180 new keys went in"
assert_eq "0" "$(sql "SELECT count(*) FROM slow_upper s WHERE v <> 'old' AND v <> CASE
    WHEN substr(code, 2)::int % 3 = 0 THEN 'b' ELSE 'a' END || substr(code, 2)")" \
  "each new key holds its last row"

# --- a parent under on_conflict: error and duplicates: last ---------------
# A child row breaks a CHECK, so the row pass runs; it applies the
# parent's earlier row of a key (for the child's lookup), and the key's
# last row must still go in, not fail as if the key had existed.
sql "CREATE TABLE par (id serial PRIMARY KEY, name text NOT NULL UNIQUE, v text)"
sql "CREATE TABLE chi (id serial PRIMARY KEY, sku text NOT NULL UNIQUE,
       par_id integer REFERENCES par, q integer CHECK (q >= 0))"
cat >"$IT_TMP/parchi.yaml" <<'EOF2'
description: a parent under on_conflict error, duplicates last
targets:
  - name: par
    table: par
    key: [name]
    on_conflict: error
    duplicates: last
    columns:
      name: name
      v: v
  - name: chi
    table: chi
    key: [sku]
    columns:
      sku: sku
      par_id: { lookup: { target: par } }
      q: { from: q, type: int }
EOF2
awk 'BEGIN { print "name,v,sku,q"; print "A,first,s1,1"; print "A,last,s2,1";
  for (i = 3; i <= 20; i++) printf "B%d,x,s%d,%d\n", i, i, (i == 10 ? -1 : 1) }' >"$IT_TMP/parchi.csv"
run_ingot 1 run "$IT_TMP/parchi.yaml" "$IT_TMP/parchi.csv" --json --no-reject-file
assert_eq '["10:23514"]' "$(jq -c '[.failed_rows[] | "\(.row):\(.reasons[0].code)"]' <<<"$OUT")" \
  "a parent's key with two rows: only the bad child row fails"
assert_eq "A|last" "$(sql "SELECT name || '|' || v FROM par WHERE name = 'A'")" "the parent key holds its last row"
assert_eq "19" "$(sql "SELECT count(*) FROM chi")" "every good child row went in"

# --- no row pass: parts keep every target's rows in file order ------------
# (A guard holding the pass's quote tag leaves the pipeline without one.)
sql "CREATE TABLE par2 (id serial PRIMARY KEY, name text NOT NULL UNIQUE, v text)"
sql "CREATE TABLE chi2 (id serial PRIMARY KEY, sku text NOT NULL UNIQUE, par_id integer)"
sql "CREATE FUNCTION same_row() RETURNS trigger LANGUAGE plpgsql AS
       \$\$BEGIN RETURN NEW; END\$\$"
sql "CREATE TRIGGER same_row BEFORE INSERT ON chi2 FOR EACH ROW EXECUTE FUNCTION same_row()"
sql "INSERT INTO chi2 (sku) VALUES ('s7')"
cat >"$IT_TMP/parchi2.yaml" <<'EOF2'
description: no row pass, a trigger on the on_conflict error target
targets:
  - name: par2
    table: par2
    key: [name]
    duplicates: last
    guard: "'$ingot_fn$' IS NOT NULL"
    columns:
      name: name
      v: v
  - name: chi2
    table: chi2
    key: [sku]
    on_conflict: error
    columns:
      sku: sku
      par_id: { lookup: { target: par2 } }
EOF2
awk 'BEGIN { print "name,v,sku"; for (i = 1; i <= 40; i++) printf "A,v%d,s%d\n", i, i }' >"$IT_TMP/parchi2.csv"
run_ingot 1 run "$IT_TMP/parchi2.yaml" "$IT_TMP/parchi2.csv" --json --no-reject-file
assert_eq '["7:ALREADY_EXISTS"]' "$(jq -c '[.failed_rows[] | "\(.row):\(.reasons[0].code)"]' <<<"$OUT")" \
  "no row pass: only the existing child key fails"
assert_eq "A|v40" "$(sql "SELECT name || '|' || v FROM par2")" "the parent holds the file's last row"
assert_eq "40" "$(sql "SELECT count(*) FROM chi2")" "the 39 new child rows went in"

# --- duplicates: last, one existing key repeated --------------------------
sql "CREATE TABLE repeated (id serial PRIMARY KEY, code text NOT NULL UNIQUE, v text)"
sql "INSERT INTO repeated (code, v) VALUES ('k1', 'old')"
last_error_pipeline repeated
awk 'BEGIN { print "code,v"; for (i = 0; i < 2000; i++) printf "k1,v%d\n", i;
  print "k2,a"; print "k2,b" }' >"$IT_TMP/repeated.csv"
INGOT_LOG_LEVEL=debug run_ingot 1 run "$IT_TMP/repeated.yaml" "$IT_TMP/repeated.csv" --json --no-reject-file
assert_eq '{"read":2002,"inserted":1,"updated":0,"unchanged":0,"skipped":1,"failed":2000}' \
  "$(jq -c .counts <<<"$OUT")" "an existing key repeated: each of its rows fails"
assert_eq '["ALREADY_EXISTS"]' "$(jq -c '[.failed_rows[].reasons[0].code] | unique' <<<"$OUT")" \
  "... as ALREADY_EXISTS"
assert_eq "k1|old;k2|b" "$(sql "SELECT string_agg(code || '|' || v, ';' ORDER BY code) FROM repeated")" \
  "the existing row is untouched, the new key has its last row"
batches=$(grep -c 'debug batch [0-9]* committed' <<<"$ERR")
[ "$batches" -ge 1 ] || fail "no batch was logged: $ERR"
assert_eq "$batches" "$(grep -c 'rows failed; running the other' <<<"$ERR")" \
  "the rows of the existing key fail together: one rerun per batch, not one per row"
