#!/usr/bin/env bash
# test_run_roundtrip.sh - nothing changes on the way in: random text
# values (multi-byte UTF-8, tabs, CR, LF and CRLF inside quotes,
# backslashes, "\N", "NULL", quotes, delimiters, leading and trailing
# spaces, empty strings) go through the reader, the mapper, the COPY text
# format and the upsert, and land byte for byte; NULL only where the file
# has the null marker. Both write paths (insert-first COPY and the staged
# upsert), many batches, LF and CRLF files with a BOM. A second import of
# the same file leaves every row unchanged, and one with half the values
# changed updates exactly those rows.
source "$(dirname "$0")/lib.sh"

sql "CREATE TABLE rt (id bigserial PRIMARY KEY, k text NOT NULL UNIQUE,
       v1 text, v2 text, v3 text)"
cat >"$IT_TMP/rt.yaml" <<'EOF'
description: text values, as they are
source:
  null_markers: ["<null>"]
targets:
  - table: rt
    key: [k]
    duplicates: error
    columns:
      k: k
      v1: v1
      v2: v2
      v3: v3
EOF

# gen.py SEED N OUT EXPECTED [crlf]: a CSV of N rows
# and, per row, the values expected in the table (hex, or "N" for NULL).
cat >"$IT_TMP/gen.py" <<'EOF'
import random, sys
seed, n, out, exp = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
crlf = len(sys.argv) > 5 and sys.argv[5] == "crlf"
rnd = random.Random(seed)
pieces = ["a", "Z", "7", " ", "  ", "\t", "\n", "\r\n", "\r", '"', '""', ",",
          ";", "\\", "\\N", "\\t", "NULL", "é", "ß", "€", "😀", "\u00a0",
          "\u2028", "日本", "'", "<", "x y", "\x01", "\x7f"]
def value():
    r = rnd.random()
    if r < 0.08:
        return None
    if r < 0.14:
        return ""
    return "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12)))
def field(v):  # RFC 4180: quoted when it must be, and now and then anyway
    if any(c in v for c in ',"\r\n') or rnd.random() < 0.2:
        return '"' + v.replace('"', '""') + '"'
    return v
eol = "\r\n" if crlf else "\n"
with open(out, "w", encoding="utf-8", newline="") as f, open(exp, "w") as e:
    if crlf:
        f.write("\ufeff")
    f.write("k,v1,v2,v3" + eol)
    for i in range(n):
        vals = [value() for _ in range(3)]
        f.write(",".join(["k%06d" % i] + [
            "<null>" if v is None else field(v) for v in vals]) + eol)
        e.write("k%06d|%s\n" % (i, "|".join(
            "N" if v is None else v.encode("utf-8").hex() for v in vals)))
EOF
table() {
  sql "SELECT k || '|' || concat_ws('|',
         coalesce(encode(convert_to(v1, 'UTF8'), 'hex'), 'N'),
         coalesce(encode(convert_to(v2, 'UTF8'), 'hex'), 'N'),
         coalesce(encode(convert_to(v3, 'UTF8'), 'hex'), 'N')) FROM rt ORDER BY k" \
    >"$IT_TMP/got"
}
same() { # expected-file what
  table
  if ! cmp -s "$1" "$IT_TMP/got"; then
    diff "$1" "$IT_TMP/got" | head -5 >&2
    fail "$2: the table differs from the file"
  fi
}
count() { jq -r ".counts.$1" <<<"$OUT"; }

N=3000
for variant in "lf --insert-first 1" "crlf --insert-first 0"; do
  set -- $variant
  sql "TRUNCATE rt"
  python3 "$IT_TMP/gen.py" 11 $N "$IT_TMP/a.csv" "$IT_TMP/a.exp" "$1"
  grep -q '\\N' "$IT_TMP/a.csv" || fail "the data has backslash-N"
  run_ingot 0 run "$IT_TMP/rt.yaml" "$IT_TMP/a.csv" --batch-size 97 --json \
    --no-reject-file "$2" "$3"
  assert_eq "$N|0|0" "$(count inserted)|$(count failed)|$(count skipped)" "$1: all inserted"
  same "$IT_TMP/a.exp" "$1, first import"
  assert_eq "$N" "$(sql "SELECT count(*) FROM rt")" "$1: row count"
  [ "$(sql "SELECT count(*) FROM rt WHERE v1 IS NULL")" -gt 0 ] || fail "some NULLs"
  [ "$(sql "SELECT count(*) FROM rt WHERE v1 = ''")" -gt 0 ] || fail "some empty strings"

  # The same file again: nothing to update.
  run_ingot 0 run "$IT_TMP/rt.yaml" "$IT_TMP/a.csv" --batch-size 97 --json \
    --no-reject-file "$2" "$3"
  assert_eq "0|0|$N" "$(count inserted)|$(count updated)|$(count unchanged)" "$1: re-import unchanged"
  same "$IT_TMP/a.exp" "$1, unchanged re-import"

  # Other values for every row: rows whose three values came out the
  # same are unchanged, the others updated, and the table is the new file.
  python3 "$IT_TMP/gen.py" 12 $N "$IT_TMP/b.csv" "$IT_TMP/b.exp" "$1"
  want_same=$(join -t '|' -j 1 -o 1.2,1.3,1.4,2.2,2.3,2.4 "$IT_TMP/a.exp" "$IT_TMP/b.exp" |
    awk -F'|' '$1 == $4 && $2 == $5 && $3 == $6' | wc -l)
  run_ingot 0 run "$IT_TMP/rt.yaml" "$IT_TMP/b.csv" --batch-size 97 --json \
    --no-reject-file "$2" "$3"
  assert_eq "0|$((N - want_same))|$want_same" "$(count inserted)|$(count updated)|$(count unchanged)" "$1: updates"
  same "$IT_TMP/b.exp" "$1, after the update"
done
