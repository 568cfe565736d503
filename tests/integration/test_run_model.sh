#!/usr/bin/env bash
# test_run_model.sh - ingot run against an independent model, on random
# scenarios: one table (a partial unique index on k WHERE deleted_at IS
# NULL, a CHECK on b) with random live and soft-deleted rows, a random
# pipeline (duplicates: error / first / last, on_conflict: update /
# ignore, update rules, touch, max_length / pattern / max / required
# rules, skip_when_null) and a random CSV whose keys repeat within the
# file, across batches and against existing rows, with rows the rules
# reject (before the database) and rows PostgreSQL rejects (the CHECK, a
# NULL key: isolated by the engine, the rest of their batch committed).
# Random --batch-size, --writers, --insert-first, --merge. The model (python3, in
# this file) computes the final table, the counts, every failed row with
# its codes and line, and the exit code; each scenario is seeded.
#
# On a disagreement the seed, options, differences and the scenario's
# files (/tmp/model-fail-SEED.{csv,yaml,sql}) are printed; the other
# seeds still run.
#
#   MODEL_SEEDS="7 8 9"   run these seeds instead of the default list
#   MODEL_RUNS=500        or seeds 1..500
source "$(dirname "$0")/lib.sh"

cat >"$IT_TMP/model.py" <<'PY'
"""model.py - the independent model of test_run_model.sh.

  model.py gen SEED DIR      a random scenario: DIR/scenario.json (what the
                             model reads), DIR/setup.sql, DIR/p.yaml,
                             DIR/data.csv, DIR/opts (ingot run options)
  model.py check DIR RC OUT TABLE
                             compare ingot's exit code RC, its --json
                             summary OUT and the table's rows TABLE (JSON)
                             with what the model computes; print the
                             differences and exit 1 if there are any

The model calls nothing of ingot's: it applies the rules of
docs/pipelines.md and docs/architecture.md row by row in file order:
- a row failing a rule fails with every failing column's rule name, in
  the pipeline's column order, and does not enter the key set;
- duplicates: error / first look at the keys of earlier rows that passed
  the rules and were not skipped (skip_when_null); a row PostgreSQL later
  rejects stays in that set (the documented limit), so its key's later
  rows are DUPLICATE_KEY errors naming it, or skipped;
- a batch (--batch-size rows from the start of the file, or all of them
  when the file's data lines are at most two windows; rows that
  failed a rule count) is one INSERT .. ON CONFLICT, with DISTINCT ON
  keeping the last row of a key for duplicates: last (the others are
  skipped); in a statement PostgreSQL rejects, a row pass finds the rows
  the statement applied that fail alone (subsets of 16 rows or more) and
  the rest runs again, a smaller subset is split in halves until the
  guilty row is alone, the rest committed; NOT NULL (23502) is checked
  before the CHECK (23514), both before the conflict;
- an empty k (NULL) equals no other key, as in PostgreSQL's unique
  index: it is never a duplicate, and each such row reaches the database
  on its own (k is NOT NULL here, so each fails with 23502);
- under insert-first, batches double once one inserted only, which
  depends on timing: for duplicates: last the scenario then draws only
  overwrite and on_conflict: update, and the model checks what does not
  depend on the batches (the final table, rule failures, the last row of
  a key that PostgreSQL rejects, inserted = new live keys, the sum).
"""
import json
import random
import re

ROW_PASS_MIN = 16  # exec.c: smaller rejected subsets are bisected
import sys

INT_MIN, INT_MAX = -2**31, 2**31 - 1
DB_CODES = ("23502", "23514")
OLD = "2000-01-01 00:00:00+00"  # updated_at of every initial row


# --------------------------------------------------------------------------
# Scenario generation

A_POOL = ["red", "blue", "grün", "日本", "x", "ab", "abc", "abcd", "naïve",
          "a b", "  pad", "tail  ", "#tag", "q\"uote", "c,omma",
          "line\nbreak", "crlf\r\nbreak", "tab\there", "\\N", "NULL", "é"]
A_CHARS = list("abcxyzXYZ019 -_.#,\"'") + ["é", "ß", "日", "😀", "\n", "\t"]


def gen_a(rnd):
    r = rnd.random()
    if r < 0.15:
        return None
    if r < 0.70:
        return rnd.choice(A_POOL)
    return "".join(rnd.choice(A_CHARS) for _ in range(rnd.randint(1, 12)))


def gen_b(rnd, w):
    """b by the scenario's weights w: valid, null, negative (the CHECK
    rejects it), not an int (a rule error), large (over a max rule)."""
    kind = rnd.choices(["ok", "null", "neg", "bad", "big"], w)[0]
    if kind == "ok":
        v = rnd.randint(0, 6)
        return rnd.choice(["%d", "%d", "%d", "+%d", "0%d", " %d", "%d ",
                           "00%d", "-0%.0s", "+0%.0s"]) % v
    if kind == "null":
        return None
    if kind == "neg":
        return rnd.choice(["-1", "-7", "-50", " -3", "-2147483648"])
    if kind == "bad":
        return rnd.choice(["x", "1.5", "3a", "1e2", "2147483648",
                           "-2147483649", "--1", "+", "- 1", "0x10", "٣",
                           "99999999999999999999"])
    return str(rnd.randint(100, 5000))


def gen(seed, d):
    rnd = random.Random(seed)
    policy = rnd.choice(["error", "first", "last"])
    insert_first = rnd.choice([0, 1])
    writers = rnd.choice([1, 2])
    bs = rnd.choice([rnd.randint(1, 6), rnd.randint(1, 50), rnd.randint(1, 50)])
    # 'last' with insert-first 1: batch boundaries depend on timing, so
    # only update rules whose result does not depend on them (overwrite,
    # on_conflict: update) are drawn there.
    exact_batches = policy != "last" or insert_first == 0
    free = exact_batches
    on_conflict = rnd.choice(["update"] * 4 + ["ignore"]) if free else "update"
    upd = ["overwrite"] * 4 + ["keep", "coalesce", "never"]
    a_update = rnd.choice(upd) if free else "overwrite"
    b_update = rnd.choice(upd) if free else "overwrite"
    sc = {
        "seed": seed,
        "policy": policy,
        "on_conflict": on_conflict,
        "insert_first": insert_first,
        "writers": writers,
        "batch_size": bs,
        "exact_batches": exact_batches,
        "a_max": rnd.choice([None, None, rnd.randint(2, 8)]),
        "a_pattern": rnd.random() < 0.25,  # ^[^#]*$
        "b_max": rnd.choice([None, None, None, rnd.randint(20, 1000)]),
        "k_required": rnd.random() < 0.5,
        "skip_when_null_b": rnd.random() < 0.2,
        "a_update": a_update,
        "b_update": b_update,
        "crlf": rnd.random() < 0.3,
    }
    # Keys: a small pool, so that they repeat in the file, across batches
    # and against existing (live and soft-deleted) rows.
    npool = rnd.choice([rnd.randint(3, 40), rnd.randint(3, 40),
                        rnd.randint(40, 150)])
    pool = ["k%02d" % i for i in range(npool)]
    for i in range(rnd.randint(0, 3)):
        pool.append(rnd.choice(["K00", "k00 ", "kä%d" % i, "日%d" % i]))
    pool = sorted(set(pool), key=pool.index)
    extra = ["zz%d" % i for i in range(rnd.randint(0, 4))]  # not in the file
    initial, nid = [], 0
    empty = rnd.random() < 0.2  # insert-first starts on in an empty table
    for k in pool + extra:
        r = 1 if empty else rnd.random()
        ndel = 0
        live = False
        if r < 0.35:
            live = True
        elif r < 0.50:
            ndel = rnd.randint(1, 2)
        elif r < 0.60:
            ndel, live = 1, True
        for j in range(ndel + live):
            nid += 1
            b = rnd.choice([None, 0, 1, 2, 3, 4, 5, 6, 250])
            initial.append({"id": nid, "k": k, "a": gen_a(rnd), "b": b,
                            "deleted": j < ndel})
    rnd.shuffle(initial)
    sc["initial"] = initial
    n = rnd.randint(50, 400)
    # How often a row's key is new to the file (insert-first stays on
    # while batches only insert), and the mix of b values.
    p_new = rnd.choice([0, 0, 0.5, 0.9])
    p_null_key = rnd.choice([0, 0.01, 0.03])
    w_b = rnd.choice([[60, 8, 8, 8, 10], [90, 5, 1, 1, 3], [95, 5, 0, 0, 0],
                      [80, 5, 10, 0, 5], [50, 10, 20, 10, 10]])
    sc["mix"] = {"p_new": p_new, "p_null_key": p_null_key, "w_b": w_b}
    rows = []
    for i in range(n):
        r = rnd.random()
        if r < p_null_key:
            k = ""
        elif r < p_null_key + p_new:
            k = "n%04d" % i
        else:
            k = rnd.choice(pool)
        rows.append({"k": k, "a": gen_a(rnd), "b": gen_b(rnd, w_b)})
    sc["rows"] = rows
    header = ["k", "a", "b"]
    rnd.shuffle(header)
    sc["header"] = header
    cols = ["k", "a", "b"]
    rnd.shuffle(cols)
    sc["cols"] = cols  # the pipeline's column order: the order of reasons

    # The CSV, and each record's first line.
    eol = "\r\n" if sc["crlf"] else "\n"
    out = [",".join(header) + eol]
    lines = []
    line = 2
    for row in rows:
        lines.append(line)
        fields = []
        for h in header:
            v = row[h]
            if v is None:
                fields.append("")
            elif any(c in v for c in ',"\r\n') or v == "" or rnd.random() < 0.1:
                fields.append('"' + v.replace('"', '""') + '"')
            else:
                fields.append(v)
        rec = ",".join(fields) + eol
        out.append(rec)
        line += len(re.findall(r"\r\n|\r|\n", rec))
    sc["lines"] = lines
    sc["data_lines"] = line - 2  # what line_bound counts, less the header
    with open(d + "/data.csv", "w", encoding="utf-8", newline="") as f:
        f.write("".join(out))

    # The pipeline.
    def q(s):
        return json.dumps(s)  # a YAML double-quoted scalar
    y = ["description: model test %d" % seed, "targets:", "  - table: m",
         "    key: [k]", "    key_predicate: deleted_at IS NULL",
         "    duplicates: %s" % policy, "    on_conflict: %s" % on_conflict,
         "    touch: updated_at"]
    if sc["skip_when_null_b"]:
        y.append("    skip_when_null: [b]")
    y.append("    columns:")
    for c in cols:
        if c == "k":
            y.append("      k: { from: k%s }" % (
                ", rules: { required: true }" if sc["k_required"] else ""))
        elif c == "a":
            rules = []
            if sc["a_max"] is not None:
                rules.append("max_length: %d" % sc["a_max"])
            if sc["a_pattern"]:
                rules.append("pattern: %s" % q("^[^#]*$"))
            y.append("      a: { from: a, update: %s%s }" % (
                a_update, ", rules: { %s }" % ", ".join(rules) if rules else ""))
        else:
            y.append("      b: { from: b, type: int, update: %s%s }" % (
                b_update, ", rules: { max: %s }" % q(str(sc["b_max"]))
                if sc["b_max"] is not None else ""))
    with open(d + "/p.yaml", "w") as f:
        f.write("\n".join(y) + "\n")

    # The table and its initial rows.
    def lit(v):
        if v is None:
            return "NULL"
        if isinstance(v, int):
            return str(v)
        return "'" + v.replace("'", "''") + "'"
    s = ["SET client_min_messages = warning;", "DROP TABLE IF EXISTS m;",
         "CREATE TABLE m (id bigserial PRIMARY KEY, k text NOT NULL, a text,"
         " b integer CHECK (b IS NULL OR b >= 0),"
         " updated_at timestamptz NOT NULL DEFAULT now(),"
         " deleted_at timestamptz);",
         "CREATE UNIQUE INDEX ON m (k) WHERE deleted_at IS NULL;"]
    for r in initial:
        s.append("INSERT INTO m (id, k, a, b, updated_at, deleted_at) VALUES"
                 " (%d, %s, %s, %s, '%s', %s);" % (
                     r["id"], lit(r["k"]), lit(r["a"]), lit(r["b"]), OLD,
                     "'2001-01-01 00:00:00+00'" if r["deleted"] else "NULL"))
    s.append("SELECT setval(pg_get_serial_sequence('m', 'id'), %d, %s);" % (
        max(nid, 1), "true" if nid else "false"))
    s.append("ANALYZE m;")
    with open(d + "/setup.sql", "w", encoding="utf-8") as f:
        f.write("\n".join(s) + "\n")
    with open(d + "/opts", "w") as f:
        # --merge from a stream of its own, so the other draws of a seed
        # stay what they were: the model is the same either way.
        f.write("--batch-size %d --writers %d --insert-first %d --merge %d\n" % (
            bs, writers, insert_first, random.Random(seed + 7919).choice([0, 1])))
    with open(d + "/scenario.json", "w") as f:
        json.dump(sc, f)


# --------------------------------------------------------------------------
# The model

def parse_int(s):
    """ingot's int type: blanks, an optional sign, ASCII digits; None when
    it is not one (a 'type' error)."""
    t = s.strip(" \t\r\n\v\f")
    m = re.fullmatch(r"([+-]?)([0-9]+)", t)
    if not m:
        return None
    v = int(m.group(2)) * (-1 if m.group(1) == "-" else 1)
    return v if INT_MIN <= v <= INT_MAX else None


def batch_sizes(sc, n):
    """Records per batch (failed ones included) with insert-first off:
    --batch-size each (runner.c next_batch_size), or all of them in one
    when the file's data lines are at most two windows (ig_run's
    first_size). Under insert-first, batches double once one was seen to
    insert only: timing, not modelled."""
    bs = sc["batch_size"]
    if 0 < n and sc["data_lines"] <= 2 * bs:
        return [n]
    out = []
    while n > 0:
        out.append(min(bs, n))
        n -= out[-1]
    return out


class Model:
    def __init__(self, sc):
        self.sc = sc
        self.rows = {}      # live key -> {"id", "a", "b", "touched"}
        self.deleted = []
        self.maxid = 0
        for r in sc["initial"]:
            self.maxid = max(self.maxid, r["id"])
            if r["deleted"]:
                self.deleted.append(r)
            else:
                self.rows[r["k"]] = {"id": r["id"], "a": r["a"], "b": r["b"],
                                     "touched": False}
        self.counts = {"inserted": 0, "updated": 0, "unchanged": 0,
                       "skipped": 0, "failed": 0}
        self.failed = {}    # row -> (codes, first row for DUPLICATE_KEY)

    def fail(self, i, codes, first=None):
        self.failed[i] = (codes, first)
        self.counts["failed"] += 1

    # A row PostgreSQL rejects, and why (NOT NULL is checked before CHECK).
    @staticmethod
    def db_error(r):
        if r["k"] is None:
            return "23502"
        if r["b"] is not None and r["b"] < 0:
            return "23514"
        return None

    def map_rows(self):
        """Rules, skip_when_null and duplicates: error / first, in file
        order: the batch rows [(row, eligible, k, a, b)] by record."""
        sc = self.sc
        seen = {}
        mapped = []
        for i, raw in enumerate(sc["rows"], 1):
            k = raw["k"] if raw["k"] != "" else None  # null marker ""
            a = raw["a"]
            reasons = {}
            if k is None and sc["k_required"]:
                reasons["k"] = "required"
            if a is not None:
                if sc["a_max"] is not None and len(a) > sc["a_max"]:
                    reasons["a"] = "max_length"
                elif sc["a_pattern"] and "#" in a:
                    reasons["a"] = "pattern"
            b = None
            if raw["b"] is not None:
                b = parse_int(raw["b"])
                if b is None:
                    reasons["b"] = "type"
                elif sc["b_max"] is not None and b > sc["b_max"]:
                    reasons["b"] = "max"
            if reasons:
                self.fail(i, ["%s:%s" % (c, reasons[c])
                              for c in sc["cols"] if c in reasons])
                mapped.append(None)
                continue
            row = {"row": i, "k": k, "a": a, "b": b, "elig": True}
            if sc["skip_when_null_b"] and b is None:
                row["elig"] = False
                self.counts["skipped"] += 1
            elif sc["policy"] in ("error", "first") and k is not None:
                if k in seen:
                    if sc["policy"] == "error":
                        self.fail(i, ["k:DUPLICATE_KEY"], seen[k])
                        mapped.append(None)
                        continue
                    row["elig"] = False
                    self.counts["skipped"] += 1
                else:
                    seen[k] = i  # even if the database rejects the row
            mapped.append(row)
        return mapped

    def upsert(self, r):
        """One winning row through ON CONFLICT: its outcome."""
        sc = self.sc
        cur = self.rows.get(r["k"])
        if cur is None:
            self.rows[r["k"]] = {"id": "new", "a": r["a"], "b": r["b"],
                                 "touched": True}
            return "inserted"
        if sc["on_conflict"] == "ignore":
            return "skipped"  # left out, not compared
        old, new = [], []
        for c, rule in (("a", sc["a_update"]), ("b", sc["b_update"])):
            if rule == "never":
                continue
            v = {"overwrite": r[c],
                 "keep": cur[c] if cur[c] is not None else r[c],
                 "coalesce": r[c] if r[c] is not None else cur[c]}[rule]
            old.append(cur[c])
            new.append(v)
        if not old or old == new:
            return "unchanged"
        for c, rule in (("a", sc["a_update"]), ("b", sc["b_update"])):
            if rule != "never":
                cur[c] = new.pop(0)
        cur["touched"] = True
        return "updated"

    def cut_rows(self, rows):
        """exec.c's cut_by_key for one target: the rows in file order and
        where to cut them. Under duplicates: last no key has rows on both
        sides: the cut in file order nearest the middle that allows it;
        else whole keys by their first rows to the first part until it
        holds half the rows; one key: its last row after the others."""
        rows = sorted(rows, key=lambda r: r["row"])
        n = len(rows)
        if self.sc["policy"] != "last":
            return rows, n // 2
        first, last, pos = list(range(n)), list(range(n)), {}
        for i, r in enumerate(rows):
            if r["elig"]:
                pos.setdefault(r["k"] if r["k"] is not None
                               else ("null", r["row"]), []).append(i)
        for ps in pos.values():
            for i in ps:
                first[i], last[i] = ps[0], ps[-1]
        cut, best, reach = 0, n, 0
        for c in range(1, n):
            reach = max(reach, last[c - 1])
            if reach < c and abs(c - n // 2) < best:
                best, cut = abs(c - n // 2), c
        if cut == 0:
            limit = max(first)
            if limit == 0:
                cut = n - 1
            else:
                in_a, na = [False] * n, 0
                for i in range(n):
                    in_a[i] = (na < n // 2 and i < limit) if first[i] == i \
                        else in_a[first[i]]
                    na += in_a[i]
                a = [rows[i] for i in range(n) if in_a[i]]
                rows, cut = a + [rows[i] for i in range(n) if not in_a[i]], len(a)
        return rows, cut if 0 < cut < n else n // 2

    def subset(self, rows):
        """Apply rows in a savepoint. When PostgreSQL rejects it, a subset
        of ROW_PASS_MIN rows or more gets the row pass: each row the
        upsert would apply (the last of its key) is tried alone, those
        failing are marked and the rest runs again as a subset; a smaller
        one is split in two (cut_rows) until the guilty row is alone."""
        win = {}
        for r in rows:
            if r["elig"]:  # DISTINCT ON (k) ORDER BY k, _row DESC; a
                # NULL k is a key of its own
                win[r["k"] if r["k"] is not None else ("null", r["row"])] = r
        bad = [r for r in win.values() if self.db_error(r)]
        if bad and len(rows) >= ROW_PASS_MIN:
            for r in bad:
                self.fail(r["row"], [self.db_error(r)])
            gone = {r["row"] for r in bad}
            rest = [r for r in rows if r["row"] not in gone]
            if rest:
                self.subset(rest)
            return
        if bad:
            if len(rows) == 1:
                self.fail(rows[0]["row"], [self.db_error(rows[0])])
                return
            rows, h = self.cut_rows(rows)
            self.subset(rows[:h])
            self.subset(rows[h:])
            return
        self.counts["skipped"] += sum(r["elig"] for r in rows) - len(win)
        for r in win.values():
            self.counts[self.upsert(r)] += 1

    def run(self):
        mapped = self.map_rows()
        pos = 0
        for size in batch_sizes(self.sc, len(mapped)):
            batch = [r for r in mapped[pos:pos + size] if r is not None]
            pos += size
            if batch:
                self.subset(batch)


def fmt_row(r):
    return "%s|%s|%s|%s" % (r["id"], json.dumps(r["a"], ensure_ascii=False),
                            r["b"], "touched" if r["touched"] else "untouched")


def check(d, rc, out_path, table_path):
    sc = json.load(open(d + "/scenario.json"))
    problems = []

    def expect(what, want, got):
        if want != got:
            problems.append("%s: expected %s, got %s" % (what, want, got))

    try:
        out = json.load(open(out_path))
    except ValueError:
        print("no JSON summary on stdout: %r" % open(out_path).read()[:2000])
        return 1
    table = json.load(open(table_path))
    n = len(sc["rows"])
    m = Model(sc)
    m.run()
    exact = sc["exact_batches"]
    counts = out.get("counts", {})
    expect("status", "done", out.get("status"))
    expect("read", n, counts.get("read"))

    # -- the final table ---------------------------------------------------
    got_del = sorted((r["id"], r["k"], r["a"], r["b"], r["touched"])
                     for r in table if r["deleted"])
    want_del = sorted((r["id"], r["k"], r["a"], r["b"], False)
                      for r in m.deleted)
    if got_del != want_del:
        problems.append("soft-deleted rows changed:\n  want %s\n  got  %s" % (
            want_del, got_del))
    live = {}
    for r in table:
        if r["deleted"]:
            continue
        if r["k"] in live:
            problems.append("two live rows for key %r" % r["k"])
        live[r["k"]] = {"id": r["id"] if r["id"] <= m.maxid else "new",
                        "a": r["a"], "b": r["b"], "touched": r["touched"]}
    # Rows that reach the table's statement (passed the rules, eligible),
    # and per key the last of them in the file.
    accepted, last_of = {}, {}
    for i, raw in enumerate(sc["rows"], 1):
        if i in m.failed and m.failed[i][0][0] not in DB_CODES:  # rules
            continue
        b = parse_int(raw["b"]) if raw["b"] is not None else None
        if sc["skip_when_null_b"] and b is None:
            continue
        accepted[i] = {"k": raw["k"] or None, "a": raw["a"], "b": b}
        last_of[raw["k"] or None] = i
    if not exact:
        # 'last', batch boundaries unknown: the last row of each key that
        # PostgreSQL accepts wins (only overwrite is drawn here); updated_at
        # moved when the values did, stayed when every row had the old ones.
        final = {}
        for r in sc["initial"]:
            if not r["deleted"]:
                final[r["k"]] = dict(id=r["id"], a=r["a"], b=r["b"],
                                     touched=False, init=(r["a"], r["b"]),
                                     differ=False)
        for i, r in accepted.items():
            if Model.db_error(r):
                continue
            f = final.setdefault(r["k"], dict(id="new", touched=True,
                                              init=None))
            f["a"], f["b"] = r["a"], r["b"]
            if f["init"] is not None and (r["a"], r["b"]) != f["init"]:
                f["differ"] = True
        for k, f in final.items():
            if f["init"] is not None:
                if (f["a"], f["b"]) != f["init"]:
                    f["touched"] = True
                elif f["differ"]:  # changed, then changed back: either
                    f["touched"] = live.get(k, {}).get("touched")
            f.pop("init")
            f.pop("differ", None)
        want_live = final
    else:
        want_live = m.rows
    for k in sorted(set(want_live) | set(live), key=repr):
        w, g = want_live.get(k), live.get(k)
        if w is None or g is None or fmt_row(w) != fmt_row(g):
            problems.append("key %r: expected %s, got %s" % (
                k, fmt_row(w) if w else "no live row",
                fmt_row(g) if g else "no live row"))
    expect("rows in the table", len(want_live) + len(m.deleted), len(table))

    # -- failed rows -------------------------------------------------------
    got_failed = {}
    for fr in out.get("failed_rows", []):
        if fr["row"] in got_failed:
            problems.append("row %d reported twice" % fr["row"])
        got_failed[fr["row"]] = fr
        if fr["row"] < 1 or fr["row"] > n:
            problems.append("failed row %d out of range" % fr["row"])
            continue
        expect("row %d's line" % fr["row"], sc["lines"][fr["row"] - 1],
               fr["line"])
        codes = [x["code"] for x in fr["reasons"]]
        expect("row %d's targets" % fr["row"], ["m"] * len(codes),
               [x["target"] for x in fr["reasons"]])
        # the original values, in the file's column order ("" for NULL)
        raw = sc["rows"][fr["row"] - 1]
        expect("row %d's values" % fr["row"],
               [raw[h] if raw[h] is not None else "" for h in sc["header"]],
               fr.get("values"))
        if "23514" in codes:
            expect("row %d's constraint" % fr["row"], ["m_b_check"],
                   [x["constraint"] for x in fr["reasons"]])
        if codes == ["DUPLICATE_KEY"]:
            msg = fr["reasons"][0]["message"]
            mm = re.search(r"row (\d+) has the same key", msg)
            fr["first"] = int(mm.group(1)) if mm else msg
    expect("failed count vs failed_rows", counts.get("failed"),
           len(got_failed))
    want_failed = dict(m.failed)
    if not exact:
        # Under 'last' a row PostgreSQL would reject is skipped instead when
        # a later row of its key is in its batch: where the batches end is
        # not known, so only the last row of a key must fail.
        want_failed = {i: f for i, f in m.failed.items()
                       if f[0][0] not in DB_CODES}
        for i, r in accepted.items():
            if Model.db_error(r):
                want_failed[i] = ([Model.db_error(r)], None)
    for i in sorted(set(want_failed) | set(got_failed)):
        want = want_failed.get(i)
        got = got_failed.get(i)
        # column:code, or the SQLSTATE alone for PostgreSQL's rejections
        gcodes = [x["code"] if x["code"] in DB_CODES else
                  "%s:%s" % (x["column"], x["code"])
                  for x in got["reasons"]] if got else None
        if not exact and want and want[0][0] in DB_CODES and \
                got is None and accepted[i]["k"] is not None and \
                last_of[accepted[i]["k"]] != i:
            continue  # skipped: a later row of its key was in its batch
        if want is None:
            problems.append("row %d (line %d) failed, expected to succeed: %s" % (
                i, sc["lines"][i - 1], json.dumps(got["reasons"], ensure_ascii=False)))
        elif got is None:
            problems.append("row %d (line %d) succeeded, expected to fail: %s" % (
                i, sc["lines"][i - 1], want[0]))
        else:
            expect("row %d's codes" % i, want[0], gcodes)
            if want[1] is not None:
                expect("row %d's DUPLICATE_KEY first row" % i, want[1],
                       got.get("first"))

    # -- counts --------------------------------------------------------------
    names = ["inserted", "updated", "unchanged", "skipped", "failed"]
    total = sum(counts.get(x, 0) for x in names)
    expect("inserted+updated+unchanged+skipped+failed", n, total)
    tgt = (out.get("targets") or [{}])[0]
    for x in names[:4]:
        expect("targets[0].%s" % x, counts.get(x), tgt.get(x))
    if exact:
        for x in names:
            expect("count %s" % x, m.counts[x], counts.get(x))
    else:
        new_keys = sum(1 for k, r in live.items() if r["id"] == "new")
        expect("count inserted (new live keys)", new_keys,
               counts.get("inserted"))
    failed = counts.get("failed", -1)
    want_rc = 0 if failed == 0 else 1 if failed < n else 2
    expect("exit code", want_rc, rc)
    expect("JSON exit_code", rc, out.get("exit_code"))

    if problems:
        print("\n".join(problems))
        if exact:
            print("model counts: %s" % m.counts)
        print("ingot counts: %s" % counts)
        return 1
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit(check(sys.argv[2], int(sys.argv[3]), sys.argv[4],
                       sys.argv[5]))
PY

# Seeds 1..18 by default (every policy, both on_conflict modes, both
# write paths, one and two writers, empty and filled tables); add a seed
# here when it finds an engine bug.
SEEDS=${MODEL_SEEDS:-$(seq 1 "${MODEL_RUNS:-18}")}
failures=()
for seed in $SEEDS; do
  d="$IT_TMP/s$seed"
  mkdir -p "$d"
  python3 "$IT_TMP/model.py" gen "$seed" "$d"
  psql "$DATABASE_URL" -qAtX -v ON_ERROR_STOP=1 -f "$d/setup.sql" >/dev/null
  read -r -a opts <"$d/opts"
  rc=0
  "$INGOT_BIN" run "$d/p.yaml" "$d/data.csv" --json --no-reject-file "${opts[@]}" \
    >"$d/out.json" 2>"$d/err" || rc=$?
  sql "SELECT coalesce(json_agg(json_build_object('id', id, 'k', k, 'a', a,
         'b', b, 'touched', updated_at <> '2000-01-01 00:00:00+00',
         'deleted', deleted_at IS NOT NULL) ORDER BY id), '[]') FROM m" >"$d/table.json"
  echo "# seed $seed: $(jq -r '"\(.policy) on_conflict=\(.on_conflict)"' "$d/scenario.json") ${opts[*]}: exit $rc $(jq -c '.counts // "no summary"' "$d/out.json" 2>/dev/null)"
  ok=1
  python3 "$IT_TMP/model.py" check "$d" "$rc" "$d/out.json" "$d/table.json" >"$d/diff" 2>&1 || ok=0
  if grep -qE 'Sanitizer|runtime error:' "$d/err"; then # the ASan/UBSan build
    ok=0; echo "sanitizer report on stderr" >>"$d/diff"
  fi
  if [ $ok = 0 ]; then
    cp "$d/data.csv" "/tmp/model-fail-$seed.csv"
    cp "$d/p.yaml" "/tmp/model-fail-$seed.yaml"
    cp "$d/setup.sql" "/tmp/model-fail-$seed.sql"
    {
      echo "--- seed $seed: ingot run PIPELINE CSV --json --no-reject-file ${opts[*]} (exit $rc)"
      echo "    $(jq -c '{policy, on_conflict, a_update, b_update, a_max, a_pattern, b_max, k_required, skip_when_null_b, mix}' "$d/scenario.json")"
      echo "    CSV /tmp/model-fail-$seed.csv, pipeline /tmp/model-fail-$seed.yaml, initial table /tmp/model-fail-$seed.sql"
      head -c 300 "$d/err"
      head -40 "$d/diff"
    } >&2
    failures+=("$seed")
  fi
done
[ ${#failures[@]} -eq 0 ] || fail "the engine and the model disagree for seeds: ${failures[*]}"
