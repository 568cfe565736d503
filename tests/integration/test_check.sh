#!/usr/bin/env bash
# test_check.sh - "ingot check": every shipped pipeline passes on a migrated
# database; a missing column, a wrong type and a missing unique index are
# errors (exit 2) naming the place; --json parses; --no-db skips the
# database; an unreachable database is a failure unless --no-db.
source "$(dirname "$0")/lib.sh"

run_ingot 0 migrate up
for p in pipelines/*.yaml; do
  name=$(basename "$p" .yaml)
  run_ingot 0 check "$name"
  assert_contains "$OUT" "ok: " "check $name"
  assert_not_contains "$OUT" "warning" "check $name has no warnings"
done
run_ingot 0 check pipelines/items.yaml
assert_contains "$OUT" "ok: pipelines/items.yaml (4 targets, 13 columns, hooks: hooks.items)" "check by path"

# A scratch table and one pipeline per mistake.
sql "CREATE TABLE gadget (id bigserial PRIMARY KEY, code text NOT NULL,
       label text, weight integer, made_on date, deleted_at timestamptz,
       updated_at timestamptz)"
sql "CREATE UNIQUE INDEX gadget_code_live ON gadget (code) WHERE deleted_at IS NULL"
pl() { # name, extra column lines, key_predicate
  cat > "$IT_TMP/$1.yaml" <<YAML
targets:
  - table: gadget
    key: [code]
    key_predicate: ${3:-deleted_at IS NULL}
    touch: updated_at
    columns:
      code: code
$2
YAML
}
pl good "      label: label
      weight: { from: weight, type: int }
      made_on: { from: made, type: date }"
run_ingot 0 check "$IT_TMP/good.yaml"
assert_contains "$OUT" "ok: $IT_TMP/good.yaml (1 target, 4 columns" "scratch pipeline ok"

pl missing_col "      colour: colour"
run_ingot 2 check "$IT_TMP/missing_col.yaml"
assert_contains "$OUT" "missing_col.yaml:8:7: targets[0].columns.colour: column \"colour\" does not exist in table gadget" "missing column"

pl wrong_type "      made_on: { from: made, type: bool }"
run_ingot 2 check "$IT_TMP/wrong_type.yaml"
assert_contains "$OUT" "wrong_type.yaml:8:7: targets[0].columns.made_on: type bool does not fit the column's type date" "wrong type"

pl no_index "      label: label" "label IS NOT NULL"
run_ingot 2 check "$IT_TMP/no_index.yaml"
assert_contains "$OUT" "no_index.yaml:2:5: targets[0] (gadget): no unique index on (code) WHERE label IS NOT NULL: ON CONFLICT would fail at run time" "missing unique index"
assert_contains "$OUT" "FAILED: $IT_TMP/no_index.yaml (1 error" "summary line"

pl smallint "      weight: { from: weight, type: bigint }"
run_ingot 0 check "$IT_TMP/smallint.yaml"
assert_contains "$OUT" "warning: bigint into a smaller integer column may overflow" "narrowing is a warning"

# PostgreSQL plans the statements an import would run: a guard naming a
# column the table lacks, or a touch column now() does not fit, fails the
# check instead of the first batch.
sed 's/^    touch: updated_at/    touch: updated_at\n    guard: t.nosuch > 0/' "$IT_TMP/good.yaml" > "$IT_TMP/bad_guard.yaml"
run_ingot 2 check "$IT_TMP/bad_guard.yaml"
assert_contains "$OUT" "bad_guard.yaml:2:5: targets[0]: PostgreSQL refuses the statements an import would run: gadget: " "a bad guard, at its target"
assert_contains "$OUT" "column t.nosuch does not exist" "with PostgreSQL's reason"
sed 's/^    touch: updated_at/    touch: id/' "$IT_TMP/good.yaml" > "$IT_TMP/bad_touch.yaml"
run_ingot 2 check "$IT_TMP/bad_touch.yaml"
assert_contains "$OUT" "column \"id\" is of type bigint but expression is of type timestamp with time zone" "a touch column of the wrong type"

# A lookup whose parent key no unique index covers (under the lookup's
# predicate) is a warning: two parent rows with the key would fail the
# batch or pick one.
sql "CREATE TABLE maker (id bigserial PRIMARY KEY, code text NOT NULL, deleted_at timestamptz)"
sql "CREATE UNIQUE INDEX maker_code_live ON maker (code) WHERE deleted_at IS NULL"
for pred in "" "deleted_at IS NULL"; do
  cat > "$IT_TMP/lookup.yaml" <<YAML
targets:
  - table: gadget
    key: [code]
    key_predicate: deleted_at IS NULL
    columns:
      code: code
      weight: { lookup: { table: maker, key: code, from: maker${pred:+, predicate: $pred} } }
YAML
  run_ingot 0 check "$IT_TMP/lookup.yaml"
  if [ -z "$pred" ]; then
    assert_contains "$OUT" "lookup: warning: no unique index on maker (code): a row whose key two parent rows share fails (AMBIGUOUS_PARENT), and every lookup counts the rows with its key" "a lookup key without a unique index"
  else
    assert_not_contains "$OUT" "no unique index" "a lookup key with its unique index under the predicate"
  fi
done

# A lookup predicate PostgreSQL refuses is placed at its target (the
# upsert that joins the parent is refused first).
sed 's/from: maker, predicate: deleted_at IS NULL/from: maker, predicate: nosuchcol IS NULL/' "$IT_TMP/lookup.yaml" > "$IT_TMP/bad_pred.yaml"
run_ingot 2 check "$IT_TMP/bad_pred.yaml"
assert_contains "$OUT" "bad_pred.yaml:2:5: targets[0]: PostgreSQL refuses the statements an import would run: gadget: " "a bad lookup predicate, at its target"
assert_contains "$OUT" 'column "nosuchcol" does not exist' "... with PostgreSQL's reason"

# The check wrote nothing and left no transaction behind.
assert_eq "0" "$(sql 'SELECT count(*) FROM gadget')" "check writes nothing"

# --json
run_ingot 2 check "$IT_TMP/missing_col.yaml" --json
echo "$OUT" | python3 -c 'import json,sys; json.load(sys.stdin)' || fail "--json output does not parse: $OUT"
assert_eq "false" "$(echo "$OUT" | jq -r .ok)" "json ok=false"
assert_eq "targets[0].columns.colour" "$(echo "$OUT" | jq -r '.errors[0].path')" "json error path"
assert_eq "8" "$(echo "$OUT" | jq -r '.errors[0].line')" "json error line"
assert_contains "$(echo "$OUT" | jq -r '.errors[0].message')" "does not exist" "json error message"
run_ingot 0 check items --json
assert_eq "true|4|item_variant" "$(echo "$OUT" | jq -r '[.ok, (.targets|length), .targets[3].name] | join("|")')" "json ok=true"

# --no-db skips the database: the missing column goes unnoticed, and an
# unreachable database does not matter.
run_ingot 0 check "$IT_TMP/missing_col.yaml" --no-db
assert_contains "$OUT" "database not checked" "--no-db says so"
DATABASE_URL=postgresql://nobody@127.0.0.1:1/none run_ingot 2 check items
assert_contains "$OUT" "cannot connect" "unreachable database is a failure"
assert_contains "$OUT" "--no-db" "hint at --no-db"
DATABASE_URL=postgresql://nobody@127.0.0.1:1/none run_ingot 0 check items --no-db

# Load errors are listed with their place, all of them.
run_ingot 2 check tests/data/pipelines/broken/bad_type.yaml --no-db
assert_contains "$OUT" "bad_type.yaml:9:15: targets[0].columns.price.type: unknown type 'nummeric' (did you mean 'numeric'?)" "load error"
run_ingot 2 check no_such_pipeline
assert_contains "$OUT" "cannot open" "unknown pipeline name"
