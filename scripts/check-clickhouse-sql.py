#!/usr/bin/env python3
"""Checks the project's ClickHouse SQL on a current ClickHouse engine (chdb, the
in-process ClickHouse from PyPI) and, beside it, on the ClickHouse server the project
runs today (Debian's 18.16, over HTTP), and reports both side by side.

What it runs, in order, on each engine, in a scratch database:
  1. the DDL of schemas/clickhouse/*.sql, as warehouse/src/migrate.rs applies
     it (CREATE DATABASE IF NOT EXISTS, then each file in name order with `{db}`
     replaced), and then once more (the sink applies it at every start: a no-op);
  2. the sink's own statements (warehouse/src/): `SELECT max(seq)` on the
     empty user_events, the JSONEachRow inserts shaped as rows.rs writes them (a few
     representative rows; the inserts into earning_events and purchase_events feed
     the materialized views), and the existing-id lookups;
  3. every panel query (rawSql) of dashboards/grafana/dashboards/*.json, with the
     `referral.` database swapped for the scratch one and Grafana's ClickHouse plugin
     macros expanded as the plugin (v4) does: $__fromTime -> toDateTime(<unix s>);
  4. the analytics queries of api/src/analytics.rs, built as the handlers build them
     (`{db}`, the day filter, the limits), with `FORMAT JSONEachRow` appended and
     output_format_json_quote_64bit_integers=0, as api/src/analytics/warehouse.rs sends.

It prints one line per statement and engine (OK, or FAIL with the error), a side-by-
side summary, and notes where both engines ran a statement but answered differently.
Exits 1 if any statement failed on any engine it ran on (2 on a usage error).

Run (from the repository root):
  .local/chdb-venv/bin/python scripts/check-clickhouse-sql.py          # chdb + 18.16 if it answers
  scripts/check-clickhouse-sql.sh                                     # same, installs chdb first
Options: --server-url URL (default $CLICKHOUSE_URL or http://127.0.0.1:18123),
  --no-server (chdb only), --require-server (fail when the server does not answer),
  --show-sql, --show-rows. Uses only the standard library and chdb.
"""
import argparse
import glob
import json
import os
import re
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

# The sink writes times in UTC and the project's server runs in UTC: make the embedded
# engine parse and print DateTime the same way (ClickHouse reads TZ at start).
os.environ["TZ"] = "UTC"
time.tzset()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ERROR_CHARS = 400

# ---- the data: a small referral tree, three purchases, earnings and a reversal ------
U = {  # users: A (root) <- B <- C <- D ; A <- E (moved to no referrer) ; B <- F
    k: f"00000000-0000-4000-8000-00000000000{i}"
    for i, k in enumerate("ABCDEF", start=1)
}
SHOP1 = "5a000000-0000-4000-8000-000000000001"
SHOP2 = "5a000000-0000-4000-8000-000000000002"
P1 = "0c000000-0000-4000-8000-000000000001"
P2 = "0c000000-0000-4000-8000-000000000002"
P3 = "0c000000-0000-4000-8000-000000000003"


def _json_row(pairs):
    """One JSONEachRow line as rows.rs builds it: decimals as bare numbers at scale 2."""
    parts = []
    for key, value in pairs:
        if isinstance(value, Money):
            text = value.text
        else:
            text = json.dumps(value)
        parts.append(f'"{key}":{text}')
    return "{" + ",".join(parts) + "}"


class Money:
    def __init__(self, text):
        self.text = text


def user_rows():
    # (seq, user, referrer, kind, at) -- rows::user_event
    events = [
        (1, U["A"], None, "created", "2024-01-01 09:00:00"),
        (2, U["B"], U["A"], "created", "2024-01-02 09:00:00"),
        (3, U["C"], U["B"], "created", "2024-01-03 09:00:00"),
        (4, U["D"], U["C"], "created", "2024-01-04 09:00:00"),
        (5, U["E"], U["A"], "created", "2024-01-05 09:00:00"),
        (6, U["F"], U["B"], "created", "2024-01-06 09:00:00"),
        (7, U["E"], None, "moved", "2024-01-20 09:00:00"),
    ]
    return [
        _json_row([("user_id", u), ("referrer_id", r), ("kind", k), ("seq", s), ("at", at)])
        for s, u, r, k, at in events
    ]


def purchase_rows():
    # rows::purchase
    purchases = [
        (P1, SHOP1, U["C"], "100.00", "20.00", 1, "paid", "2024-01-15 10:30:00"),
        (P2, SHOP2, U["D"], "250.50", "50.10", 1, "paid", "2024-02-03 23:59:59"),
        (P3, SHOP1, U["E"], "5.00", "1.00", 0, "below_threshold", "2024-02-03 00:00:00"),
    ]
    return [
        _json_row([
            ("purchase_id", p), ("shop_id", shop), ("user_id", user),
            ("amount", Money(amount)), ("profit", Money(profit)),
            ("qualifying", q), ("plan_version", 1), ("status", status),
            ("occurred_at", at), ("processed_at", at),
        ])
        for p, shop, user, amount, profit, q, status, at in purchases
    ]


def earning_rows():
    # rows::earning: (event, purchase, shop, beneficiary, source, leg, level, kind, amount, at)
    e = "e0000000-0000-4000-8000-00000000000"
    earnings = [
        (e + "1", P1, SHOP1, U["B"], U["C"], U["C"], 1, "earning", "10.00", "2024-01-15 10:30:01"),
        (e + "2", P1, SHOP1, U["A"], U["C"], U["B"], 2, "earning", "5.00", "2024-01-15 10:30:01"),
        (e + "3", P2, SHOP2, U["C"], U["D"], U["D"], 1, "earning", "25.05", "2024-02-03 23:59:59"),
        (e + "4", P2, SHOP2, U["B"], U["D"], U["C"], 2, "earning", "12.50", "2024-02-04 00:00:00"),
        (e + "5", P2, SHOP2, U["A"], U["D"], U["B"], 3, "earning", "6.25", "2024-02-04 00:00:00"),
        (e + "6", P1, SHOP1, U["B"], U["C"], U["C"], 1, "reversal", "-5.10", "2024-02-10 08:00:00"),
    ]
    return [
        _json_row([
            ("event_id", ev), ("purchase_id", p), ("shop_id", shop),
            ("beneficiary_id", ben), ("source_user_id", src), ("leg_user_id", leg),
            ("level", lvl), ("kind", kind), ("amount", Money(amt)),
            ("plan_version", 1), ("created_at", at),
        ])
        for ev, p, shop, ben, src, leg, lvl, kind, amt, at in earnings
    ]


# ---- the statements ------------------------------------------------------------------
class Stmt:
    def __init__(self, name, sql, kind):
        self.name, self.sql, self.kind = name, sql, kind


def ddl_statements(db):
    files = sorted(glob.glob(os.path.join(ROOT, "schemas", "clickhouse", "*.sql")))
    if not files:
        sys.exit(f"no DDL files under {ROOT}/schemas/clickhouse")
    out = [Stmt("ddl: CREATE DATABASE", f"CREATE DATABASE IF NOT EXISTS {db}", "ddl")]
    for path in files:
        with open(path, encoding="utf-8") as f:
            sql = f.read().replace("{db}", db)  # migrate.rs: sql.replace("{db}", database)
        out.append(Stmt(f"ddl: {os.path.basename(path)}", sql, "ddl"))
    again = [Stmt(s.name + " (re-applied)", s.sql, "ddl") for s in out]
    return out + again


def existing_ids_sql(db, table, time, column, ids, since=1704067200, until=1709251199):
    """clickhouse_lookup.rs lookup_sql: a keys table, bounded by the batch's seconds. The
    sink sends the ids as the external table `asked_ids` (HTTP multipart, which chdb has no
    way to take); here they are a literal list in its place. The e2e tests
    (warehouse::lookups) run the lookup as the sink sends it on the server."""
    listed = ",".join(f"'{i}'" for i in ids)
    return (f"SELECT toString({column}) FROM {db}.{table} "
            f"WHERE {time} >= toDateTime({since}) AND {time} <= toDateTime({until}) "
            f"AND {column} IN ({listed}) FORMAT TabSeparated")


def insert_sql(db, table, rows):
    """client.rs insert: `INSERT INTO db.table FORMAT JSONEachRow\\n` then one row a line."""
    return f"INSERT INTO {db}.{table} FORMAT JSONEachRow\n" + "".join(r + "\n" for r in rows)


def sink_statements(db):
    ids_new = ["e0000000-0000-4000-8000-000000000001", "e0000000-0000-4000-8000-000000000009"]
    return [
        Stmt("sink: max(seq) of empty user_events",
             f"SELECT max(seq) FROM {db}.user_events FORMAT TabSeparated", "sink"),
        Stmt("sink: insert user_events", insert_sql(db, "user_events", user_rows()), "insert"),
        Stmt("sink: insert purchase_events", insert_sql(db, "purchase_events", purchase_rows()), "insert"),
        Stmt("sink: insert earning_events", insert_sql(db, "earning_events", earning_rows()), "insert"),
        Stmt("sink: max(seq) of user_events",
             f"SELECT max(seq) FROM {db}.user_events FORMAT TabSeparated", "sink"),
        Stmt("sink: existing ids in earning_event_keys",
             existing_ids_sql(db, "earning_event_keys", "created_at", "event_id", ids_new), "sink"),
        Stmt("sink: existing ids in purchase_event_keys",
             existing_ids_sql(db, "purchase_event_keys", "processed_at", "purchase_id",
                              [P1, P3, U["A"]]), "sink"),
    ]


# Grafana's time range for the panels: 2024-01-01 00:00:00 .. 2024-02-29 23:59:59 UTC.
GRAFANA_FROM = 1704067200
GRAFANA_TO = 1709251199


def grafana_expand(sql, db):
    """Expands the ClickHouse plugin's (v4) macros the way it does, and points the
    panels' hard-coded `referral.` database at the scratch one."""
    macros = {
        "$__fromTime_ms": f"fromUnixTimestamp64Milli({GRAFANA_FROM * 1000})",
        "$__toTime_ms": f"fromUnixTimestamp64Milli({GRAFANA_TO * 1000})",
        "$__fromTime": f"toDateTime({GRAFANA_FROM})",
        "$__toTime": f"toDateTime({GRAFANA_TO})",
        "$__interval_s": "86400",
    }
    for name, value in macros.items():  # longest names first: _ms before the plain ones
        sql = sql.replace(name, value)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: f"{m[1]} >= toDateTime({GRAFANA_FROM}) AND {m[1]} <= toDateTime({GRAFANA_TO})", sql)
    sql = re.sub(r"\$__dateFilter\(([^)]+)\)",
                 lambda m: f"{m[1]} >= toDate('2024-01-01') AND {m[1]} <= toDate('2024-02-29')", sql)
    sql = re.sub(r"\$__timeInterval\(([^)]+)\)",
                 lambda m: f"toStartOfInterval(toDateTime({m[1]}), INTERVAL 86400 second)", sql)
    left = re.findall(r"\$\{?\w+", sql)
    if left:
        raise ValueError(f"unexpanded Grafana macro or variable: {', '.join(sorted(set(left)))}")
    return re.sub(r"\breferral\.", f"{db}.", sql)


def panel_statements(db):
    out = []
    for path in sorted(glob.glob(os.path.join(ROOT, "dashboards", "grafana", "dashboards", "*.json"))):
        with open(path, encoding="utf-8") as f:
            board = json.load(f)
        panels = list(board.get("panels", []))
        for p in list(panels):  # rows may nest panels
            panels.extend(p.get("panels", []))
        for panel in panels:
            for target in panel.get("targets", []):
                raw = target.get("rawSql") or target.get("query")
                if not raw:
                    continue
                name = f"panel {panel.get('id')} {panel.get('title')!r} ({os.path.basename(path)} {target.get('refId', '')})"
                try:
                    sql = grafana_expand(raw, db)
                except ValueError as e:
                    sql = f"SELECT throwIf(1, {json.dumps(str(e))})"
                out.append(Stmt(name, sql.rstrip().rstrip(";") + " FORMAT JSONEachRow", "panel"))
    return out


def day_filter(day_from, day_to):
    """analytics.rs day_filter: ` AND day >= toDate('…') AND day <= toDate('…')`."""
    sql = ""
    for op, day in ((">=", day_from), ("<=", day_to)):
        if day is not None:
            sql += f" AND day {op} toDate('{day}')"
    return sql


def api_statements(db):
    """The format! strings of api/src/analytics.rs, filled in as the handlers do."""
    max_shop_days = 10_000
    default_page, max_page = 50, 500  # [reports] default_page_size, max_page_size
    user = U["B"]

    def top_earners(limit, f, t):
        days = day_filter(f, t)
        return f"""SELECT toString(beneficiary_id) AS user_id, toString(sum(amount)) AS total, sum(entries) AS entries
         FROM {db}.earnings_daily_by_level WHERE 1 {days}
         GROUP BY beneficiary_id ORDER BY sum(amount) DESC, beneficiary_id LIMIT {limit}"""

    def purchases_per_shop(f, t):
        days = day_filter(f, t)
        return f"""SELECT day, shop_id, sum(purchases) AS purchases,
                sum(qualifying) AS qualifying, toString(sum(amount)) AS amount
         FROM {db}.purchases_daily_by_shop WHERE 1 {days}
         GROUP BY day, shop_id ORDER BY day, shop_id LIMIT {max_shop_days + 1}"""

    conversion = f"""SELECT count() AS referred_users,
                countIf(user_id IN (SELECT user_id FROM {db}.purchase_events WHERE qualifying = 1)) AS converted_users
         FROM (SELECT user_id, argMax(isNotNull(referrer_id), seq) AS referred
               FROM {db}.user_events GROUP BY user_id HAVING referred = 1)"""

    def earnings_over_time(f, t):
        days = day_filter(f, t)
        return f"""SELECT day, level, toString(sum(amount)) AS total, sum(entries) AS entries
         FROM {db}.earnings_daily_by_level WHERE beneficiary_id = toUUID('{user}') {days}
         GROUP BY day, level ORDER BY day, level"""

    def levels(f, t):
        days = day_filter(f, t)
        return f"""SELECT level, toString(sum(amount)) AS total, sum(entries) AS entries
         FROM {db}.earnings_daily_by_level WHERE beneficiary_id = toUUID('{user}') {days}
         GROUP BY level ORDER BY level"""

    def legs(f, t):
        days = day_filter(f, t)
        return f"""SELECT leg_user_id, toString(sum(amount)) AS total, sum(entries) AS entries
         FROM {db}.earnings_daily_by_leg WHERE beneficiary_id = toUUID('{user}') {days}
         GROUP BY leg_user_id ORDER BY sum(amount) DESC, leg_user_id LIMIT {max_page}"""

    cases = [
        ("top-earners (all time, default limit)", top_earners(default_page, None, None)),
        ("top-earners (from+to, limit=2)", top_earners(2, "2024-01-01", "2024-01-31")),
        ("top-earners (from only, max limit)", top_earners(max_page, "2024-02-01", None)),
        ("top-earners (widest range allowed)", top_earners(1, "1970-01-01", "2105-12-31")),
        ("purchases-per-shop (30-day default series)", purchases_per_shop("2024-01-06", "2024-02-04")),
        ("purchases-per-shop (366-day series at LAST_DAY)", purchases_per_shop("2105-01-01", "2105-12-31")),
        ("conversion", conversion),
        ("users/{id}/earnings-over-time (series)", earnings_over_time("2024-01-12", "2024-02-10")),
        ("users/{id}/levels (all time)", levels(None, None)),
        ("users/{id}/levels (to only)", levels(None, "2024-01-31")),
        ("users/{id}/legs (all time)", legs(None, None)),
        ("users/{id}/legs (from+to)", legs("2024-02-01", "2024-02-29")),
    ]
    # warehouse.rs: body = format!("{} FORMAT JSONEachRow", sql(db))
    return [Stmt(f"api: {name}", f"{sql} FORMAT JSONEachRow", "api") for name, sql in cases]


# ---- the engines ---------------------------------------------------------------------
class EngineError(Exception):
    pass


def short_error(text):
    text = " ".join(text.split())
    # Both versions append a stack trace or version tail; the head says what failed.
    return text[:ERROR_CHARS] + ("…" if len(text) > ERROR_CHARS else "")


class Chdb:
    def __init__(self):
        import chdb  # noqa: imported here so --help works without it
        from chdb import session

        self.tmp = tempfile.TemporaryDirectory(prefix="chdb-check-")
        self.session = session.Session(self.tmp.name)
        self.version = self.run("SELECT version()").strip().strip('"')
        self.label = f"chdb {chdb.__version__} (ClickHouse {self.version})"
        self.short = f"current {self.version}"
        # What the API sets on each request (warehouse.rs); a session keeps it.
        self.run("SET output_format_json_quote_64bit_integers = 0")

    def run(self, sql):
        try:
            res = self.session.query(sql, "CSV")
        except Exception as e:  # chdb raises ChdbError (a RuntimeError) with the server text
            raise EngineError(short_error(str(e))) from None
        return res.bytes().decode("utf-8") if hasattr(res, "bytes") else str(res)

    def close(self):
        try:
            self.session.close()
        finally:
            self.tmp.cleanup()


class Http:
    """The HTTP interface, as the sink (client.rs) and the API (warehouse.rs) use it."""

    def __init__(self, url):
        self.url = url.rstrip("/") + "/"
        self.version = self.run("SELECT version()", timeout=3).strip()
        self.label = f"server {url} (ClickHouse {self.version})"
        self.short = f"server {self.version}"

    def run(self, sql, timeout=30):
        params = urllib.parse.urlencode({
            "wait_end_of_query": "1",
            "output_format_json_quote_64bit_integers": "0",
        })
        req = urllib.request.Request(self.url + "?" + params, data=sql.encode("utf-8"), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            raise EngineError(short_error(e.read().decode("utf-8", "replace"))) from None
        except (urllib.error.URLError, OSError) as e:
            raise EngineError(f"unreachable: {e}") from None

    def close(self):
        pass


# ---- running and reporting -----------------------------------------------------------
def parse_rows(stmt, text):
    if stmt.kind in ("ddl", "insert"):
        return None
    if stmt.sql.endswith("FORMAT JSONEachRow"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return [line for line in text.splitlines()]


def run_all(engine, stmts, show_rows):
    results = []
    for s in stmts:
        try:
            text = engine.run(s.sql)
            rows = parse_rows(s, text)
            results.append(("OK", rows))
            extra = "" if rows is None else f"  ({len(rows)} rows)"
            print(f"OK    [{engine.short}] {s.name}{extra}")
            if show_rows and rows:
                for r in rows:
                    print(f"        {json.dumps(r) if not isinstance(r, str) else r}")
        except EngineError as e:
            results.append(("FAIL", str(e)))
            print(f"FAIL  [{engine.short}] {s.name}: {e}")
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server-url", default=os.environ.get("CLICKHOUSE_URL", "http://127.0.0.1:18123"))
    ap.add_argument("--no-server", action="store_true", help="check on chdb only")
    ap.add_argument("--require-server", action="store_true",
                    help="fail when the server does not answer (default: skip it)")
    ap.add_argument("--show-sql", action="store_true", help="print each statement before the results")
    ap.add_argument("--show-rows", action="store_true", help="print what each query answered")
    args = ap.parse_args()

    db = f"chdb_check_{os.getpid()}"
    stmts = ddl_statements(db) + sink_statements(db) + panel_statements(db) + api_statements(db)
    if args.show_sql:
        for s in stmts:
            print(f"-- {s.name}\n{s.sql.rstrip()}\n")

    engines = []
    try:
        engines.append(Chdb())
    except ImportError:
        print("ERROR: chdb is not installed; run scripts/check-clickhouse-sql.sh "
              "(or .local/chdb-venv/bin/pip install chdb)", file=sys.stderr)
        return 2
    if not args.no_server:
        try:
            engines.append(Http(args.server_url))
        except EngineError as e:
            if args.require_server:
                print(f"ERROR: ClickHouse server at {args.server_url}: {e}", file=sys.stderr)
                return 1
            print(f"SKIP  server {args.server_url}: {e}")

    print(f"scratch database {db}; Grafana range {GRAFANA_FROM}..{GRAFANA_TO} "
          f"(2024-01-01 00:00:00 .. 2024-02-29 23:59:59 UTC)")
    table = {}
    try:
        for eng in engines:
            print(f"\n== {eng.label}")
            table[eng.short] = run_all(eng, stmts, args.show_rows)
    finally:
        for eng in engines:
            if isinstance(eng, Http):
                try:
                    eng.run(f"DROP DATABASE IF EXISTS {db}")
                except EngineError as e:
                    print(f"WARNING: could not drop {db} on the server: {e}", file=sys.stderr)
            eng.close()

    names = [e.short for e in engines]
    print("\n== summary: " + " | ".join(names))
    failed = 0
    notes = []
    for i, s in enumerate(stmts):
        cells = [table[n][i][0] for n in names]
        failed += cells.count("FAIL")
        print(f"{' | '.join(f'{c:4}' for c in cells)}  {s.name}")
        if len(names) == 2 and cells == ["OK", "OK"]:
            a, b = (table[n][i][1] for n in names)
            if a != b:
                same_set = a is not None and b is not None and \
                    sorted(map(json.dumps, a)) == sorted(map(json.dumps, b))
                why = "same rows, other order" if same_set else "different answers"
                notes.append(f"{s.name}: {why}\n    {names[0]}: {json.dumps(a)}\n    {names[1]}: {json.dumps(b)}")
        elif len(set(cells)) > 1:
            bad = [(n, table[n][i][1]) for n in names if table[n][i][0] == "FAIL"]
            notes.append(f"{s.name}: fails on {', '.join(n for n, _ in bad)} only")
    if notes:
        print("\n== differences between engines")
        for n in notes:
            print(f"NOTE  {n}")
    total = len(stmts) * len(names)
    print(f"\n{total - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
