#!/usr/bin/env bash
# test_embed.sh - the embedding example (examples/embed/embed.c), built
# against libingot alone: imports through ingot_run_path and
# ingot_run_buffer, reads the counts and the failed rows with their reasons
# through the API, and the rows land. libingot exports only ingot_* symbols.
source "$(dirname "$0")/lib.sh"
: "${INGOT_BUILD_DIR:?INGOT_BUILD_DIR must point at the build directory (ctest sets it)}"
: "${INGOT_LIB:?INGOT_LIB must point at libingot (ctest sets it)}"
EMBED="$INGOT_BUILD_DIR/examples/embed/ingot_embed"
[ -x "$EMBED" ] || fail "$EMBED not built"
D=tests/data/run
run_ingot 0 migrate up

# run_embed EXPECTED_RC args... ; output in $OUT / $ERR
run_embed() {
  local want=$1; shift
  local rc=0
  "$EMBED" "$@" >"$IT_TMP/out" 2>"$IT_TMP/err" || rc=$?
  OUT=$(cat "$IT_TMP/out"); ERR=$(cat "$IT_TMP/err")
  if [ "$rc" != "$want" ]; then
    echo "--- stdout:" >&2; echo "$OUT" >&2; echo "--- stderr:" >&2; echo "$ERR" >&2
    fail "embed $*: expected exit $want, got $rc"
  fi
}

# --- the program uses nothing but ingot.h --------------------------------
inc=$(grep -h '^#include' examples/embed/embed.c | grep -v '<' | tr -d '\n')
assert_eq '#include "ingot.h"' "$inc" "embed.c includes only ingot.h of ingot's headers"
syms=$(nm -D --defined-only "$INGOT_LIB" | awk '{ print $3 }')
[ -n "$syms" ] || fail "no exported symbols in $INGOT_LIB"
bad=$(grep -v '^ingot_' <<<"$syms" || true)
assert_eq "" "$bad" "libingot exports only ingot_* symbols"
used=$(nm -D --undefined-only "$EMBED" | awk '{ print $2 }' | grep -c '^ingot_' || true)
echo "# libingot exports $(wc -l <<<"$syms") symbols, all ingot_*; the example uses $used of them"

# --- a clean file through ingot_run_path ---------------------------------
printf 'name,code\nRed,#ff0000\nGreen , #00FF00\nBlue,#0000FF\n' > "$IT_TMP/ok.csv"
run_embed 0 "$D/colors.yaml" "$IT_TMP/ok.csv"
assert_contains "$OUT" "libingot 0." "version"
assert_contains "$OUT" "status: done" "status"
assert_contains "$OUT" "counts: read=3 inserted=3 updated=0 unchanged=0 skipped=0 failed=0" "counts"
assert_contains "$OUT" "target color_master: inserted=3 updated=0 unchanged=0 skipped=0" "per-target counts"
assert_not_contains "$OUT" "failed row" "no failed rows"
assert_eq "Blue:#0000FF,Green:#00FF00,Red:#FF0000" \
  "$(sql "SELECT string_agg(color_name || ':' || color_code, ',' ORDER BY color_name) FROM color_master")" \
  "rows landed, transformed"

# --- a file with bad rows through ingot_run_buffer -------------------------
cat > "$IT_TMP/bad.csv" <<'CSV'
name,code
Red,#EE0000
Teal,not-a-colour
Olive,#808000
,#123456
CSV
run_embed 1 "$D/colors.yaml" "$IT_TMP/bad.csv" --buffer
assert_contains "$OUT" "counts: read=4 inserted=1 updated=1 unchanged=0 skipped=0 failed=2" "counts with bad rows"
assert_contains "$OUT" "failed row 2 (line 3):
  reason: target=color_master column=color_code code=pattern constraint=-:" "pattern failure with row, line, column, code"
assert_contains "$OUT" "  values: [Teal] [not-a-colour]" "failed row's original values"
assert_contains "$OUT" "failed row 4 (line 5):
  reason: target=color_master column=color_name code=required" "required failure"
assert_contains "$OUT" "exit: 1" "exit code from the API"
assert_eq "Olive:#808000,Red:#EE0000" \
  "$(sql "SELECT string_agg(color_name || ':' || color_code, ',' ORDER BY color_name) FROM color_master WHERE color_name IN ('Red','Olive','Teal')")" \
  "good rows of the bad file landed, bad ones did not"

# --- a row PostgreSQL rejects (check constraint), isolated in the database --
sql "INSERT INTO item_master (name) VALUES ('Tee')"
printf 'item,color,size,sku,price\nTee,Red,S,TEE-RED-S,10.00\nTee,Red,M,TEE-RED-M,-1.00\n' > "$IT_TMP/v.csv"
sql "INSERT INTO size_master (size_name) VALUES ('S'), ('M')"
run_embed 1 "$D/variants.yaml" "$IT_TMP/v.csv"
assert_contains "$OUT" "failed row 2 (line 3):
  reason: target=item_variant column=- code=23514 constraint=item_variant_price_check:" "database rejection through the API"
assert_eq "TEE-RED-S" "$(sql "SELECT string_agg(sku, ',') FROM item_variant")" "the good variant landed"

# --- a failure to run at all ------------------------------------------------
run_embed 2 "$IT_TMP/nosuch.yaml" "$IT_TMP/ok.csv"
assert_contains "$OUT" "status: failed" "a missing pipeline is a failed result"
assert_contains "$OUT" "error: " "with its message"

# --- an installed libingot: header, library and pkg-config file -------------
# A program built only from what `cmake --install` puts under a prefix.
PREFIX=$IT_TMP/prefix
cmake --install "$INGOT_BUILD_DIR" --prefix "$PREFIX" >/dev/null
export PKG_CONFIG_PATH=$(dirname "$(find "$PREFIX" -name ingot.pc)")
[ -n "$PKG_CONFIG_PATH" ] || fail "no ingot.pc installed under $PREFIX"
flags=$(pkg-config --define-variable=prefix="$PREFIX" --cflags --libs ingot)
assert_contains "$flags" "-I$PREFIX/include" "pkg-config --cflags names the installed header's directory"
assert_contains "$flags" "-lingot" "pkg-config --libs links libingot"
[ -f "$PREFIX/include/ingot.h" ] || fail "ingot.h not installed"
san=""  # the library of a sanitizer build needs its runtime in the program
grep -q '^INGOT_SANITIZE:BOOL=ON' "$INGOT_BUILD_DIR/CMakeCache.txt" && san="-fsanitize=address,undefined"
# shellcheck disable=SC2086
cc -std=c99 -Wall -Wextra -Werror $san examples/embed/embed.c $flags -o "$IT_TMP/embed_installed" \
  || fail "embed.c does not build against the installed libingot"
libdir=$(pkg-config --define-variable=prefix="$PREFIX" --variable=libdir ingot)
sql "TRUNCATE color_master CASCADE"
rc=0
LD_LIBRARY_PATH=$libdir "$IT_TMP/embed_installed" "$D/colors.yaml" "$IT_TMP/ok.csv" >"$IT_TMP/out" 2>&1 || rc=$?
assert_eq 0 "$rc" "the program built against the installed library runs"
assert_contains "$(cat "$IT_TMP/out")" "counts: read=3 inserted=3" "and imports"
assert_contains "$(LD_LIBRARY_PATH=$libdir ldd "$IT_TMP/embed_installed")" "$libdir/libingot.so.0" "with the installed library"
