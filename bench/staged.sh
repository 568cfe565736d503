# shellcheck shell=bash
# bench/staged.sh - sourced by bench/run.sh and bench/pair.sh: the
# hand-written staged upsert they measure ingot against.
#
# staged_sql FILE prints it for a CSV of bench/gen.py's items: COPY to a
# temp table, then one INSERT .. SELECT .. ORDER BY key ON CONFLICT .. DO
# UPDATE .. WHERE IS DISTINCT FROM, in one transaction (run with psql -f).
staged_sql() {
  cat <<SQL
BEGIN;
CREATE TEMP TABLE s (name text, description text, category text, brand text, is_active boolean) ON COMMIT DROP;
\copy s FROM '$1' CSV HEADER
INSERT INTO item_master AS t (name, description, category, brand, is_active)
SELECT name, description, category, brand, is_active FROM s ORDER BY name
ON CONFLICT (name) WHERE deleted_at IS NULL DO UPDATE
SET description = COALESCE(EXCLUDED.description, t.description), category = EXCLUDED.category,
    brand = EXCLUDED.brand, is_active = EXCLUDED.is_active, updated_at = now()
WHERE (t.description, t.category, t.brand, t.is_active) IS DISTINCT FROM
      (COALESCE(EXCLUDED.description, t.description), EXCLUDED.category, EXCLUDED.brand, EXCLUDED.is_active);
COMMIT;
SQL
}

# The psql program itself: Debian's /usr/bin/psql is a Perl wrapper that
# takes about 35 ms to start, which would flatter ingot against the psql
# references at 10k rows.
PSQL=psql
[ -n "${INGOT_PG_BIN:-}" ] && [ -x "$INGOT_PG_BIN/psql" ] && PSQL=$INGOT_PG_BIN/psql
