#!/usr/bin/env bash
# test_run_timestamps.sh - a `type: timestamp` column lands as PostgreSQL
# itself reads the text into the table's column type: into timestamptz as
# an instant (the offset kept, else the session's TimeZone), into
# timestamp without time zone as a wall-clock time (an offset ignored, no
# time zone applied, so no shift and no daylight-saving gap). Both ways
# in: COPY straight into the table (insert-first, an empty table) and the
# staged upsert (a re-import with changed values); the database's time
# zone is one with daylight saving, so a wrong route shows.
source "$(dirname "$0")/lib.sh"

sql "ALTER DATABASE \"$IT_DB\" SET timezone = 'Europe/Berlin'"
sql "CREATE TABLE stamp (id bigserial PRIMARY KEY, k text NOT NULL UNIQUE,
       ts timestamp, tstz timestamptz, ts3 timestamp(3) without time zone)"
cat >"$IT_TMP/stamp.yaml" <<'YAML'
description: timestamps into both column types
targets:
  - table: stamp
    key: [k]
    duplicates: error
    columns:
      k: k
      ts: { from: t, type: timestamp }
      tstz: { from: t, type: timestamp }
      ts3: { from: t, type: timestamp }
YAML
# file -> the rows as PostgreSQL reads the same text itself, for comparing
expected() {
  tail -n +2 "$1" | while IFS=, read -r k t; do
    sql "SELECT '$k', '$t'::timestamp, '$t'::timestamptz, '$t'::timestamp(3)"
  done | sort
}
actual() { sql "SELECT k, ts, tstz, ts3 FROM stamp ORDER BY k"; }

cat >"$IT_TMP/a.csv" <<'CSV'
k,t
a,2024-03-01 10:00:00+02
b,2024-03-31 02:30:00
c,2024-07-01T23:59:59.1234-05:30
d,2024-01-15 08:00
CSV
run_ingot 0 run "$IT_TMP/stamp.yaml" "$IT_TMP/a.csv" --json
assert_eq 4 "$(jq .counts.inserted <<<"$OUT")" "four rows inserted"
assert_eq "$(expected "$IT_TMP/a.csv")" "$(actual)" "insert-first: as PostgreSQL reads them"

cat >"$IT_TMP/b.csv" <<'CSV'
k,t
a,2024-10-27 02:30:00+01
b,2024-03-31 02:59:59
c,2024-03-01 10:00:00Z
d,2024-01-15 08:00
CSV
run_ingot 0 run "$IT_TMP/stamp.yaml" "$IT_TMP/b.csv" --json --insert-first 0
assert_eq 3 "$(jq .counts.updated <<<"$OUT")" "three rows updated"
assert_eq 1 "$(jq .counts.unchanged <<<"$OUT")" "one unchanged"
assert_eq "$(expected "$IT_TMP/b.csv")" "$(actual)" "upsert: as PostgreSQL reads them"
