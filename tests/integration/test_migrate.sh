#!/usr/bin/env bash
# test_migrate.sh - migrate up / status / down / up again; the duplicate
# pre-check lists the duplicates; an edited applied migration is refused;
# a no-transaction migration runs; down fully reverses up.
source "$(dirname "$0")/lib.sh"

nfiles=$(ls migrations/[0-9]*_*.sql | wc -l)

# up applies everything, status shows it, and a second up has nothing to do.
run_ingot 0 migrate up
assert_contains "$OUT" "applied  0001_master_tables" "first up"
assert_contains "$OUT" "[no transaction]" "no-transaction migration flagged"
assert_eq "$nfiles" "$(sql 'SELECT count(*) FROM schema_migrations')" "recorded migrations"
assert_eq "t" "$(sql "SELECT count(*) = 4 FROM pg_indexes WHERE indexname IN ('item_master_category_idx','item_master_brand_idx','item_master_updated_at_idx','item_variant_updated_at_idx')")" "concurrent indexes exist"
assert_eq "0" "$(sql "SELECT count(*) FROM pg_index WHERE NOT indisvalid")" "no invalid index left"
run_ingot 0 migrate status
assert_contains "$OUT" "$nfiles applied, 0 pending" "status after up"
run_ingot 0 migrate up
assert_contains "$OUT" "nothing to apply" "second up"

# the partial unique index is what ON CONFLICT needs
sql "INSERT INTO item_master (name) VALUES ('Tee')"
sql "INSERT INTO item_master (name) VALUES ('Tee') ON CONFLICT (name) WHERE deleted_at IS NULL DO UPDATE SET description = 'x'"
assert_eq "1|x" "$(sql "SELECT count(*), max(description) FROM item_master")" "upsert on partial index"
sql "UPDATE item_master SET deleted_at = now()"
sql "INSERT INTO item_master (name) VALUES ('Tee')"
assert_eq "2" "$(sql "SELECT count(*) FROM item_master WHERE name = 'Tee'")" "soft-deleted row does not block"

# down N reverts the newest N; status shows them pending.
run_ingot 0 migrate down 3
assert_contains "$OUT" "reverted 0006_import_jobs_attempt" "down 3 reverts newest first"
assert_contains "$OUT" "reverted 0005_import_jobs_notify" "down 3 second"
assert_contains "$OUT" "reverted 0004_import_jobs" "down 3 third"
run_ingot 0 migrate status
assert_contains "$OUT" "3 pending" "status after down 3"
assert_eq "" "$(sql "SELECT to_regclass('import_jobs')")" "import_jobs dropped"

# down all leaves nothing but the bookkeeping table
run_ingot 0 migrate down all
assert_eq "schema_migrations" "$(sql "SELECT string_agg(tablename, ',') FROM pg_tables WHERE schemaname = 'public'")" "down all reverses every table"
assert_eq "0" "$(sql "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename <> 'schema_migrations'")" "no index left"
assert_eq "0" "$(sql "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'")" "no function left"

# up N applies exactly N; then the duplicate pre-check names every duplicate.
run_ingot 0 migrate up 1
assert_eq "1" "$(sql 'SELECT count(*) FROM schema_migrations')" "up 1"
sql "INSERT INTO item_master (name) VALUES ('Tee'), ('Tee'), ('Cap'), ('Cap'), ('Cap'), ('Solo')"
sql "INSERT INTO color_master (color_name) VALUES ('Red'), ('Red')"
sql "INSERT INTO item_master (name, deleted_at) VALUES ('Solo', now())"
run_ingot 2 migrate up
assert_contains "$ERR" "cannot create unique index item_master_name_live_key" "pre-check names the index"
assert_contains "$ERR" "(Cap) x3: ids 3,4,5" "pre-check lists Cap"
assert_contains "$ERR" "(Tee) x2: ids 1,2" "pre-check lists Tee"
assert_not_contains "$ERR" "Solo" "soft-deleted rows are not duplicates"
assert_contains "$ERR" "HINT" "pre-check says how to fix"
assert_eq "1" "$(sql 'SELECT count(*) FROM schema_migrations')" "failed migration rolled back"
assert_eq "0" "$(sql "SELECT count(*) FROM pg_indexes WHERE indexname LIKE '%live_key'")" "no index half-built"
sql "UPDATE item_master SET deleted_at = now() WHERE id IN (2, 4, 5)"
run_ingot 2 migrate up
assert_contains "$ERR" "color_master" "next table's duplicates reported after the first is fixed"
assert_contains "$ERR" "(Red) x2" "colour duplicates listed"
sql "DELETE FROM color_master WHERE id = (SELECT max(id) FROM color_master)"
run_ingot 0 migrate up
assert_eq "$nfiles" "$(sql 'SELECT count(*) FROM schema_migrations')" "up after fixing duplicates"

# An applied migration edited on disk is refused by up, down and status.
cp -r migrations "$IT_TMP/mig"
echo "-- an innocent-looking edit" >> "$IT_TMP/mig/0002_unique_indexes_for_upsert.sql"
export INGOT_MIGRATIONS_DIR=$IT_TMP/mig
run_ingot 2 migrate up
assert_contains "$ERR" "migration 0002_unique_indexes_for_upsert was edited after it was applied" "edited migration refused by up"
run_ingot 2 migrate down
assert_contains "$ERR" "was edited" "edited migration refused by down"
run_ingot 2 migrate status
assert_contains "$OUT" "MODIFIED" "status marks the edited file"
assert_eq "$nfiles" "$(sql 'SELECT count(*) FROM schema_migrations')" "nothing changed by the refused runs"

# A migration file without a down half is rejected before connecting.
cp migrations/0001_master_tables.sql "$IT_TMP/mig/0009_broken.sql"
sed -i '/-- ingot:down/,$d' "$IT_TMP/mig/0009_broken.sql"
run_ingot 2 migrate up
assert_contains "$ERR" "0009_broken.sql: needs a '-- ingot:up' and a '-- ingot:down' section" "file without down half"
unset INGOT_MIGRATIONS_DIR

# Bad usage
run_ingot 2 migrate sideways
assert_contains "$ERR" "unknown form 'migrate sideways'" "bad verb"
run_ingot 2 migrate down zero
assert_contains "$ERR" "not a step count" "bad step count"
