#!/usr/bin/env bash
# test_worker_json.sh - JSON uploads over the HTTP API, round trip: random
# arrays of flat objects (hostile strings written raw and as \u escapes,
# astral characters as raw UTF-8 and as surrogate pairs, control
# characters, quotes, backslashes, commas, "NULL", "\N", spaces; integers
# in and out of range, decimals as strings and as JSON numbers, booleans,
# nulls, missing keys, extra keys, keys in random order, random whitespace
# between tokens) go through POST /api/imports/{pipeline}, synchronously and
# queued (?background=1); the answer's (or the job's) counts and failed
# rows, and the table read back byte for byte (hex), must be what
# docs/api.md promises for every value. Batches that update earlier rows
# (some objects sent again unchanged), fields at max_field_bytes, row counts
# with line breaks in values (sync below the threshold, IMPORT_MAX_ROWS),
# and the bodies that must be refused whole (malformed, not an array of
# flat objects, nested values, \u0000, a header that does not fit) with
# nothing written.
#
# What docs/api.md promises and this test holds the worker to: JSON null
# and a missing key become an empty field, i.e. NULL with the null marker
# ""; a string is its text -- but an empty string is an empty field too, so
# it lands as NULL as well (no null_markers setting tells the two apart:
# markers compare the field's text, quoted or not); numbers and booleans
# become their JSON text exactly as sent (any length, "1.10" stays 1.10,
# "-0" and "1e3" as written); nested objects or arrays are 422, and so is
# an object with the same key twice (duplicate_field); malformed JSON is
# 400.
#
# Most checks do not stop the test: every failing one is printed, then it
# fails.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/worker_lib.sh"
run_ingot 0 migrate up

sql "CREATE TABLE rt (id bigserial PRIMARY KEY, k text NOT NULL UNIQUE,
       v1 text, v2 text, n integer, x numeric, b boolean)"
PD=$IT_TMP/pipelines
mkdir -p "$PD"
pipeline() { # NAME SOURCE-YAML-LINES
  cat >"$PD/$1.yaml" <<EOF
description: JSON round trip
source:
  null_markers: [""]
$2
targets:
  - table: rt
    key: [k]
    duplicates: error
    columns:
      k: k
      v1: v1
      v2: v2
      n: { from: n, type: int }
      x: { from: x, type: numeric }
      b: { from: b, type: bool }
EOF
}
pipeline rt ""
pipeline rt_strict "  unknown_columns: error"
pipeline rt_nullcols "  missing_columns: \"null\""
export INGOT_PIPELINE_DIR=$PD INGOT_API_TOKEN=test-token-$$

PORT=$(free_port)
U="http://127.0.0.1:$PORT"
start_worker json --threads 1 --batch-size 37 --listen "127.0.0.1:$PORT" \
  --background-threshold 1000 --max-rows 1500
wpid=$W_PID
wait_until 30 'curl -s "$U/healthz" >/dev/null'

NFAIL=0
soft_fail() { echo "FAIL: $*" >&2; NFAIL=$((NFAIL + 1)); }

# post PIPELINE BODY-FILE -> $CODE, body in $IT_TMP/resp
post() {
  CODE=$(curl -s -o "$IT_TMP/resp" -w '%{http_code}' -X POST \
         -H "Authorization: Bearer $INGOT_API_TOKEN" \
         -H 'Content-Type: application/json' \
         --data-binary @"$2" "$U/api/imports/$1")
}
# dump: the table, one line a row: hex(k)|hex(v1)|hex(v2)|n|x|b, N = NULL
dump() {
  sql "SELECT encode(convert_to(k, 'UTF8'), 'hex') || '|' || concat_ws('|',
         coalesce(encode(convert_to(v1, 'UTF8'), 'hex'), 'N'),
         coalesce(encode(convert_to(v2, 'UTF8'), 'hex'), 'N'),
         coalesce(n::text, 'N'), coalesce(x::text, 'N'), coalesce(b::text, 'N'))
       FROM rt" | LC_ALL=C sort >"$1"
}

# gen.py MODE SEED STATE-IN STATE-OUT BODY EXPECT
#   MODE: new (new keys), update (mostly keys of STATE-IN), long (fields at
#   and over max_field_bytes). STATE-* map hex(k) to the expected table row
#   and the object last sent for it; EXPECT holds the counts and, per failed
#   row (1-based), its failing column -> reason code.
cat >"$IT_TMP/gen.py" <<'EOF'
import json, random, sys
from decimal import Decimal
mode, seed, state_in, state_out, body_out, exp_out = sys.argv[1:7]
rnd = random.Random(int(seed))
state = json.load(open(state_in))

def ws():
    r = rnd.random()
    return "" if r < 0.6 else rnd.choice([" ", "\n", "\t", "\r\n", "  "])

def enc(s):  # a JSON string, each character raw or escaped at random
    out = ['"']
    for c in s:
        o = ord(c)
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif o < 0x20:
            short = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
            if c in short and rnd.random() < 0.6:
                out.append(short[c])
            else:
                out.append("\\u%04x" % o if rnd.random() < 0.5 else "\\u%04X" % o)
        elif c == "/" and rnd.random() < 0.5:
            out.append("\\/")
        elif o > 0x7e and rnd.random() < 0.35 or rnd.random() < 0.03:
            if o > 0xFFFF:
                v = o - 0x10000
                hi, lo = 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)
                f = "\\u%04x\\u%04x" if rnd.random() < 0.5 else "\\u%04X\\u%04X"
                out.append(f % (hi, lo))
            else:
                out.append("\\u%04x" % o if rnd.random() < 0.5 else "\\u%04X" % o)
        else:
            out.append(c)
    out.append('"')
    return "".join(out)

def pgnum(t):  # numeric's text in PostgreSQL (unconstrained: scale as written)
    d = Decimal(t.strip(" "))
    s = format(d, "f")
    return s.lstrip("-") if d == 0 else s

def hx(s):
    return s.encode("utf-8").hex()

PIECES = ["a", "Z", "7", " ", "  ", "\t", "\n", "\r\n", "\r", '"', '""', ",",
          ";", "\\", "\\N", "\\t", "\\n", "NULL", "null", "None", "<null>",
          "é", "ß", "€", "😀", "𝄞", "\U0010FFFF", "\u00a0", "\u2028",
          "\u2029", "\ufeff", "日本", "'", "x y", "\x01", "\x1f", "\x7f",
          "\b", "\f", "/", "</script>", "{", "}", "[", "]", ":"]
def hostile():
    r = rnd.random()
    if r < 0.05:
        return rnd.choice(["NULL", "\\N", "null", " ", "  ", '"', '""', "\r\n", "\\"])
    return "".join(rnd.choice(PIECES) for _ in range(rnd.randint(1, 10)))

MISSING = object()
N = "N"
def int_lit():
    r = rnd.random()
    if r < 0.3:
        return str(rnd.choice([0, -1, 1, 2147483647, -2147483648, -0, 42]))
    if r < 0.35:
        return "-0"
    return str(rnd.randint(-2**31, 2**31 - 1))
def real_lit():
    return rnd.choice([
        lambda: "%d.%d" % (rnd.randint(-99999, 99999), rnd.randint(0, 999)) + "0" * rnd.randint(0, 2),
        lambda: "%de%s%d" % (rnd.randint(1, 999), rnd.choice(["", "+", "-"]), rnd.randint(0, 30)),
        lambda: "%d.%dE%d" % (rnd.randint(-9, 9), rnd.randint(0, 99), rnd.randint(-12, 12)),
        lambda: repr(rnd.uniform(-1e6, 1e6)),
        lambda: repr(rnd.random()),
        lambda: rnd.choice(["0.1", "-0.0", "12.50", "1e300", "1.5e-7", "123456789.123456789",
                            "0.30000000000000004", "9007199254740993.0"]),
    ])()

def v_text():  # -> (json text | MISSING, expected hex | N, fail code | None)
    r = rnd.random()
    if r < 0.07: return "null", N, None
    if r < 0.12: return MISSING, N, None
    if r < 0.17: return enc(""), N, None          # '' is an empty field: NULL
    if r < 0.19: l = int_lit(); return l, hx(l), None   # the text as sent
    if r < 0.21: l = real_lit(); return l, hx(l), None
    if r < 0.23: t = rnd.choice(["true", "false"]); return t, hx(t), None
    s = hostile()
    return enc(s), hx(s), None

def v_int():
    r = rnd.random()
    if r < 0.06: return "null", N, None
    if r < 0.12: return MISSING, N, None
    if r < 0.15: return enc(""), N, None
    if r < 0.70: l = int_lit(); return l, str(int(l)), None
    if r < 0.92:
        i = int(int_lit())
        t = ("+" if i >= 0 and rnd.random() < 0.3 else "") + ("-" if i < 0 else "") + \
            "0" * rnd.randint(0, 2) + str(abs(i))
        t = " " * rnd.randint(0, 2) + t + " " * rnd.randint(0, 2)
        return enc(t), str(i), None
    if r < 0.95:
        return str(rnd.choice([2**31, -2**31 - 1, 2**40, -2**40, 2**63 - 1, -2**63,
                               rnd.randint(2**31, 2**62)])), None, "type"
    if r < 0.96:
        return enc(rnd.choice(["99999999999999999999", "2147483648", "-2147483649"])), None, "type"
    if r < 0.98:
        return rnd.choice(["3.0", "1e3", "-0.0", "2.5"]), None, "type"
    return enc(rnd.choice(["12a", "1 2", "0x10", "one", "1.0", "+", "--1", "１"])), None, "type"

def v_num():
    r = rnd.random()
    if r < 0.06: return "null", N, None
    if r < 0.12: return MISSING, N, None
    if r < 0.15: return enc(""), N, None
    if r < 0.35:
        l = str(rnd.choice([0, -1, 2**63 - 1, -2**63, rnd.randint(-10**12, 10**12)]))
        return l, pgnum(l), None
    if r < 0.60: l = real_lit(); return l, pgnum(l), None
    if r < 0.97:
        t = rnd.choice([
            lambda: "%s%d.%s" % (rnd.choice(["", "-", "+"]), rnd.randint(0, 10**9),
                                 "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 25)))),
            lambda: rnd.choice(["12.50", "0.00", "-0.001", "1e3", "1.5E-7", "1.50e1",
                                "100000000000000000000000000000000000.000000000000000001",
                                "-0", "00012.3400", " 3.14 "]),
            lambda: "%d.%de%d" % (rnd.randint(-99, 99), rnd.randint(0, 99), rnd.randint(-40, 40)),
        ])()
        return enc(t), pgnum(t), None
    return enc(rnd.choice(["abc", "1e2000", "1.2.3", "NaN", "1,5", "e5", "--1"])), None, "type"

def v_bool():
    r = rnd.random()
    if r < 0.06: return "null", N, None
    if r < 0.12: return MISSING, N, None
    if r < 0.15: return enc(""), N, None
    if r < 0.60:
        t = rnd.choice(["true", "false"]); return t, t, None
    if r < 0.65:
        t = rnd.choice(["1", "0"]); return t, "true" if t == "1" else "false", None
    if r < 0.97:
        yes = rnd.random() < 0.5
        w = rnd.choice(["true", "t", "yes", "y", "1", "on"] if yes else
                       ["false", "f", "no", "n", "0", "off"])
        w = "".join(c.upper() if rnd.random() < 0.4 else c for c in w)
        w = " " * rnd.randint(0, 2) + w + " " * rnd.randint(0, 1)
        return enc(w), "true" if yes else "false", None
    return rnd.choice([enc("maybe"), enc("2"), enc("tru"), "1.0", "2"]), None, "type"

# (Not " k" or "v1 ": header names are compared without surrounding
# spaces, so such a key is a second k or v1, refused: see below.)
EXTRA_KEYS = ["extra", "x,y", 'q"q', "nl\nkey", "cr\rkey", "é", "K", "kk",
              "", "\ufeffk", "v1_", "😀", "null", "id"]
def extra_val():
    return rnd.choice([lambda: enc(hostile()), lambda: "null", lambda: int_lit(),
                       lambda: real_lit(), lambda: "true"])()

def obj(members):  # members: [(key, json text)] in the order written
    rnd.shuffle(members)
    return "{" + ws() + ("," + ws()).join(
        enc(k) + ws() + ":" + ws() + v for k, v in members) + ws() + "}"

def row(k_json, k_exp):
    """One random object. -> (json text, expected [v1, v2, n, x, b], fails)"""
    members, exp, fails = [], [], {}
    if k_json is not MISSING:
        members.append(("k", k_json))
    for col, gen in (("v1", v_text), ("v2", v_text), ("n", v_int),
                     ("x", v_num), ("b", v_bool)):
        j, e, f = gen()
        if j is not MISSING:
            members.append((col, j))
        exp.append(e)
        if f:
            fails[col] = f
    if rnd.random() < 0.3:
        for key in rnd.sample(EXTRA_KEYS, rnd.randint(1, 2)):
            members.append((key, extra_val()))
    if not fails and k_exp is None:
        fails["k"] = "23502"  # NULL key: the table's NOT NULL
    return obj(members), exp, fails

def same(a, b):  # the typed equality the upsert's IS DISTINCT FROM uses
    if a[:3] != b[:3] or a[4] != b[4]:
        return False
    return a[3] == b[3] or (N not in (a[3], b[3]) and Decimal(a[3]) == Decimal(b[3]))

objs, failed = [], {}
counts = dict(read=0, inserted=0, updated=0, unchanged=0, skipped=0, failed=0)
def add(text, khex, exp, fails, resend=False):
    objs.append(text)
    counts["read"] += 1
    if fails:
        counts["failed"] += 1
        failed[str(len(objs))] = fails
        return
    if khex not in state:
        counts["inserted"] += 1
    elif resend or same(state[khex]["row"], exp):
        counts["unchanged"] += 1
        return
    else:
        counts["updated"] += 1
    state[khex] = {"row": exp, "obj": text}

def new_key(i):
    k = "%s-%s-%04d" % (mode, seed, i)
    if rnd.random() < 0.3:
        k += hostile()
    return k

if mode == "long":
    big = 1048576  # max_field_bytes
    unit = '"😀\r\n,é\\'  # 1+4+1+1+1+2+1 = 11 bytes
    def sized(n):
        s = unit * (n // len(unit.encode()))
        return s + "a" * (n - len(s.encode()))
    for i, (size, fail) in enumerate([(100, None), (big, None), (big + 1, "CSV_FIELD_SIZE"),
                                      (big - 1, None), (10, None)]):
        k = "long-%d" % i
        members = [("k", enc(k)), ("v1", enc(sized(size))), ("v2", enc("after")),
                   ("n", str(i)), ("x", '"%d.50"' % i), ("b", "true")]
        exp = [hx(sized(size)), hx("after"), str(i), "%d.50" % i, "true"]
        add(obj(members), hx(k), exp, {"v1": fail} if fail else {})  # a reader error names the field's column
else:
    n = rnd.randint(150, 300)
    olds = list(state) if mode == "update" else []
    rnd.shuffle(olds)
    olds = olds[:n * 2 // 3]
    null_keys = set(rnd.sample(range(n), 3))
    for i in range(n):
        if i in null_keys:  # k null, "" (an empty field: NULL) or missing
            kj = rnd.choice(["null", enc(""), MISSING])
            text, exp, fails = row(kj, None)
            add(text, None, exp, fails)
        elif olds and rnd.random() < 0.7:
            khex = olds.pop()
            if rnd.random() < 0.4:  # the same object again
                add(state[khex]["obj"], khex, state[khex]["row"], {}, resend=True)
            else:
                text, exp, fails = row(enc(bytes.fromhex(khex).decode()), khex)
                add(text, khex, exp, fails)
        else:
            k = new_key(i)
            text, exp, fails = row(enc(k), hx(k))
            add(text, hx(k), exp, fails)

with open(body_out, "w", encoding="utf-8", newline="") as f:
    f.write(ws() + "[" + ws() + ("," + ws()).join(objs) + ws() + "]" + ws())
json.dump({"counts": counts, "failed": failed}, open(exp_out, "w"))
json.dump(state, open(state_out, "w"))
EOF

# check.py RESPONSE EXPECT STATE TABLE-DUMP WHAT: the answer and the table
# against the model; prints every difference, exit 1 if any.
cat >"$IT_TMP/check.py" <<'EOF'
import json, sys
resp_f, exp_f, state_f, dump_f, what = sys.argv[1:6]
bad = []
try:
    resp = json.load(open(resp_f))
except ValueError:
    resp = {}
    bad.append("the answer is not JSON: %r" % open(resp_f, "rb").read()[:300])
exp = json.load(open(exp_f))
if resp:
    c = exp["counts"]
    want_state = ("succeeded" if c["failed"] == 0 else
                  "failed" if c["failed"] == c["read"] else "partially_succeeded")
    for k, v in (("status", "done"), ("state", want_state), ("counts", c)):
        if resp.get(k) != v:
            bad.append("%s: expected %s, got %s" % (k, v, resp.get(k)))
    got = {}
    for fr in resp.get("failed_rows", []):
        got[str(fr["row"])] = {r["column"] or "-": r["code"] for r in fr["reasons"]}
    for r in sorted(set(got) | set(exp["failed"]), key=int):
        if got.get(r) != exp["failed"].get(r):
            bad.append("failed row %s: expected %s, got %s" % (r, exp["failed"].get(r), got.get(r)))
state = json.load(open(state_f))
want = sorted("|".join([k] + v["row"]) for k, v in state.items())
have = open(dump_f).read().split("\n")[:-1]
if want != have:
    w, h = set(want), set(have)
    def show(line):
        f = line.split("|")
        try:
            return "|".join([repr(bytes.fromhex(f[0]).decode())] +
                            [repr(bytes.fromhex(x).decode()[:80]) if x != "N" else "NULL" for x in f[1:3]] + f[3:])
        except ValueError:
            return line
    for line in sorted(w - h)[:8]:
        bad.append("expected row missing or different: " + show(line))
    for line in sorted(h - w)[:8]:
        bad.append("unexpected row in the table:        " + show(line))
    bad.append("%d rows expected, %d in the table, %d differ" % (len(w), len(h), len(w ^ h)))
for b in bad[:30]:
    print("%s: %s" % (what, b), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF

S=$IT_TMP/state
echo '{}' >"$S.0"
step=0
# import_batch MODE SEED [bg]: one generated batch, posted and checked;
# bg: queued with ?background=1, its outcome read from the job's results
import_batch() {
  local prev=$S.$step what="$1 batch, seed $2${3:+ (background)}"
  step=$((step + 1))
  python3 "$IT_TMP/gen.py" "$1" "$2" "$prev" "$S.$step" "$IT_TMP/body.json" "$IT_TMP/exp.json"
  if [ "${3:-}" = bg ]; then
    post "rt?background=1" "$IT_TMP/body.json"
    if [ "$CODE" = 202 ]; then
      local jid; jid=$(jq -r .job_id "$IT_TMP/resp")
      wait_until 30 '[[ "$(job_state '"$jid"')" =~ ^(succeeded|partially_succeeded|failed)$ ]]'
      curl -s -H "Authorization: Bearer $INGOT_API_TOKEN" \
        "$U/api/imports/$jid/results?limit=10000" >"$IT_TMP/results"
      python3 - "$IT_TMP/results" >"$IT_TMP/resp" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
j, c, rows = d["job"], d["job"]["counts"], {}
for r in d["results"]:
    if r["outcome"] == "failed":
        rows.setdefault(r["row"], []).append({"column": r["column"], "code": r["code"]})
print(json.dumps({"status": "done", "state": j["state"],
                  "counts": {"read": c["processed"], **{k: c[k] for k in
                             ("inserted", "updated", "unchanged", "skipped", "failed")}},
                  "failed_rows": [{"row": r, "reasons": v} for r, v in sorted(rows.items())]}))
EOF
    else
      soft_fail "$what: expected HTTP 202 (queued), got $CODE: $(head -c 400 "$IT_TMP/resp")"
    fi
  else
    post rt "$IT_TMP/body.json"
    [ "$CODE" = 200 ] ||
      soft_fail "$what: expected HTTP 200 (synchronous), got $CODE: $(head -c 400 "$IT_TMP/resp")"
  fi
  cp "$IT_TMP/body.json" "$IT_TMP/body.$step.json"
  dump "$IT_TMP/table"
  python3 "$IT_TMP/check.py" "$IT_TMP/resp" "$IT_TMP/exp.json" "$S.$step" "$IT_TMP/table" \
    "$what" || soft_fail "$what: see above (body kept in $IT_TMP/body.$step.json)"
}

# --- random batches: new rows, then updates of them ---------------------------
for seed in 101 102 103 104; do import_batch new $seed; done
import_batch update 201
import_batch update 202
import_batch new 105 bg
import_batch update 203 bg
import_batch long 301
# the data did hold what the test is about
python3 - "$S.$step" "$IT_TMP/body.1.json" <<'EOF' || soft_fail "the data lacks what the test is about"
import json, re, sys
rows = [v["row"] for v in json.load(open(sys.argv[1])).values()]
text = [bytes.fromhex(r[i]).decode() for r in rows for i in (0, 1) if r[i] != "N"]
body = open(sys.argv[2], encoding="utf-8").read()
checks = {
    "control characters, quotes, backslashes or commas beside multi-byte text":
        sum(bool(re.search(r'[\r\n\t"\\,]', t)) and bool(re.search(r"[^\x00-\x7f]", t)) for t in text) > 50,
    "astral characters": sum("\U0001F600" in t or "\U0010FFFF" in t for t in text) > 20,
    "'NULL', '\\N' or 'null' as text": sum(t in ("NULL", "\\N", "null") for t in text) > 2,
    "leading or trailing spaces": sum(t != t.strip(" ") for t in text) > 20,
    "CRLF": sum("\r\n" in t for t in text) > 20,
    "decimals with trailing zeros": sum(re.search(r"\.\d*0$", r[3]) is not None for r in rows) > 5,
    "NULLs": sum(r[0] == "N" for r in rows) > 20,
    "surrogate-pair escapes": re.search(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F]", body) is not None,
    "raw astral characters": "\U0001F600" in body,
}
for what, ok in checks.items():
    if not ok:
        print("the data has too few: " + what, file=sys.stderr)
sys.exit(0 if all(checks.values()) else 1)
EOF

# --- bodies refused whole: nothing written ---------------------------------
dump "$IT_TMP/before"
refused() { # PIPELINE BODY-FILE STATUS ERROR-CODE WHAT
  post "$1" "$2"
  if [ "$CODE" != "$3" ]; then
    soft_fail "$5: expected HTTP $3, got $CODE: $(head -c 300 "$IT_TMP/resp")"
  elif [ -n "$4" ] && [ "$(jq -r .error.code "$IT_TMP/resp")" != "$4" ]; then
    soft_fail "$5: expected error code $4: $(head -c 300 "$IT_TMP/resp")"
  fi
  dump "$IT_TMP/after"
  cmp -s "$IT_TMP/before" "$IT_TMP/after" || soft_fail "$5: the table changed"
}
body() { printf '%s' "$1" >"$IT_TMP/b.json"; }
new_row='{"k": "nw-1", "v1": "a", "v2": "b", "n": 1, "x": "1.0", "b": true}'
head -c "$(( $(wc -c <"$IT_TMP/body.1.json") * 2 / 3 ))" "$IT_TMP/body.1.json" >"$IT_TMP/b.json"
refused rt "$IT_TMP/b.json" 400 malformed_json "truncated body"
body "[$new_row, {\"k\": \"nw-2\", \"v1\": \"x\",}]"
refused rt "$IT_TMP/b.json" 400 malformed_json "trailing comma"
body "[$new_row]]"
refused rt "$IT_TMP/b.json" 400 malformed_json "garbage after the array"
# Numbers keep their text (quoted for the parser): what is not a JSON
# number stays malformed, and the message is about the body as sent.
for bad in '01' '1.' '.5' '-' '1e' '+1' '1.5e+'; do
  body "[{\"k\": \"nw-2\", \"n\": 1, \"x\": $bad, \"b\": true}]"
  refused rt "$IT_TMP/b.json" 400 malformed_json "the number $bad"
done
body '[{"k": "nw-2", "n": 1, "x": 12 34, "b": true}]'
refused rt "$IT_TMP/b.json" 400 malformed_json "two numbers in a row"
assert_contains "$(jq -r .error.message "$IT_TMP/resp")" "line 1, column 33: '}' expected near '34'" "the position and token in the body as sent"
assert_not_contains "$(jq -r .error.message "$IT_TMP/resp")" '"' "no quote the parser was given"
body '[{"k": "nw-2", 12: 1}]'
refused rt "$IT_TMP/b.json" 400 malformed_json "a number as a key"
# A body whose first fault for the parser is a number too long for a
# double: the message on the real fault is placed as for a short number.
body '[{"k": "nw-2", "n": 1,
        "v1": "x", "x": 10000, "v2": 123, "b": tru}]'
refused rt "$IT_TMP/b.json" 400 malformed_json "a bad token after short numbers"
short=$(jq -r .error.message "$IT_TMP/resp")
body '[{"k": "nw-2", "n": 1,
        "v1": "x", "x": 1e400, "v2": 123, "b": tru}]'
refused rt "$IT_TMP/b.json" 400 malformed_json "a bad token after a long number"
assert_eq "$short" "$(jq -r .error.message "$IT_TMP/resp")" "the same message and position as after short numbers"
assert_contains "$short" "line 2, column" "the message is placed"
printf '[{"k": "nw-2", "v1": "a\xff\xfeb", "v2": null, "n": 1, "x": 1, "b": true}]' >"$IT_TMP/b.json"
refused rt "$IT_TMP/b.json" 400 malformed_json "invalid UTF-8 in a string"
body "[$new_row, {\"k\": \"nw-2\", \"v1\": \"a\\ud83d b\", \"v2\": null, \"n\": 1, \"x\": 1, \"b\": true}]"
refused rt "$IT_TMP/b.json" 400 malformed_json "lone surrogate escape"
# \u0000: the worker refuses the whole body (400, docs/api.md) -- text
# and COPY cannot hold a NUL, so no row could be written.
body "[$new_row, {\"k\": \"nw-2\", \"v1\": \"a\\u0000b\", \"v2\": null, \"n\": 1, \"x\": 1, \"b\": true}]"
refused rt "$IT_TMP/b.json" 400 malformed_json "\\u0000 in a value"
assert_contains "$(jq -r .error.message "$IT_TMP/resp")" 'holds \u0000 (NUL)' "the NUL is named"
body '[1, 2, 3]'
refused rt "$IT_TMP/b.json" 422 unprocessable "an array of numbers"
body '[1e400, 123456789012345678901234567890]'
refused rt "$IT_TMP/b.json" 422 unprocessable "an array of numbers too long for a double"
body ''
refused rt "$IT_TMP/b.json" 422 unprocessable "an empty body, as an empty CSV one"
body $' \r\n\t'
refused rt "$IT_TMP/b.json" 422 unprocessable "a body of white space"
body "[$new_row, \"k\", null]"
refused rt "$IT_TMP/b.json" 422 unprocessable "objects then non-objects"
body "[[\"k\", \"v1\"], [\"nw-2\", \"a\"]]"
refused rt "$IT_TMP/b.json" 422 unprocessable "an array of arrays"
body "$new_row"
refused rt "$IT_TMP/b.json" 422 unprocessable "one object, not an array"
body '[]'
refused rt "$IT_TMP/b.json" 422 unprocessable "an empty array"
body '[{}, {}]'
refused rt "$IT_TMP/b.json" 422 unprocessable "only empty objects"
body "[$new_row, {\"k\": \"nw-2\", \"v1\": {\"a\": 1}, \"v2\": null, \"n\": 1, \"x\": 1, \"b\": true}]"
refused rt "$IT_TMP/b.json" 422 unprocessable "a nested object"
assert_contains "$(cat "$IT_TMP/resp")" 'row 2, key \"v1\"' "the nested value is named"
body "[$new_row, {\"k\": \"nw-2\", \"v1\": \"a\", \"v2\": null, \"n\": [1], \"x\": 1, \"b\": true}]"
refused rt "$IT_TMP/b.json" 422 unprocessable "a nested array"
body "[$new_row, {\"k\": \"nw-2\", \"other\": {}, \"v1\": \"a\", \"v2\": null, \"n\": 1, \"x\": 1, \"b\": true}]"
refused rt "$IT_TMP/b.json" 422 unprocessable "a nested value under an unmapped key"
# a mapped key that no object has: the header lacks it (missing_columns: error)
body '[{"k": "nw-1", "v1": "a", "v2": "b", "n": 1, "x": "1.0"}, {"k": "nw-2", "v1": null}]'
refused rt "$IT_TMP/b.json" 422 unprocessable "key b in no object"
assert_contains "$(cat "$IT_TMP/resp")" "lacks column 'b'" "the missing key is named"
body "[{\"k\": \"nw-1\", \"v1\": \"a\", \"v2\": \"b\", \"n\": 1, \"x\": \"1.0\", \"b\": true, \"zz\": 1}]"
refused rt_strict "$IT_TMP/b.json" 422 unprocessable "an extra key with unknown_columns: error"

# --- bodies accepted: the same checks as the random batches --------------------
# accept PIPELINE BODY STATE-ROWS... : post, expect 200 and every row
# inserted; STATE-ROWS are k|v1|v2|n|x|b in text (N = NULL), added to the model.
accept() {
  local pl=$1 what=$2 b=$3; shift 3
  body "$b"
  python3 - "$S.$step" "$S.$((step + 1))" "$IT_TMP/exp.json" "$@" <<'EOF'
import json, sys
state = json.load(open(sys.argv[1]))
rows = sys.argv[4:]
for r in rows:
    f = r.split("|")
    state[f[0].encode().hex()] = {"row": [x if x == "N" else x.encode().hex() for x in f[1:3]] + f[3:], "obj": ""}
json.dump(state, open(sys.argv[2], "w"))
json.dump({"counts": dict(read=len(rows), inserted=len(rows), updated=0, unchanged=0,
                          skipped=0, failed=0), "failed": {}}, open(sys.argv[3], "w"))
EOF
  step=$((step + 1))
  post "$pl" "$IT_TMP/b.json"
  [ "$CODE" = 200 ] || soft_fail "$what: expected HTTP 200, got $CODE: $(head -c 300 "$IT_TMP/resp")"
  dump "$IT_TMP/table"
  python3 "$IT_TMP/check.py" "$IT_TMP/resp" "$IT_TMP/exp.json" "$S.$step" "$IT_TMP/table" "$what" ||
    soft_fail "$what: see above"
}
accept rt_nullcols "a mapped key in no object, missing_columns: null" \
  '[{"k": "mc-1", "v1": "a", "n": 1, "x": "1.0"}, {"k": "mc-2", "b": false}]' \
  "mc-1|a|N|1|1.0|N" "mc-2|N|N|N|N|false"
# A number beyond int64 or a double keeps its digits, as a number and as
# a string; so do a real's trailing zeros and digits past a double's.
accept rt "numbers beyond int64 and a double keep their text" \
  '[{"k": "big-0", "v1": 123456789012345678901234567890, "v2": 1e400, "n": 1,
     "x": 123456789012345678901234567890.000000000000000000001, "b": true},
    {"k": "big-2", "v1": 1.10, "v2": -0, "n": -0, "x": 1e400, "b": false}]' \
  "big-0|123456789012345678901234567890|1e400|1|123456789012345678901234567890.000000000000000000001|true" \
  "big-2|1.10|-0|0|1$(printf '0%.0s' $(seq 400))|false"
dump "$IT_TMP/before"
# A key that is a read one with spaces around it (" k"): the CSV header
# compares names without them, so it is that column twice: refused.
body '[{"k": "sp-1", "v1": "a", "v2": null, "n": 1, "x": 1, "b": true},
       {"k": "sp-2", " k": "other", "v1": "a", "v2": null, "n": 1, "x": 1, "b": true}]'
refused rt "$IT_TMP/b.json" 422 unprocessable "a read key with spaces around it"
assert_contains "$(cat "$IT_TMP/resp")" "the header has column 'k' twice" "the repeated column named"
# The same key twice in one object: which value is meant is unknown (a
# parser keeping the last would drop the first without a word): 422, and
# nothing lands, not even the other rows.
body '[{"k": "dup-0", "v1": "a", "v2": null, "n": 1, "x": 1, "b": true},
       {"k": "dup-1", "v1": "first", "v2": null, "n": 1, "x": 1, "b": true,
        "v1": "second"}]'
refused rt "$IT_TMP/b.json" 422 duplicate_field "an object with the same key twice"
body '[{"k": "dup-2", "v1": "a", "v2": null, "n": 1, "x": 1, "b": true,
        "k": "dup-2"}]'
refused rt "$IT_TMP/b.json" 422 duplicate_field "the same key twice with equal values"
accept rt "a number too long for JSON sent as a string keeps its text" \
  '[{"k": "big-1", "v1": "123456789012345678901234567890", "v2": null, "n": 1,
     "x": "123456789012345678901234567890", "b": true}]' \
  "big-1|123456789012345678901234567890|N|1|123456789012345678901234567890|true"

# --- row counts are objects, not lines: values with line breaks -------------
# (999 rows are synchronous; 1500, the most one import may hold, are queued;
# 1501 are too many)
rows_body() { # N PREFIX
  python3 -c 'import json, sys
n, p = int(sys.argv[1]), sys.argv[2]
print(json.dumps([{"k": "%s-%d" % (p, i), "v1": "a\nb\r\nc\rd\n", "v2": None, "n": i,
                   "x": "1.10", "b": True} for i in range(n)]))' "$1" "$2" >"$IT_TMP/b.json"
}
lb="v1 = E'a\\nb\\r\\nc\\rd\\n' AND v2 IS NULL AND x::text = '1.10' AND b"
rows_body 999 th1; post rt "$IT_TMP/b.json"
if [ "$CODE" = 200 ]; then
  assert_eq "999|0" "$(jq -r '"\(.counts.inserted)|\(.counts.failed)"' "$IT_TMP/resp")" "999 rows with line breaks"
else
  soft_fail "999 rows with line breaks: expected HTTP 200 (synchronous), got $CODE: $(head -c 300 "$IT_TMP/resp")"
fi
assert_eq 999 "$(sql "SELECT count(*) FROM rt WHERE k LIKE 'th1-%' AND $lb")" "999 rows landed"
rows_body 1500 th2; post rt "$IT_TMP/b.json"
if [ "$CODE" = 202 ]; then
  jid=$(jq -r .job_id "$IT_TMP/resp")
  assert_eq 1500 "$(jq -r .total_rows "$IT_TMP/resp")" "queued job's total_rows"
  wait_until 30 '[ "$(job_state '"$jid"')" = succeeded ]'
  assert_eq 1500 "$(sql "SELECT count(*) FROM rt WHERE k LIKE 'th2-%' AND $lb")" "1500 rows landed"
else
  soft_fail "1500 rows with line breaks: expected HTTP 202 (queued), got $CODE: $(head -c 300 "$IT_TMP/resp")"
fi
rows_body 1501 th3; post rt "$IT_TMP/b.json"
[ "$CODE" = 413 ] || soft_fail "1501 rows: expected HTTP 413, got $CODE: $(head -c 300 "$IT_TMP/resp")"
assert_eq 0 "$(sql "SELECT count(*) FROM rt WHERE k LIKE 'th3-%'")" "nothing of the refused body"

stop_worker "$wpid"
[ "$W_RC" = 0 ] || soft_fail "the worker exited $W_RC on SIGTERM"
if grep -E 'Sanitizer|runtime error:|SUMMARY:' "$IT_TMP/json.log" >&2; then
  soft_fail "sanitizer report in the worker's log"
fi
[ "$NFAIL" = 0 ] || fail "$NFAIL check(s) failed"
