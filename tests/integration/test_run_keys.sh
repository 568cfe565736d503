#!/usr/bin/env bash
# test_run_keys.sh - conflict keys the database compares otherwise than by
# their bytes: a citext key (case), a composite key of a text column with
# a nondeterministic collation and a character(n) column (trailing
# spaces). Spellings the database finds equal are duplicates to every
# `duplicates` policy, within a batch, across batches and with two
# writers, exactly as byte-equal keys are (the final table and the counts
# are checked against what SQL computes from the file). A key type whose
# equality ingot cannot ask the database about (a domain) is named in a
# warning, by the import (which keeps to one writer) and by ingot check.
source "$(dirname "$0")/lib.sh"

sql "CREATE EXTENSION citext"
sql "CREATE TABLE shade (id bigserial PRIMARY KEY, shade_name citext NOT NULL,
       code integer, updated_at timestamptz NOT NULL DEFAULT now(),
       deleted_at timestamptz)"
sql "CREATE UNIQUE INDEX shade_live ON shade (shade_name) WHERE deleted_at IS NULL"
pipeline() { # policy -> $IT_TMP/shade.yaml
  cat >"$IT_TMP/shade.yaml" <<EOF
description: shades, case-insensitive names
targets:
  - table: shade
    key: [shade_name]
    key_predicate: deleted_at IS NULL
    duplicates: $1
    touch: updated_at
    columns:
      shade_name: name
      code: { from: code, type: int }
EOF
}

# 60 rows over 8 names, each spelt in a pseudo-random case.
awk 'BEGIN { split("Red Blue Green Olive Teal Navy Plum Sand", w, " ");
  print "name,code"; s = 7;
  for (i = 1; i <= 60; i++) {
    s = (s * 1103515245 + 12345) % 2147483648; n = w[int(s / 65536) % 8 + 1]; out = "";
    for (j = 1; j <= length(n); j++) {
      s = (s * 1103515245 + 12345) % 2147483648; c = substr(n, j, 1);
      out = out (int(s / 65536) % 2 ? toupper(c) : tolower(c)) }
    print out "," i } }' >"$IT_TMP/m.csv"
sql "CREATE TABLE src (name text, code int, ord serial)"
psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 \
  -c "\\copy src (name, code) FROM '$IT_TMP/m.csv' CSV HEADER"
assert_eq 8 "$(sql "SELECT count(DISTINCT lower(name)) FROM src")" "8 names"
[ "$(sql "SELECT count(DISTINCT name) FROM src")" -gt 8 ] ||
  fail "the generator spells names in several cases"
expect_first=$(sql "SELECT string_agg(n || '=' || code, ' ' ORDER BY n) FROM
  (SELECT DISTINCT ON (lower(name)) lower(name) n, code FROM src ORDER BY lower(name), ord) x")
expect_last=$(sql "SELECT string_agg(n || '=' || code, ' ' ORDER BY n) FROM
  (SELECT DISTINCT ON (lower(name)) lower(name) n, code FROM src ORDER BY lower(name), ord DESC) x")
table() { sql "SELECT string_agg(lower(shade_name) || '=' || code, ' ' ORDER BY lower(shade_name)) FROM shade"; }
count() { jq -r ".counts.$1" <<<"$OUT"; }

for policy in error first last; do
  pipeline $policy
  for writers in 1 2; do
    what="duplicates: $policy, $writers writer(s)"
    sql "TRUNCATE shade"
    run_ingot "$([ $policy = error ] && echo 1 || echo 0)" run "$IT_TMP/shade.yaml" \
      "$IT_TMP/m.csv" --batch-size 5 --writers $writers --json --no-reject-file
    assert_not_contains "$ERR" "warn" "$what: no warning"
    assert_eq 8 "$(count inserted)" "$what: one row per name inserted"
    case $policy in
      error)
        assert_eq "$expect_first" "$(table)" "$what: the first row of each name"
        assert_eq 52 "$(count failed)" "$what: every later spelling failed"
        # each failed row names the first row of its name
        want=$(sql "SELECT string_agg(s.ord || ':' || f.ord, ' ' ORDER BY s.ord) FROM src s
          JOIN LATERAL (SELECT min(ord) ord FROM src WHERE lower(name) = lower(s.name)) f ON f.ord < s.ord")
        got=$(jq -r '[.failed_rows[] | "\(.row):\(.reasons[0].message | capture("row (?<r>[0-9]+) has").r)"] | join(" ")' <<<"$OUT")
        assert_eq "$want" "$got" "$what: DUPLICATE_KEY names the first row"
        assert_eq "DUPLICATE_KEY" "$(jq -r '[.failed_rows[].reasons[].code] | unique | join(",")' <<<"$OUT")" "$what: codes" ;;
      first)
        assert_eq "$expect_first" "$(table)" "$what: the first row of each name"
        assert_eq "52|0|0" "$(count skipped)|$(count updated)|$(count failed)" "$what: the others skipped" ;;
      last)
        assert_eq "$expect_last" "$(table)" "$what: the last row of each name"
        assert_eq 60 "$(($(count inserted) + $(count updated) + $(count unchanged) + $(count skipped)))" "$what: every row counted once"
        assert_eq 0 "$(count failed)" "$what: none failed" ;;
    esac
    assert_eq 8 "$(sql "SELECT count(*) FROM shade")" "$what: one row per name"
  done
done

# A dry run compares keys the same way and writes nothing.
pipeline first
sql "TRUNCATE shade"
run_ingot 0 run "$IT_TMP/shade.yaml" "$IT_TMP/m.csv" --batch-size 5 --json \
  --no-reject-file --dry-run
assert_eq "8|52" "$(count inserted)|$(count skipped)" "dry run counts"
assert_eq 0 "$(sql "SELECT count(*) FROM shade")" "dry run wrote nothing"

# Existing rows in another case are updated, not duplicated.
sql "TRUNCATE shade"
sql "INSERT INTO shade (shade_name, code) VALUES ('RED', 0), ('blue', 0)"
printf 'name,code\nred,1\nBLUE,2\n' >"$IT_TMP/up.csv"
run_ingot 0 run "$IT_TMP/shade.yaml" "$IT_TMP/up.csv" --json --no-reject-file
assert_eq "0|2" "$(count inserted)|$(count updated)" "updates across cases"
assert_eq "blue=2 red=1" "$(table)" "the existing rows updated"

# A composite key: text under a case-insensitive ICU collation, and
# character(4), where trailing spaces do not count.
sql "CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)"
sql "CREATE TABLE tint (id bigserial PRIMARY KEY, cname text COLLATE ci NOT NULL,
       code character(4) NOT NULL, n integer, UNIQUE (cname, code))"
cat >"$IT_TMP/tint.yaml" <<'EOF'
description: a composite key
targets:
  - table: tint
    key: [cname, code]
    duplicates: error
    columns:
      cname: name
      code: code
      n: { from: n, type: int }
EOF
printf 'name,code,n\nRed,ab,1\nred,ab  ,2\nRED,ac,3\nBlue,ab,4\nblue,"ab ",5\n' >"$IT_TMP/t.csv"
run_ingot 1 run "$IT_TMP/tint.yaml" "$IT_TMP/t.csv" --json --no-reject-file
assert_eq "3|2" "$(count inserted)|$(count failed)" "composite key counts"
assert_eq "2 5" "$(jq -r '[.failed_rows[].row] | join(" ")' <<<"$OUT")" "rows 2 and 5 are duplicates"
assert_eq "1,3,4" "$(sql "SELECT string_agg(n::text, ',' ORDER BY n) FROM tint")" "rows 1, 3 and 4 landed"

# A domain over citext: ingot cannot ask for its equality, says so, and
# keeps to one writer (the rows still land, applied in file order).
sql "CREATE DOMAIN shade_name AS citext"
sql "CREATE TABLE dshade (id bigserial PRIMARY KEY, shade_name shade_name UNIQUE, code integer)"
sed -e 's/table: shade/table: dshade/' -e '/key_predicate/d' -e '/touch/d' \
  "$IT_TMP/shade.yaml" >"$IT_TMP/dshade.yaml"
sed -i 's/duplicates: .*/duplicates: last/' "$IT_TMP/dshade.yaml"
run_ingot 0 run "$IT_TMP/dshade.yaml" "$IT_TMP/m.csv" --batch-size 5 --json --no-reject-file
assert_contains "$ERR" "target dshade, key column shade_name (shade_name)" "the warning names the column"
assert_contains "$ERR" "one writer" "the warning says one writer"
assert_eq "$expect_last" "$(sql "SELECT string_agg(lower(shade_name) || '=' || code, ' ' ORDER BY lower(shade_name)) FROM dshade")" "file order: the last row wins"

# ingot check says the same before any import; the citext key is fine.
run_ingot 0 check "$IT_TMP/dshade.yaml"
assert_contains "$OUT" "dshade.yaml:3:5: targets[0].key: warning: target dshade, key column shade_name (shade_name)" "check warns, at the target"
run_ingot 0 check "$IT_TMP/shade.yaml"
assert_not_contains "$OUT" "warning" "no warning for citext"

# A key with a NULL value equals no other, as in a unique index: never a
# duplicate, under any policy, on either write path, in or across batches.
sql "CREATE TABLE nk (id bigserial PRIMARY KEY, k text, v integer, UNIQUE (k))"
# (three windows of --batch-size 3: an input of two would be one batch)
printf 'k,v\n,1\n,2\nx,3\nx,4\n,5\n,6\ny,7\n' >"$IT_TMP/nk.csv"
for policy in error first last; do
  for first in 0 1; do
    what="NULL keys, duplicates: $policy, insert-first $first"
    printf 'description: nullable key\ntargets:\n  - table: nk\n    key: [k]\n    duplicates: %s\n    columns:\n      k: k\n      v: { from: v, type: int }\n' \
      $policy >"$IT_TMP/nk.yaml"
    sql "TRUNCATE nk"
    run_ingot "$([ $policy = error ] && echo 1 || echo 0)" run "$IT_TMP/nk.yaml" \
      "$IT_TMP/nk.csv" --batch-size 3 --insert-first $first --json --no-reject-file
    x=$([ $policy = last ] && echo 4 || echo 3)
    assert_eq "1,2,5,6,x=$x,y=7" "$(sql "SELECT string_agg(coalesce(k || '=', '') || v, ',' ORDER BY k NULLS FIRST, v) FROM nk")" "$what: every NULL-key row landed"
    case $policy in
      error) assert_eq "6|1|4" "$(count inserted)|$(count failed)|$(jq -r '.failed_rows[0].row' <<<"$OUT")" "$what: counts" ;;
      first) assert_eq "6|1|0" "$(count inserted)|$(count skipped)|$(count failed)" "$what: counts" ;;
      last) # x=3 and x=4 are in different batches: the later one updates
        assert_eq "6|1|0" "$(count inserted)|$(count updated)|$(count failed)" "$what: counts" ;;
    esac
  done
done
