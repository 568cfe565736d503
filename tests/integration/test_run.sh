#!/usr/bin/env bash
# test_run.sh - ingot run against a real PostgreSQL: insert / update /
# unchanged counting (updated_at untouched on no-op), soft-deleted rows,
# duplicate-key policies, missing parents, constraint failures isolated
# (few rows: by bisection), malformed CSV, limits, dry run, reject file,
# JSON, exit codes.
source "$(dirname "$0")/lib.sh"
D=tests/data/run
run_ingot 0 migrate up

# --- insert, update, unchanged ------------------------------------------
cat > "$IT_TMP/c1.csv" <<'CSV'
name,code
Red,#ff0000
Green , #00FF00
Blue,#0000FF
CSV
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/c1.csv" --json
assert_contains "$OUT" '"inserted": 3' "first import inserts"
python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
for k in ("duration_s", "rows_per_s", "success_rate"):
    sig = repr(d[k]).replace(".", "").lstrip("0")
    assert len(sig) <= 10, (k, d[k])
' <<<"$OUT" || fail "JSON numbers keep ten significant digits: $OUT"
assert_eq "Green|#00FF00" "$(sql "SELECT color_name, color_code FROM color_master WHERE color_name = 'Green'")" "transforms applied"
assert_eq "" "$(ls "$IT_TMP"/c1.csv.rejects.csv 2>/dev/null)" "no reject file when nothing failed"
t_blue=$(sql "SELECT updated_at FROM color_master WHERE color_name = 'Blue'")

cat > "$IT_TMP/c2.csv" <<'CSV'
name,code
Red,#EE0000
Green,#00FF00
Blue,#0000FF
Cyan,#00FFFF
CSV
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/c2.csv" --json
assert_contains "$OUT" '"inserted": 1' "second import inserts the new one"
assert_contains "$OUT" '"updated": 1' "second import updates the changed one"
assert_contains "$OUT" '"unchanged": 2' "second import leaves two unchanged"
assert_eq "$t_blue" "$(sql "SELECT updated_at FROM color_master WHERE color_name = 'Blue'")" "unchanged row keeps updated_at"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/c2.csv" --json
assert_contains "$OUT" '"unchanged": 4' "same file again: all unchanged"

# --- soft-deleted rows do not block a re-import --------------------------
sql "UPDATE color_master SET deleted_at = now() WHERE color_name = 'Cyan'"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/c2.csv" --json
assert_contains "$OUT" '"inserted": 1' "soft-deleted colour re-imported as a new row"
assert_eq "2|1" "$(sql "SELECT count(*), count(*) FILTER (WHERE deleted_at IS NULL) FROM color_master WHERE color_name = 'Cyan'")" "old row stays deleted, new one is live"

# --- rule failures: good rows land, bad ones reported, exit 1 -------------
cat > "$IT_TMP/c3.csv" <<'CSV'
name,code
Olive,#808000
,#123456
Teal,not-a-colour
Maroon,#800000
CSV
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/c3.csv"
assert_contains "$OUT" "2 inserted" "good rows inserted"
assert_contains "$OUT" "2 failed" "bad rows counted"
assert_contains "$OUT" "row 2 (line 3): color_master.color_name [required]" "required failure named with row, line, column"
assert_contains "$OUT" "row 3 (line 4): color_master.color_code [pattern]" "pattern failure named"
# `required` refuses empty text too: spaces under trim (a quoted "" is
# NULL already, under the default null_markers).
printf 'name,code\n"",#111111\n"   ",#222222\nPlum,#8E4585\n' > "$IT_TMP/c3e.csv"
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/c3e.csv" --no-reject-file
assert_contains "$OUT" 'row 1 (line 2): color_master.color_name [required] a value is required' "quoted empty value is not a value"
assert_contains "$OUT" 'row 2 (line 3): color_master.color_name [required] a value is required (the value is empty)' "spaces-only value is not a value under trim"
assert_eq "0|1" "$(sql "SELECT count(*) FILTER (WHERE color_name = ''), count(*) FILTER (WHERE color_name = 'Plum') FROM color_master")" "no empty colour stored, the good row lands"
rej="$IT_TMP/c3.csv.rejects.csv"
[ -f "$rej" ] || fail "default reject file written"
assert_eq "3" "$(wc -l < "$rej" | tr -d ' ')" "reject file has header + 2 rows"
assert_contains "$(head -1 "$rej")" '"ingot_row","ingot_line","ingot_error"' "reject header"
assert_contains "$(cat "$rej")" '"Teal","not-a-colour","3","4"' "reject row keeps original values"
# the reject file can be fixed and re-imported as is (extra columns ignored)
sed -i 's/not-a-colour/#008080/; s/^"",/"Navy",/' "$rej"
run_ingot 0 run "$D/colors.yaml" "$rej" --no-reject-file --json
assert_contains "$OUT" '"inserted": 2' "fixed reject file re-imports"

# The reject file of a windows-1252 input is windows-1252: fixed and
# re-imported through the same pipeline, its names are not converted twice.
sed 's/^targets:/source: { encoding: windows-1252 }\ntargets:/' "$D/colors.yaml" > "$IT_TMP/c1252.yaml"
printf 'name,code\nCaf\xe9 \x80,bad\n' > "$IT_TMP/e1252.csv"
run_ingot 2 run "$IT_TMP/c1252.yaml" "$IT_TMP/e1252.csv"
sed -i 's/"bad"/"#C0FFEE"/' "$IT_TMP/e1252.csv.rejects.csv"
run_ingot 0 run "$IT_TMP/c1252.yaml" "$IT_TMP/e1252.csv.rejects.csv"
assert_eq "Café €" "$(sql "SELECT color_name FROM color_master WHERE color_code = '#C0FFEE'")" "a windows-1252 reject file re-imports unchanged"

# Without a header row the reject file has none either: fixed, it
# re-imports by position (the ingot_* fields come after the data).
cat > "$IT_TMP/nohdr.yaml" <<'YAML'
source: { header: false }
targets:
  - table: color_master
    key: [color_name]
    key_predicate: deleted_at IS NULL
    columns:
      color_name: { position: 1, rules: { required: true } }
      color_code: { position: 2, transforms: [upper], rules: { pattern: "^#[0-9A-F]{6}$" } }
YAML
printf 'NoHdrA,bad\nNoHdrB,#000001\n' > "$IT_TMP/nohdr.csv"
run_ingot 1 run "$IT_TMP/nohdr.yaml" "$IT_TMP/nohdr.csv"
assert_eq '"NoHdrA","bad","1","1",' "$(cut -c1-23 "$IT_TMP/nohdr.csv.rejects.csv")" "a headerless reject file starts with the row"
sed -i 's/"bad"/"#000002"/' "$IT_TMP/nohdr.csv.rejects.csv"
run_ingot 0 run "$IT_TMP/nohdr.yaml" "$IT_TMP/nohdr.csv.rejects.csv"
assert_eq "#000002" "$(sql "SELECT color_code FROM color_master WHERE color_name = 'NoHdrA'")" "a headerless reject file re-imports"

# A ragged row of a headerless input is padded or cut to its width: its
# ingot_* fields never land in data columns of the re-import.
printf 'NoHdrF,#000003\nNoHdrE\nNoHdrG,#000004,x\n' > "$IT_TMP/nohdr_rag.csv"
run_ingot 1 run "$IT_TMP/nohdr.yaml" "$IT_TMP/nohdr_rag.csv"
assert_eq '"NoHdrE","","2","2",' "$(sed -n 1p "$IT_TMP/nohdr_rag.csv.rejects.csv" | cut -c1-20)" "a short headerless row padded"
assert_contains "$(sed -n 2p "$IT_TMP/nohdr_rag.csv.rejects.csv")" '"NoHdrG","#000004","3","3","[CSV_RAGGED] ' "a long headerless row cut"
assert_contains "$(sed -n 2p "$IT_TMP/nohdr_rag.csv.rejects.csv")" 'extra fields: x"' "its extra field in the message"
run_ingot 0 run "$IT_TMP/nohdr.yaml" "$IT_TMP/nohdr_rag.csv.rejects.csv"
assert_eq "NoHdrE:NULL,NoHdrG:#000004" "$(sql "SELECT string_agg(color_name || ':' || coalesce(color_code, 'NULL'), ',' ORDER BY color_name) FROM color_master WHERE color_name IN ('NoHdrE', 'NoHdrG')")" "re-imported by position, nothing shifted"

# A row the reader could not parse is copied to the reject file as it was
# (quotes, shortness, an over-long field), so that imported again unchanged
# it fails again, and once fixed it lands.
printf 'name,code\nRagA\n"Rag"B,#0000A1\nWideC,#0000A2,extra\nGoodD,#0000A3\n' > "$IT_TMP/pe.csv"
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/pe.csv"
pe="$IT_TMP/pe.csv.rejects.csv"
assert_eq 'RagA,"1","2","[CSV_RAGGED] ' "$(sed -n 2p "$pe" | cut -c1-27)" "a short row copied as it was"
assert_eq '"Rag"B,#0000A1,"2","3","name: [CSV_QUOTE] ' "$(sed -n 3p "$pe" | cut -c1-42)" "a misplaced quote copied as it was, its column named"
assert_eq 'WideC,#0000A2,extra,"3","4","[CSV_RAGGED] ' "$(sed -n 4p "$pe" | cut -c1-42)" "a long row copied as it was"
run_ingot 2 run "$D/colors.yaml" "$pe"
assert_contains "$OUT" "3 failed" "unchanged, they fail again"
# ... into a reject file of their own, with one set of ingot_* fields
assert_eq 'RagA,"1","2","[CSV_RAGGED] |"Rag"B,#0000A1,"2","3","name: [CSV_QUOTE] |WideC,#0000A2,extra,"3","4","[CSV_RAGGED] ' \
  "$(sed -n '2p;3p;4p' "$pe.rejects.csv" | sed -E 's/(\[CSV_[A-Z]+\] ).*/\1/' | paste -sd'|')" "a reject file's rejected rows keep one set of ingot_* fields"
assert_eq 1 "$(sed -n 2p "$pe.rejects.csv" | grep -o 'CSV_RAGGED' | wc -l)" "not the old set too"
assert_eq 0 "$(sql "SELECT count(*) FROM color_master WHERE color_name IN ('RagA', 'RagB', 'WideC', 'Rag\"B')")" "none of them landed"
sed -i 's/^RagA,/RagA,#0000A0,/; s/^"Rag"B,/RagB,/; s/^WideC,#0000A2,extra,/WideC,#0000A2,/' "$pe"
run_ingot 0 run "$D/colors.yaml" "$pe" --json
assert_contains "$OUT" '"inserted": 3' "fixed, they land"
long=$(printf 'L%.0s' $(seq 300))
printf 'name,code\nShort,#0000C1\n%s,#0000C2\n' "$long" > "$IT_TMP/fs.csv"
sed 's/^targets:/source: { max_field_bytes: 200 }\ntargets:/' "$D/colors.yaml" > "$IT_TMP/fs.yaml"
run_ingot 1 run "$IT_TMP/fs.yaml" "$IT_TMP/fs.csv"
assert_eq "$long,#0000C2,\"2\",\"3\",\"name: [CSV_FIELD_SIZE] " "$(sed -n 2p "$IT_TMP/fs.csv.rejects.csv" | cut -c1-341)" "an over-long field kept whole"
run_ingot 2 run "$IT_TMP/fs.yaml" "$IT_TMP/fs.csv.rejects.csv" --no-reject-file
assert_contains "$OUT" "[CSV_FIELD_SIZE]" "and refused again, not stored empty"
assert_eq 0 "$(sql "SELECT count(*) FROM color_master WHERE color_code = '#0000C2'")" "the over-long row did not land"

# --json shows a failed row's values in place: an invalid byte or a NUL
# is U+FFFD, and the values after it keep their positions.
printf 'name,code\nBad\377X,#0000B1\nNu\000l,#0000B2\n' > "$IT_TMP/u8.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/u8.csv" --json --no-reject-file
python3 -c '
import json, sys
rows = json.loads(sys.stdin.read())["failed_rows"]
assert [r["values"] for r in rows] == [["Bad\ufffdX", "#0000B1"], ["Nu\ufffdl", "#0000B2"]], rows
' <<<"$OUT" || fail "failed values in place as text: $OUT"

# A position beyond a headerless input's width is refused before any row
# is written, as a header without the column is; missing_columns: null
# makes it NULL on purpose.
printf 'NoHdrC\nNoHdrD\n' > "$IT_TMP/narrow.csv"
run_ingot 2 run "$IT_TMP/nohdr.yaml" "$IT_TMP/narrow.csv"
assert_contains "$ERR" "$IT_TMP/narrow.csv: line 1: the input has 1 field per row and pipeline nohdr reads position 2 (target color_master, column color_code); fix the input or set source.missing_columns: null" "a position beyond the width"
assert_eq 0 "$(sql "SELECT count(*) FROM color_master WHERE color_name IN ('NoHdrC', 'NoHdrD')")" "nothing written"
sed 's/^source: { header: false }/source: { header: false, missing_columns: null }/' "$IT_TMP/nohdr.yaml" > "$IT_TMP/nohdr_null.yaml"
sed -i 's/rules: { pattern: "^#\[0-9A-F\]{6}$" }//' "$IT_TMP/nohdr_null.yaml"
run_ingot 0 run "$IT_TMP/nohdr_null.yaml" "$IT_TMP/narrow.csv"
assert_eq "NoHdrC:,NoHdrD:" "$(sql "SELECT string_agg(color_name || ':' || coalesce(color_code, ''), ',' ORDER BY color_name) FROM color_master WHERE color_name IN ('NoHdrC', 'NoHdrD')")" "missing_columns: null reads it as NULL"

# A value too long for a varchar(n), or too large for a numeric(p,s),
# names its column, which PostgreSQL's message does not.
sql "CREATE TABLE vt (code varchar(5) PRIMARY KEY, note varchar(3), amount numeric(4,2))"
cat > "$IT_TMP/vt.yaml" <<'YAML'
targets:
  - table: vt
    key: [code]
    columns:
      code: { from: code }
      note: { from: note }
      amount: { from: amount, type: numeric }
YAML
printf 'code,note,amount\nok1,abc,1.5\nok2,abcd,1\nok3,ab,123.4\n' > "$IT_TMP/vt.csv"
run_ingot 1 run "$IT_TMP/vt.yaml" "$IT_TMP/vt.csv" --no-reject-file
assert_contains "$OUT" "row 2 (line 3): vt.note [22001] value too long for type character varying(3)" "a too-long value names its column"
assert_contains "$OUT" "row 3 (line 4): vt.amount [22003] numeric field overflow" "a numeric overflow names its column"
assert_eq "ok1" "$(sql "SELECT string_agg(code, ',') FROM vt")" "the good row lands"

# A column the pipeline does not type is read by the table column's type
# (text has no assignment cast to most): good values land, each bad one
# fails its row, and a length is checked, never cut.
sql "CREATE TYPE mood AS ENUM ('calm', 'cross')"
sql "CREATE DOMAIN short5 AS varchar(5)"
sql "CREATE DOMAIN posint AS integer CHECK (VALUE > 0)"
sql "CREATE TABLE untyped (code text PRIMARY KEY, n integer, m mood, b bit(3), c character(3), u uuid, d short5, p posint)"
cat > "$IT_TMP/untyped.yaml" <<'YAML'
targets:
  - table: untyped
    key: [code]
    columns: { code: code, n: n, m: m, b: b, c: c, u: u, d: d, p: p }
YAML
printf 'code,n,m,b,c,u,d,p\nok1,1,calm,101,ab,6f1c2a4e-52a1-4b1e-9d5c-0a3f2b1c9e77,abcde,1\nbad_n,x,calm,101,ab,,,\nbad_m,2,angry,101,ab,,,\nbad_b,3,calm,10,ab,,,\nbad_c,4,calm,101,abcd,,,\nbad_d,6,calm,101,ab,,abcdef,\nbad_p,7,calm,101,ab,,,0\nok2,5,cross,111,x,,,\n' > "$IT_TMP/untyped.csv"
for bs in 5000 1; do
  sql "TRUNCATE untyped"
  run_ingot 1 run "$IT_TMP/untyped.yaml" "$IT_TMP/untyped.csv" --json --no-reject-file --batch-size $bs
  assert_eq "ok1|1|calm|101|ab |6f1c2a4e-52a1-4b1e-9d5c-0a3f2b1c9e77|abcde|1,ok2|5|cross|111|x  |||" \
    "$(sql "SELECT string_agg(concat_ws('|', code, n, m, b, c, coalesce(u::text, ''), coalesce(d, ''), coalesce(p::text, '')), ',' ORDER BY code) FROM untyped")" "untyped columns read by their types (batch size $bs)"
  assert_eq "2:22P02,3:22P02,4:22026,5:22001,6:22001,7:23514" "$(jq -r '[.failed_rows[] | "\(.row):\(.reasons[0].code)"] | join(",")' <<<"$OUT")" "each bad value fails its row, none is cut (batch size $bs)"
done
# Where a bare type name would read text otherwise than COPY (an interval
# with fields reads "2" as seconds, character[] is character(1)[]), the
# import is refused before anything is read, naming the column.
for col in "iv interval year" "ca character(3)[]"; do
  sql "DROP TABLE IF EXISTS untyped2"
  sql "CREATE TABLE untyped2 (code text PRIMARY KEY, ${col})"
  printf 'targets:\n  - table: untyped2\n    key: [code]\n    columns: { code: code, %s: %s }\n' "${col%% *}" "${col%% *}" > "$IT_TMP/untyped2.yaml"
  printf 'code,%s\nr1,2\n' "${col%% *}" > "$IT_TMP/untyped2.csv"
  run_ingot 2 run "$IT_TMP/untyped2.yaml" "$IT_TMP/untyped2.csv" --no-reject-file
  assert_contains "$ERR" "column ${col%% *}: the pipeline gives text and the column is ${col#* }, which ingot does not read text into as COPY would" "refused: ${col#* }"
  assert_eq 0 "$(sql "SELECT count(*) FROM untyped2")" "nothing written: ${col#* }"
done

# A reject file re-imports under unknown_columns: error too (its ingot_*
# columns are not the data's), and failing again it gets one set of them.
{ echo "source:"; echo "  unknown_columns: error"; cat "$D/colors.yaml"; } > "$IT_TMP/strict.yaml"
printf 'name,code\nStrictA,#0000D1\n,#0000D2\n' > "$IT_TMP/strict.csv"
run_ingot 1 run "$IT_TMP/strict.yaml" "$IT_TMP/strict.csv"
run_ingot 2 run "$IT_TMP/strict.yaml" "$IT_TMP/strict.csv.rejects.csv" # its one row fails again
assert_contains "$OUT" "row 1 (line 2): color_master.color_name [required]" "the reject file re-imported by a strict pipeline"
assert_eq '"name","code","ingot_row","ingot_line","ingot_error"' \
  "$(head -1 "$IT_TMP/strict.csv.rejects.csv.rejects.csv")" "one set of ingot_* columns"

# From stdin there is no FILE to name a default reject file after: the
# summary says the failed rows were not saved, and --reject-file saves them.
mkdir -p "$IT_TMP/stdin_cwd"
(cd "$IT_TMP/stdin_cwd" && run_ingot 1 run "$OLDPWD/$D/colors.yaml" - < "$IT_TMP/c3.csv"
 assert_contains "$OUT" "failed rows not saved (the input is stdin): pass --reject-file PATH" "stdin failures said unsaved"
 assert_eq "" "$(ls -- *rejects* 2>/dev/null)" "no reject file guessed for stdin")
run_ingot 1 run "$D/colors.yaml" - --reject-file "$IT_TMP/stdin.rej" < "$IT_TMP/c3.csv"
assert_contains "$OUT" "failed rows written to $IT_TMP/stdin.rej" "stdin with --reject-file"
assert_eq "3" "$(wc -l < "$IT_TMP/stdin.rej" | tr -d ' ')" "stdin reject file has header + 2 rows"
run_ingot 1 run "$D/colors.yaml" - --no-reject-file < "$IT_TMP/c3.csv"
assert_not_contains "$OUT" "not saved" "no note when no reject file was wanted"

# The reject file is created at the first failed row, never over the input.
printf 'name,code\nRejA,#0000AA\n,#0000AB\n' > "$IT_TMP/rj.csv"
cp "$IT_TMP/rj.csv" "$IT_TMP/rj.orig"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/rj.csv" --reject-file "$IT_TMP/rj.csv"
assert_contains "$ERR" "the reject file would be the input itself" "the input as reject file refused"
cmp -s "$IT_TMP/rj.csv" "$IT_TMP/rj.orig" || fail "the input was changed by its own reject file"
ln -s "$IT_TMP/rj.csv" "$IT_TMP/rj.link"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/rj.csv" --reject-file "$IT_TMP/rj.link" --dry-run
assert_contains "$ERR" "the reject file would be the input itself" "a link to the input refused"
cmp -s "$IT_TMP/rj.csv" "$IT_TMP/rj.orig" || fail "the input was changed through a link"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/rj.csv" --reject-file "$IT_TMP/x.rej" --no-reject-file
assert_contains "$ERR" "contradict each other" "contradictory reject flags"
echo "keep me" > "$IT_TMP/keep.txt"
printf 'name,code\nRejOk,#0000AC\n' > "$IT_TMP/rjok.csv"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/rjok.csv" --reject-file "$IT_TMP/keep.txt"
assert_eq "keep me" "$(cat "$IT_TMP/keep.txt")" "a reject file no row needed is not touched"
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/rj.csv"
[ -f "$IT_TMP/rj.csv.rejects.csv" ] || fail "default reject file written"
run_ingot 2 run "$IT_TMP/no_such_pipeline.yaml" "$IT_TMP/rj.csv"
sed 's/table: color_master/table: colour_mastr/' "$D/colors.yaml" > "$IT_TMP/typo.yaml"
run_ingot 2 run "$IT_TMP/typo.yaml" "$IT_TMP/rj.csv" --json
assert_contains "$OUT" '"success_rate": null' "a refused run has no success rate"
[ -f "$IT_TMP/rj.csv.rejects.csv" ] || fail "a refused run removed the last run's reject file"
assert_eq "" "$(ls "$IT_TMP"/rjok.csv.rejects.csv 2>/dev/null)" "no reject file for a clean run"
printf 'name,code\nRejA,#0000AA\n' > "$IT_TMP/rj.csv"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/rj.csv" --dry-run
[ -f "$IT_TMP/rj.csv.rejects.csv" ] || fail "a clean dry run removed the last run's reject file"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/rj.csv"
assert_eq "" "$(ls "$IT_TMP"/rj.csv.rejects.csv 2>/dev/null)" "a clean run of the same file removes the stale reject file"
# A pipe (process substitution) has no default reject file: a clean
# import succeeds instead of failing to create /dev/fd/N.rejects.csv.
run_ingot 0 run "$D/colors.yaml" <(cat "$IT_TMP/rjok.csv")

# --quiet still says that rows failed (on stderr, one line); a run that
# stopped early gives no success rate for the rows it did not read.
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/c3.csv" --quiet --reject-file "$IT_TMP/q.rej"
assert_eq "" "$OUT" "--quiet prints no summary"
assert_contains "$ERR" "ingot run: 2 rows failed, written to $IT_TMP/q.rej" "--quiet names the failed rows"
printf 'name,code\nStopA,#0000C1\nStopB,#0000C2\nStopC,#0000C3\n' > "$IT_TMP/stop.csv"
run_ingot 2 run "$D/colors.yaml" - --max-rows 2 --no-reject-file < <(cat "$IT_TMP/stop.csv")
assert_contains "$OUT" "2 rows in" "the rows read before the limit"
assert_contains "$OUT" "(stopped early (limit): the rows after these were not read)" "no success rate for a stopped run"
assert_not_contains "$OUT" "succeeded" "no success rate for a stopped run"

# --- every row failing is exit 2 -----------------------------------------
printf 'name,code\n,#000000\n' > "$IT_TMP/c4.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/c4.csv" --no-reject-file

# --- duplicate-key policies ----------------------------------------------
printf 'size,sort\nS,1\nM,2\nS,3\nL,4\nM,5\n' > "$IT_TMP/s.csv"
run_ingot 1 run "$D/sizes_error.yaml" "$IT_TMP/s.csv" --no-reject-file --json
assert_contains "$OUT" '"failed": 2' "error policy fails later duplicates"
assert_contains "$OUT" 'row 1 has the same key' "error names the first row"
assert_eq "S:1,M:2,L:4" "$(sql "SELECT string_agg(size_name || ':' || sort_order, ',' ORDER BY size_name DESC) FROM size_master")" "first occurrences kept"
sql "DELETE FROM size_master"
run_ingot 0 run "$D/sizes_first.yaml" "$IT_TMP/s.csv" --json
assert_contains "$OUT" '"skipped": 2' "first policy skips later duplicates"
assert_eq "S:1,M:2,L:4" "$(sql "SELECT string_agg(size_name || ':' || sort_order, ',' ORDER BY size_name DESC) FROM size_master")" "first wins"
sql "DELETE FROM size_master"
run_ingot 0 run "$D/sizes_last.yaml" "$IT_TMP/s.csv" --json --batch-size 2
assert_eq "S:3,M:5,L:4" "$(sql "SELECT string_agg(size_name || ':' || sort_order, ',' ORDER BY size_name DESC) FROM size_master")" "last wins, also across batches"

# --- missing parents and a violated check constraint ---------------------
sql "INSERT INTO item_master (name) VALUES ('Tee'), ('Cap')"
cat > "$IT_TMP/v.csv" <<'CSV'
item,color,size,sku,price
Tee,Red,S,TEE-RED-S,10.00
Tee,Red,M,TEE-RED-M,-1.00
Hat,Red,S,HAT-RED-S,5.00
Cap,Red,L,CAP-RED-L,7.50
Cap,Mauve,S,CAP-MAU-S,7.50
Tee,Green,S,TEE-GRN-S,-3.00
Cap,Green,M,CAP-GRN-M,8.00
CSV
run_ingot 1 run "$D/variants.yaml" "$IT_TMP/v.csv" --json --no-reject-file
assert_contains "$OUT" '"inserted": 3' "good variants inserted"
assert_contains "$OUT" '"failed": 4' "bad variants failed"
assert_contains "$OUT" '"code": "MISSING_PARENT"' "missing parent is a row error"
assert_eq "2" "$(jq '[.failed_rows[].reasons[] | select(.code == "MISSING_PARENT") | select(.message | test("= \"(Hat|Mauve)\" \\(the row"))] | length' <<<"$OUT")" "a missing parent's message names the key looked for"
assert_contains "$OUT" '"code": "23514"' "check violation carries its SQLSTATE"
assert_contains "$OUT" '"constraint": "item_variant_price_check"' "constraint named"
assert_eq "CAP-GRN-M,CAP-RED-L,TEE-RED-S" "$(sql "SELECT string_agg(sku, ',' ORDER BY sku) FROM item_variant")" "exactly the good rows committed"

# A lookup key no unique index covers may name two parent rows: that row
# fails (AMBIGUOUS_PARENT), it is not written once per parent; a key
# naming one parent row lands, at any batch size.
sql "CREATE TABLE amb_p (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text UNIQUE, grp text)"
sql "CREATE TABLE amb_c (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, p_id bigint NOT NULL REFERENCES amb_p (id), code text, UNIQUE (p_id, code))"
sql "INSERT INTO amb_p (name, grp) VALUES ('p1', 'g1'), ('p2', 'g1'), ('p3', 'g2')"
cat > "$IT_TMP/amb.yaml" <<'YAML'
targets:
  - table: amb_c
    key: [p_id, code]
    columns:
      p_id: { lookup: { table: amb_p, key: grp, from: grp } }
      code: code
YAML
printf 'grp,code\ng1,x\ng2,y\ng3,z\n' > "$IT_TMP/amb.csv"
for bs in 5000 1; do
  sql "DELETE FROM amb_c"
  run_ingot 1 run "$IT_TMP/amb.yaml" "$IT_TMP/amb.csv" --json --no-reject-file --batch-size $bs
  assert_contains "$OUT" '"inserted": 1' "the unambiguous row lands (batch size $bs)"
  assert_eq "AMBIGUOUS_PARENT:2 amb_p rows have grp = \"g1\" (the row's grp): the lookup needs exactly one|MISSING_PARENT:no amb_p row with grp = \"g3\" (the row's grp)" \
    "$(jq -r '[.failed_rows[].reasons[] | .code + ":" + .message] | join("|")' <<<"$OUT")" "two parents fail the row, none is missing (batch size $bs)"
  assert_eq "p3:y" "$(sql "SELECT string_agg(p.name || ':' || c.code, ',') FROM amb_c c JOIN amb_p p ON p.id = c.p_id")" "nothing written twice (batch size $bs)"
done

# --- malformed CSV: reported with line numbers, the rest imported --------
printf 'name,code\nA1,#000001\n"B1,#000002\nC1,#000003\n' > "$IT_TMP/m1.csv"
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/m1.csv" --json --no-reject-file
assert_contains "$OUT" '"code": "CSV_QUOTE"' "unterminated quote reported"
printf 'name,code\nA2,#000001\nB2,#000002,extra\nC2,#000003\n' > "$IT_TMP/m2.csv"
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/m2.csv" --json --no-reject-file
assert_contains "$OUT" '"code": "CSV_RAGGED"' "ragged row reported"
assert_contains "$OUT" '"line": 3' "ragged row's line"
assert_eq "2" "$(sql "SELECT count(*) FROM color_master WHERE color_name IN ('A2','C2')")" "rows around the ragged one imported"
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/m2.csv" --reject-file "$IT_TMP/m2.rej"
assert_eq 'B2,#000002,extra,"2","3","[CSV_RAGGED] '"$IT_TMP"'/m2.csv:3: 3 fields, expected 2 (record at byte offset 21)"' "$(sed -n 2p "$IT_TMP/m2.rej")" "a ragged row of a file is copied as it was"
# From a pipe too (its bytes are kept in a temporary file as they are
# read): as it was, so that the unedited reject file fails again, rows
# with too few fields and a misplaced quote included.
{ cat "$IT_TMP/m2.csv"; printf 'D2\nE2,"#0"00005\n'; } | run_ingot 1 run "$D/colors.yaml" - --reject-file "$IT_TMP/m2p.rej"
assert_eq 'B2,#000002,extra,"2","3","[CSV_RAGGED] -:3: 3 fields, expected 2 (record at byte offset 21)"' "$(sed -n 2p "$IT_TMP/m2p.rej")" "from a pipe, copied as it was"
assert_eq 'D2,"4","5","[CSV_RAGGED] -:5: 1 field, expected 2 (record at byte offset 49)"' "$(sed -n 3p "$IT_TMP/m2p.rej")" "a short row from a pipe, as it was"
assert_contains "$(sed -n 4p "$IT_TMP/m2p.rej")" 'E2,"#0"00005,"5","6","code: [CSV_QUOTE]' "a misplaced quote from a pipe, as it was"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/m2p.rej" --json --no-reject-file
assert_eq "0|3" "$(jq -r '"\(.counts.inserted)|\(.counts.failed)"' <<<"$OUT")" "the unedited reject file of a pipe fails again"
printf 'name,code\nA3,#000001\nB\xff3,#000002\nC3,#000003\n' > "$IT_TMP/m3.csv"
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/m3.csv" --json --no-reject-file
assert_contains "$OUT" '"code": "CSV_UTF8"' "invalid UTF-8 reported"

# --- limits ---------------------------------------------------------------
{ echo "name,code"; for i in $(seq 1 30); do echo "L$i,#0000AA"; done; } > "$IT_TMP/l.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/l.csv" --max-rows 20
assert_contains "$ERR" "30 data rows, more than IMPORT_MAX_ROWS=20" "over-limit file refused with both numbers"
assert_eq "0" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 'L%'")" "nothing written when refused"
# Lines only bound the rows: 20 rows on 41 lines (quoted line breaks, CRLF,
# a blank line) are within --max-rows 20, and 21 such rows are not.
ml() { printf 'name,code\r\n'; for i in $(seq 1 "$1"); do printf '"M%d\r\nx",#0000AA\r\n' "$i"; done; printf '\r\n'; }
ml 20 > "$IT_TMP/ml.csv"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/ml.csv" --max-rows 20 --no-reject-file --json
assert_contains "$OUT" '"read": 20' "20 multi-line rows are within --max-rows 20"
ml 21 > "$IT_TMP/ml.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/ml.csv" --max-rows 20 --no-reject-file
assert_contains "$ERR" "21 data rows, more than IMPORT_MAX_ROWS=20" "21 multi-line rows refused, counted exactly"
# (through a pipe: stdin redirected from a file is seekable and pre-counted)
rc=0; cat "$IT_TMP/l.csv" | "$INGOT_BIN" run "$D/colors.yaml" - --max-rows 20 > "$IT_TMP/o" 2> "$IT_TMP/e" || rc=$?
assert_eq 2 "$rc" "stdin over the limit exits 2"
assert_contains "$(cat "$IT_TMP/e")" "stopped at IMPORT_MAX_ROWS=20" "stdin stops at the limit and says so"
assert_eq "20" "$(sql "SELECT count(*) FROM color_master WHERE color_name LIKE 'L%'")" "stdin imported up to the limit"

# --- dry run leaves the tables untouched ----------------------------------
before=$(sql "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM color_master t")
printf 'name,code\nRed,#111111\nDryOnly,#222222\n' > "$IT_TMP/d.csv"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/d.csv" --dry-run --json
assert_contains "$OUT" '"dry_run": true' "dry run flagged"
assert_contains "$OUT" '"inserted": 1' "dry run reports the insert"
assert_contains "$OUT" '"updated": 1' "dry run reports the update"
assert_eq "$before" "$(sql "SELECT md5(string_agg(t::text, ',' ORDER BY id)) FROM color_master t")" "dry run changed nothing"

# --- usage ----------------------------------------------------------------
run_ingot 2 run nosuchpipeline "$IT_TMP/d.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/missing.csv"
assert_contains "$ERR" "cannot open" "missing input named"
run_ingot 2 run "$D/colors.yaml"
assert_contains "$ERR" "missing argument" "run needs a file"

# A header that reads as one column holding another delimiter gets a hint;
# one with several columns, only the missing ones.
printf 'name;code\nSemi;#000001\n' > "$IT_TMP/semi.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/semi.csv" --no-reject-file
assert_contains "$ERR" "the input lacks columns 'name', 'code'" "columns missing from a semicolon file"
assert_contains "$ERR" "if the file is delimited by ';', set source.delimiter: \";\"" "the delimiter hint"
printf 'name\tcode\nTab\t#000001\n' > "$IT_TMP/tab.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/tab.csv" --no-reject-file
assert_contains "$ERR" "delimited by tabs, set source.delimiter: \"\\t\"" "the tab hint"
printf 'name,colour\nComma,#000001\n' > "$IT_TMP/comma.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/comma.csv" --no-reject-file
assert_contains "$ERR" "$IT_TMP/comma.csv: the input lacks column 'code'" "a missing column, named with the file"
assert_not_contains "$ERR" "delimited by" "no hint for a header of several columns"

# A key without a unique index: the failing statement is named as the
# upsert, not as the COPY before it in the same round trip.
sql "CREATE TABLE no_unique (code text, v text)" >/dev/null
printf 'targets:\n  - table: no_unique\n    key: [code]\n    columns:\n      code: code\n      v: v\n' > "$IT_TMP/nu.yaml"
printf 'code,v\na,1\n' > "$IT_TMP/nu.csv"
run_ingot 2 run "$IT_TMP/nu.yaml" "$IT_TMP/nu.csv" --no-reject-file --insert-first 0
assert_contains "$ERR" "the upsert from the stage table: ERROR:  there is no unique or exclusion constraint" "the upsert named"

# A header name said twice: refused when the pipeline reads it; otherwise
# every column keeps its place (names used to be merged, and the columns
# after a repeated one were read one place off).
printf 'name,name,code\nTwiceA,TwiceB,#00000F\n' > "$IT_TMP/twice.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/twice.csv" --no-reject-file
assert_contains "$ERR" "the header has column 'name' twice (columns 1 and 2)" "a repeated column the pipeline reads"
printf 'x,name,x,code\n1,TwiceC,2,#00000D\n' > "$IT_TMP/twice2.csv"
run_ingot 0 run "$D/colors.yaml" "$IT_TMP/twice2.csv" --no-reject-file
assert_eq "TwiceC|#00000D" "$(sql "SELECT color_name, color_code FROM color_master WHERE color_name = 'TwiceC'")" "columns after a repeated unread one keep their place"

# A table, column or parent table the database lacks is named before any
# row is read, not as a failed COPY of the first batch.
printf 'name,code\nNoTable,#000001\n' > "$IT_TMP/nt.csv"
sed 's/table: color_master/table: colour_mastr/' "$D/colors.yaml" > "$IT_TMP/nt.yaml"
run_ingot 2 run "$IT_TMP/nt.yaml" "$IT_TMP/nt.csv" --no-reject-file
assert_contains "$ERR" "target colour_mastr: table colour_mastr does not exist (run 'ingot migrate up'?)" "a missing table is named"
assert_not_contains "$ERR" "COPY" "a missing table is found before the first batch"
sed 's/      color_code:/      colour_code:/' "$D/colors.yaml" > "$IT_TMP/nc.yaml"
run_ingot 2 run "$IT_TMP/nc.yaml" "$IT_TMP/nt.csv" --no-reject-file
assert_contains "$ERR" "target color_master, column colour_code: table color_master has no such column" "a missing column is named"
sed 's/touch: updated_at/touch: changed_at/' "$D/colors.yaml" > "$IT_TMP/nu.yaml"
run_ingot 2 run "$IT_TMP/nu.yaml" "$IT_TMP/nt.csv" --no-reject-file
assert_contains "$ERR" "touch column changed_at: table color_master has no such column" "a missing touch column is named"
cat > "$IT_TMP/np.yaml" <<'YAML'
description: a lookup into a table that does not exist
targets:
  - table: color_master
    key: [color_name]
    key_predicate: deleted_at IS NULL
    columns:
      color_name: name
      color_code:
        lookup: { table: no_such_parent, key: code, id: code, from: code }
YAML
run_ingot 2 run "$IT_TMP/np.yaml" "$IT_TMP/nt.csv" --no-reject-file
assert_contains "$ERR" "lookup: parent table \"no_such_parent\" does not exist" "a missing parent table is named"
assert_eq "0" "$(sql "SELECT count(*) FROM color_master WHERE color_name = 'NoTable'")" "nothing imported"

# --- a batch holding only failed rows must not break the next batches -----
printf 'name,code\n,#FFFFFF\n,#000000\nBatchRed,#FF0000\nBatchBlue,#0000FF\n' > "$IT_TMP/b.csv"
run_ingot 1 run "$D/colors.yaml" "$IT_TMP/b.csv" --batch-size 2 --json --no-reject-file
assert_contains "$OUT" '"inserted": 2' "rows after an all-failed batch are imported"
assert_contains "$OUT" '"failed": 2' "only the two bad rows failed"

# --- on_conflict: error with duplicates: last keeps the last row ----------
sed 's/duplicates: last/duplicates: last\n    on_conflict: error/' "$D/colors.yaml" > "$IT_TMP/colors_err.yaml"
printf 'name,code\nDupA,#000001\nDupA,#000002\nDupC,#000003\n' > "$IT_TMP/e.csv"
run_ingot 0 run "$IT_TMP/colors_err.yaml" "$IT_TMP/e.csv" --json --no-reject-file
assert_eq "DupA|#000002" "$(sql "SELECT color_name, color_code FROM color_master WHERE color_name = 'DupA'")" "on_conflict error + last keeps the last row"
run_ingot 2 run "$IT_TMP/colors_err.yaml" "$IT_TMP/e.csv" --json --no-reject-file
assert_contains "$OUT" '"code": "ALREADY_EXISTS"' "existing keys are row errors under on_conflict: error"

# What the server says outside a result (a trigger's WARNING here; the
# FATAL of a terminated backend alike) goes through ingot's log, with its
# time and level, not bare to stderr.
sql "CREATE TABLE noisy (k text PRIMARY KEY, v text)"
sql "CREATE FUNCTION noisy_warn() RETURNS trigger LANGUAGE plpgsql AS
     \$\$ BEGIN RAISE WARNING 'noisy row %', NEW.k; RETURN NEW; END \$\$"
sql "CREATE TRIGGER noisy_warn BEFORE INSERT ON noisy FOR EACH ROW EXECUTE FUNCTION noisy_warn()"
printf 'targets:\n  - table: noisy\n    key: [k]\n    columns: { k: k, v: v }\n' > "$IT_TMP/noisy.yaml"
printf 'k,v\nn1,a\n' > "$IT_TMP/noisy.csv"
run_ingot 0 run "$IT_TMP/noisy.yaml" "$IT_TMP/noisy.csv"
assert_contains "$ERR" "postgres: WARNING:  noisy row n1" "the server's warning is logged"
assert_eq "" "$(grep -v -E '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]+ [a-z]+ ' <<<"$ERR" || true)" "every stderr line is a log line"

# --json keeps the first 1000 failed rows and says when there were more.
{ echo "name,code"; for i in $(seq 1 1005); do echo "Many $i,bad"; done; } > "$IT_TMP/many.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/many.csv" --json --no-reject-file
assert_eq "1005|1000|true" "$(jq -r '"\(.counts.failed)|\(.failed_rows | length)|\(.failed_rows_truncated)"' <<<"$OUT")" "failed_rows cut at 1000, and said so"
head -4 "$IT_TMP/many.csv" > "$IT_TMP/few.csv"
run_ingot 2 run "$D/colors.yaml" "$IT_TMP/few.csv" --json --no-reject-file
assert_eq "3|3|false" "$(jq -r '"\(.counts.failed)|\(.failed_rows | length)|\(.failed_rows_truncated)"' <<<"$OUT")" "all failed rows there, not truncated"

# A lookup whose key two parent rows share (no unique index) fails that
# row with the reason (AMBIGUOUS_PARENT), not the batch; the other rows
# land.
sql "CREATE TABLE maker (id bigserial PRIMARY KEY, code text NOT NULL)"
sql "INSERT INTO maker (code) VALUES ('M1'), ('M2'), ('M2')"
sql "CREATE TABLE widget (id bigserial PRIMARY KEY, name text NOT NULL UNIQUE, maker_id bigint)"
cat > "$IT_TMP/widget.yaml" <<'YAML'
targets:
  - table: widget
    key: [name]
    columns:
      name: name
      maker_id: { lookup: { table: maker, key: code, from: maker } }
YAML
printf 'name,maker\nw1,M1\nw2,M2\nw3,M1\n' > "$IT_TMP/widget.csv"
run_ingot 1 run "$IT_TMP/widget.yaml" "$IT_TMP/widget.csv" --json --no-reject-file
assert_eq "2|1|2" "$(jq -r '"\(.counts.inserted)|\(.counts.failed)|\(.failed_rows[0].row)"' <<<"$OUT")" "only the ambiguous row failed"
assert_eq 'AMBIGUOUS_PARENT:2 maker rows have code = "M2" (the row'"'"'s maker): the lookup needs exactly one' "$(jq -r '.failed_rows[0].reasons[0] | .code + ":" + .message' <<<"$OUT")" "and says why"
