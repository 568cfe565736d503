#!/usr/bin/env bash
# test_run_counts.sh - how a batch's upsert is counted and ordered.
#
# Into a plain table (no rules, no triggers but a foreign key's that do
# not write it during an upsert) the executor counts the upsert's
# inserted and updated rows by the table's statistics instead of
# RETURNING every row, and reads a stage it filled in key order without
# an ORDER BY (docs/architecture.md, "Counting and ordering a batch"). Both
# must give the same counts and table contents as the general form, on a
# file in no key order, over several batches, with keys that COPY escapes;
# a table whose triggers write more rows of it must still be counted by
# the rows themselves.
source "$(dirname "$0")/lib.sh"
# The import's inserted|updated|unchanged counts (from --json).
outcome() { jq -r '.counts | "\(.inserted)|\(.updated)|\(.unchanged)"' <<<"$OUT"; }
# $IT_TMP/NAME.yaml: gadget.yaml's pipeline (below) for table NAME, without qty.
like_gadget() { sed "s/table: gadget/table: $1/; /qty/d" "$IT_TMP/gadget.yaml" > "$IT_TMP/$1.yaml"; }

# --- a plain table: counted by statistics, staged in key order -----------
# (scripts/servers.sh creates the cluster with --locale=C.UTF-8: text keys
# in the default collation are ordered by their bytes, see sortable)
sql "CREATE TABLE gadget (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text, qty integer)"
cat > "$IT_TMP/gadget.yaml" <<'YAML'
targets:
  - table: gadget
    key: [code]
    duplicates: last
    columns:
      code: code
      label: label
      qty: { from: qty, type: int }
YAML
sql "INSERT INTO gadget (code, label, qty) SELECT 'c' || lpad(g::text, 4, '0'), 'old', g FROM generate_series(1, 1000) g"
# c0001..c0500 change, c0501..c1000 stay as they are, c1001..c2000 are new;
# shuffled, so that no batch comes in key order.
{ echo "code,label,qty"
  awk 'BEGIN { for (i = 1; i <= 2000; i++) printf "c%04d,%s,%d\n", i, i <= 500 ? "new" : i <= 1000 ? "old" : "fresh", i }' \
    | shuf --random-source=<(yes); } > "$IT_TMP/gadget.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/gadget.yaml" "$IT_TMP/gadget.csv" --batch-size 300 --json --no-reject-file
assert_contains "$ERR" "target 0: rows counted by the table's statistics" "a plain table is counted by its statistics"
assert_contains "$ERR" "target 0: batches staged in key order" "a text key is staged in key order"
assert_eq "2000|1000|500|500|0" "$(jq -r '.counts | "\(.read)|\(.inserted)|\(.updated)|\(.unchanged)|\(.skipped)"' <<<"$OUT")" "counts by statistics"
assert_eq "2000|500|500|1000|0" "$(sql "SELECT count(*), count(*) FILTER (WHERE label = 'new'), count(*) FILTER (WHERE label = 'old'), count(*) FILTER (WHERE label = 'fresh'), count(*) FILTER (WHERE qty <> substr(code, 2)::int) FROM gadget")" "every row holds its file values"

# The same file again: nothing to change.
run_ingot 0 run "$IT_TMP/gadget.yaml" "$IT_TMP/gadget.csv" --batch-size 300 --json --no-reject-file
assert_eq "0|0|2000" "$(outcome)" "a re-import is all unchanged"

# A key repeated within a batch (duplicates: last keeps the last), and
# keys COPY escapes (a tab, a backslash, a line end inside quotes): counts
# and values as the general form gives them.
printf 'code,label,qty\nz2,first,1\n"z\t1",tab,2\nz2,last,3\n"z\\1",backslash,4\n"z\n1",newline,5\nc0001,again,6\n' > "$IT_TMP/esc.csv"
run_ingot 0 run "$IT_TMP/gadget.yaml" "$IT_TMP/esc.csv" --json --no-reject-file
assert_eq "6|4|1|0|1" "$(jq -r '.counts | "\(.read)|\(.inserted)|\(.updated)|\(.unchanged)|\(.skipped)"' <<<"$OUT")" "a repeated key and escaped keys"
assert_eq "last|3" "$(sql "SELECT label, qty FROM gadget WHERE code = 'z2'")" "the last row of a repeated key"
assert_eq "tab|backslash|newline|again" "$(sql "SELECT string_agg(label, '|' ORDER BY qty) FROM gadget WHERE code IN (E'z\\t1', E'z\\\\1', E'z\\n1', 'c0001')")" "escaped keys land as they were"

# --- a table whose triggers write more of its rows -------------------------
# Every row inserted or updated by the import adds an audit row to the same
# table: its statistics count those too, so the import counts by RETURNING.
sql "CREATE TABLE audited (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text)"
sql "CREATE FUNCTION audited_log() RETURNS trigger LANGUAGE plpgsql AS
     \$\$ BEGIN
       IF NEW.code NOT LIKE 'log %' THEN
         INSERT INTO audited (code, label) VALUES ('log ' || NEW.code || ' ' || clock_timestamp(), TG_OP);
       END IF;
       RETURN NULL;
     END \$\$"
sql "CREATE TRIGGER audited_log AFTER INSERT OR UPDATE ON audited FOR EACH ROW EXECUTE FUNCTION audited_log()"
like_gadget audited
printf 'code,label\na3,x\na1,x\na2,x\n' > "$IT_TMP/a.csv"
# (a row first, so that the table has pages: the insert-first path
# counts by COPY and is not what this is about)
sql "INSERT INTO audited (code, label) VALUES ('a0', 'x')"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/audited.yaml" "$IT_TMP/a.csv" --json --no-reject-file
LOG=$ERR
assert_eq "3|0|0" "$(outcome)" "the imported rows, not the trigger's"
assert_eq "8" "$(sql "SELECT count(*) FROM audited")" "the trigger did write its rows (one for a0 too)"
printf 'code,label\na3,x\na1,y\na2,x\n' > "$IT_TMP/a.csv"
run_ingot 0 run "$IT_TMP/audited.yaml" "$IT_TMP/a.csv" --json --no-reject-file
assert_eq "0|1|2" "$(outcome)" "an update counted once"
assert_not_contains "$LOG" "counted by the table's statistics" "a table with triggers is not counted by its statistics"

# --- a foreign key's triggers: those that read keep the statistics --------
# A table other tables reference has the key's triggers: NO ACTION on
# update only reads the children, and ON DELETE CASCADE cannot fire in an
# upsert: its statistics still count only the upsert.
sql "CREATE TABLE maker (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text)"
sql "CREATE TABLE made (id bigserial PRIMARY KEY, maker_id bigint NOT NULL REFERENCES maker (id) ON DELETE CASCADE)"
sql "INSERT INTO maker (code, label) VALUES ('m1', 'x'), ('m2', 'x')"
sql "INSERT INTO made (maker_id) SELECT id FROM maker"
like_gadget maker
printf 'code,label\nm1,y\nm2,x\nm3,z\n' > "$IT_TMP/m.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/maker.yaml" "$IT_TMP/m.csv" --json --no-reject-file
assert_contains "$ERR" "target 0: rows counted by the table's statistics" "a referenced table is counted by its statistics"
assert_eq "1|1|1" "$(outcome)" "a referenced table's counts"
assert_eq "y|x|z" "$(sql "SELECT string_agg(label, '|' ORDER BY code) FROM maker")" "a referenced table's rows"
# A child's check of its parent fires on every row it inserts or updates,
# and only reads the parent.
sql "CREATE TABLE part (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, maker_code text NOT NULL REFERENCES maker (code))"
sql "INSERT INTO part (code, maker_code) VALUES ('p1', 'm1')"
printf 'description: parts\ntargets:\n  - table: part\n    key: [code]\n    columns:\n      code: code\n      maker_code: maker\n' > "$IT_TMP/part.yaml"
printf 'code,maker\np1,m2\np2,m3\np3,m1\n' > "$IT_TMP/p.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/part.yaml" "$IT_TMP/p.csv" --json --no-reject-file
assert_contains "$ERR" "target 0: rows counted by the table's statistics" "a referencing table is counted by its statistics"
assert_eq "2|1|0" "$(outcome)" "a referencing table's counts"
assert_eq "p1=m2 p2=m3 p3=m1" "$(sql "SELECT string_agg(code || '=' || maker_code, ' ' ORDER BY code) FROM part")" "a referencing table's rows"

# ON UPDATE CASCADE writes the children, here rows of the table itself:
# counted by RETURNING, or the cascaded rows would count as updated.
sql "CREATE TABLE node (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text UNIQUE, parent_label text REFERENCES node (label) ON UPDATE CASCADE)"
sql "INSERT INTO node (code, label) VALUES ('n1', 'A')"
sql "INSERT INTO node (code, label, parent_label) VALUES ('n2', 'B', 'A'), ('n3', 'C', 'A')"
like_gadget node
printf 'code,label\nn1,Z\nn4,D\n' > "$IT_TMP/n.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/node.yaml" "$IT_TMP/n.csv" --json --no-reject-file
assert_not_contains "$ERR" "counted by the table's statistics" "a table whose key cascades into itself is not counted by its statistics"
assert_eq "1|1|0" "$(outcome)" "the imported rows, not the cascaded ones"
assert_eq "2|Z" "$(sql "SELECT count(*) FILTER (WHERE parent_label = 'Z'), max(label) FILTER (WHERE code = 'n1') FROM node")" "the cascade did update the children"

# --- keys with a NULL equal no other key -----------------------------------
# (counted while sorting: three rows without a code are three new rows)
sql "CREATE TABLE tagged (id bigserial PRIMARY KEY, code text UNIQUE, label text)"
sql "INSERT INTO tagged (code, label) VALUES ('t0', 'seed')"
like_gadget tagged
printf 'code,label\n,a\nt1,b\n,c\nt1,d\n,e\n' > "$IT_TMP/t.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/tagged.yaml" "$IT_TMP/t.csv" --json --no-reject-file
assert_contains "$ERR" "batches staged in key order" "a nullable text key is staged in key order"
assert_eq "5|4|0|0|1" "$(jq -r '.counts | "\(.read)|\(.inserted)|\(.updated)|\(.unchanged)|\(.skipped)"' <<<"$OUT")" "three NULL keys are three rows; t1 twice is one"
assert_eq "4|0|0|1" "$(jq -r '.targets[0] | "\(.inserted)|\(.updated)|\(.unchanged)|\(.skipped)"' <<<"$OUT")" "the same in the target's counts"
assert_eq "3|d" "$(sql "SELECT (SELECT count(*) FROM tagged WHERE code IS NULL), (SELECT label FROM tagged WHERE code = 't1')")" "the NULL-key rows and the last t1 landed"

# --- the stage is read in key order, whatever the rows' widths -------------
# The id each row gets (nextval, as the upsert reaches the row) shows the
# order the rows were locked in. Rows of 5 and 900 bytes: COPY into a table
# it did not create or truncate in its transaction fills earlier pages'
# free space, so later batches would be read out of order without the
# stage's truncation.
sql "CREATE TABLE ordered (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text)"
like_gadget ordered
{ echo "code,label"
  awk 'BEGIN { srand(7); for (i = 1; i <= 5000; i++) { w = rand() < 0.5 ? 5 : 900; s = sprintf("%" w "s", ""); gsub(/ /, "x", s); printf "o%05d,%s\n", i, s } }'; } > "$IT_TMP/ordered.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/ordered.yaml" "$IT_TMP/ordered.csv" --batch-size 1000 --writers 1 --insert-first 0 --json --no-reject-file
assert_contains "$ERR" "batches staged in key order" "staged in key order"
assert_eq "5000|0" "$(sql "SELECT count(*), count(*) FILTER (WHERE id < prev) FROM (SELECT id, lag(id) OVER (ORDER BY code) AS prev FROM ordered) o")" "every batch's rows reached in key order"

# --- keys the client cannot order as the database does keep ORDER BY ------
# The upserts sort `s.col::<pipeline type>` in the stage's collation (the
# database's default): an integer key (bytes put 10 before 9), also one
# going into a text column, keeps ORDER BY; and so does any text key in a
# database whose default collation is linguistic, even a column in "C".
sql "CREATE TABLE numbered (id integer PRIMARY KEY, label text)"
printf 'targets:\n  - table: numbered\n    key: [id]\n    columns:\n      id: { from: id, type: int }\n      label: label\n' > "$IT_TMP/numbered.yaml"
printf 'id,label\n9,a\n10,b\n' > "$IT_TMP/numbered.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/numbered.yaml" "$IT_TMP/numbered.csv" --json --no-reject-file
assert_contains "$ERR" "target 0: rows counted by the table's statistics" "an integer key's table is still counted by statistics"
assert_not_contains "$ERR" "batches staged in key order" "an integer key keeps ORDER BY"
sql "CREATE TABLE numbered_text (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text)"
printf 'targets:\n  - table: numbered_text\n    key: [code]\n    columns:\n      code: { from: code, type: int }\n      label: label\n' > "$IT_TMP/numbered_text.yaml"
printf 'code,label\n9,a\n10,b\n100,c\n8,d\n' > "$IT_TMP/numbered_text.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/numbered_text.yaml" "$IT_TMP/numbered_text.csv" --insert-first 0 --json --no-reject-file
assert_not_contains "$ERR" "batches staged in key order" "an integer key into a text column keeps ORDER BY"
assert_eq "d|a|b|c" "$(sql "SELECT string_agg(label, '|' ORDER BY id) FROM numbered_text")" "its rows reached in integer order"
# Two more databases (dropped on exit, whatever happens): one with an ICU
# default collation, one in WIN1252 (below).
ICU_DB="${IT_DB}_icu" WIN_DB="${IT_DB}_win"
trap 'rc=$?; for d in "$ICU_DB" "$WIN_DB"; do psql_admin -c "DROP DATABASE IF EXISTS \"$d\" WITH (FORCE)" >/dev/null 2>&1 || true; done; (exit $rc); it_cleanup' EXIT
psql_admin -c "CREATE DATABASE \"$ICU_DB\" TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C.UTF-8'" >/dev/null
icu_sql() { psql "$(db_url "$ICU_DB")" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
icu_sql "CREATE TABLE worded (id bigserial PRIMARY KEY, code text COLLATE \"C\" NOT NULL UNIQUE, label text)"
like_gadget worded
printf 'code,label\nb,x\nB,y\na,z\nA,w\n' > "$IT_TMP/worded.csv"
rc=0; INGOT_LOG_LEVEL=debug DATABASE_URL=$(db_url "$ICU_DB") "$INGOT_BIN" run "$IT_TMP/worded.yaml" "$IT_TMP/worded.csv" --insert-first 0 --json --no-reject-file >"$IT_TMP/icu.out" 2>"$IT_TMP/icu.err" || rc=$?
WORDED=$(icu_sql "SELECT string_agg(label, '|' ORDER BY id) FROM worded")
[ "$rc" = 0 ] || { cat "$IT_TMP/icu.err" >&2; fail "the import into the ICU database: exit $rc"; }
assert_not_contains "$(cat "$IT_TMP/icu.err")" "batches staged in key order" "a linguistic default collation keeps ORDER BY, whatever the column's"
assert_eq "z|w|x|y" "$WORDED" "its rows reached in the database's order (a A b B)"
# A C-locale database in WIN1252: the server converts the UTF-8 ingot sends,
# and its bytes sort otherwise (the euro sign 0x80 before e-acute 0xE9; in
# UTF-8 after it).
psql_admin -c "CREATE DATABASE \"$WIN_DB\" TEMPLATE template0 ENCODING 'WIN1252' LOCALE 'C'" >/dev/null
win_sql() { PGCLIENTENCODING=UTF8 psql "$(db_url "$WIN_DB")" -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
win_sql "CREATE TABLE w (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text)"
like_gadget w
printf 'code,label\n\342\202\254,euro\n\303\251,e\na,a\n' > "$IT_TMP/w.csv"
rc=0; INGOT_LOG_LEVEL=debug PGCLIENTENCODING=UTF8 DATABASE_URL=$(db_url "$WIN_DB") "$INGOT_BIN" run "$IT_TMP/w.yaml" "$IT_TMP/w.csv" --insert-first 0 --json --no-reject-file >"$IT_TMP/win.out" 2>"$IT_TMP/win.err" || rc=$?
[ "$rc" = 0 ] || { cat "$IT_TMP/win.err" >&2; fail "the import into the WIN1252 database: exit $rc"; }
assert_not_contains "$(cat "$IT_TMP/win.err")" "batches staged in key order" "a database that converts what ingot sends keeps ORDER BY"
assert_eq "a|euro|e" "$(win_sql "SELECT string_agg(label, '|' ORDER BY id) FROM w")" "its rows reached in the database's order"

# --- keys COPY escapes are ordered by their own bytes, not the escapes ----
# (the private server's databases are C.UTF-8: a tab sorts first, a
# backslash after Z; escaped, both would start with a backslash)
sql "CREATE TABLE escaped (id bigserial PRIMARY KEY, code text NOT NULL UNIQUE, label text)"
like_gadget escaped
printf 'code,label\nk],1\n"k\\",2\nkZ,3\n"k\t",4\nkA,5\n' > "$IT_TMP/escaped.csv"
INGOT_LOG_LEVEL=debug run_ingot 0 run "$IT_TMP/escaped.yaml" "$IT_TMP/escaped.csv" --insert-first 0 --json --no-reject-file
assert_contains "$ERR" "batches staged in key order" "staged in key order"
assert_eq "4|5|3|2|1" "$(sql "SELECT string_agg(label, '|' ORDER BY id) FROM escaped")" "rows reached in the database's order of their keys"
