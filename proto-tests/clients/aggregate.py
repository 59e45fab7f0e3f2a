#!/usr/bin/env python3
"""Compares the direct and the proxy results of every client scenario and
writes docs/compatibility.md.

    aggregate.py RESULTS_DIR OUTPUT_MD

RESULTS_DIR holds the drivers' JSON lines (*.jsonl, see common.py), plus
optional `versions.txt` (client versions) and `drivers.txt` (one line per
driver run: "name target exit_code seconds").

A cell passes when both runs finished the scenario and their results are
equal; it is n/a when the client cannot do the feature (both runs say so,
with the reason); anything else — a difference, a scenario that raised, a
result missing on one side (driver crashed or hung) — is a FAIL. Prints the
table and, last, "N passed, M failed"; exits 1 if anything failed.
"""

import datetime
import difflib
import glob
import json
import os
import sys

PASS, FAIL, NA = "pass", "FAIL", "n/a"

# Columns of the main table (scenarios most clients run), in this order;
# other scenarios (tools, ORM) get a table of their own.
CORE = ["connect", "auth_fail", "types_text", "types_binary", "params", "params_dml", "txn",
        "insert_id", "multi_stmt", "call_2_results", "warnings", "errors", "blob_32mb",
        "too_large", "utf8mb4", "latin1", "load_local", "reset_conn", "change_user", "tls",
        "tls_wrong_ca"]
ORDER = ["pymysql", "connector-cext", "connector-pure", "mysqlclient", "sqlalchemy",
         "pdo-emulated", "pdo-native", "mysqli", "mysql2", "mysql", "jdbc", "jdbc-serverps",
         "mariadb-cli", "mariadb-dump", "mariadb-admin", "sysbench"]


def load(results_dir):
    runs = {}  # (client, scenario) -> {target: line}
    order_c, order_s = [], []
    for path in sorted(glob.glob(os.path.join(results_dir, "*.jsonl"))):
        with open(path, encoding="utf-8") as f:
            for n, raw in enumerate(f, 1):
                raw = raw.strip()
                if not raw.startswith("{"):
                    continue  # stray output of a driver; not a result
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError as e:
                    print(f"warning: {path}:{n}: bad JSON ({e})", file=sys.stderr)
                    continue
                c, s = line["client"], line["scenario"]
                if c not in order_c:
                    order_c.append(c)
                if s not in order_s:
                    order_s.append(s)
                runs.setdefault((c, s), {})[line["target"]] = line
    return runs, order_c, order_s


def pretty(v):
    return json.dumps(v, indent=1, sort_keys=True, ensure_ascii=False).splitlines()


def judge(pair):
    """(status, short note, detail lines) for one client × scenario."""
    d, p = pair.get("direct"), pair.get("proxy")
    if d is None or p is None:
        missing = "direct" if d is None else "proxy"
        other = p or d
        return FAIL, f"no {missing} result", [
            f"The {missing} run produced no result for this scenario (its driver "
            "crashed, hung or was killed; see the driver exit codes).",
            f"The {other['target']} run: status {other['status']}",
            *pretty(other.get("result"))[:40]]
    if d["status"] == "na" and p["status"] == "na":
        return NA, d.get("reason", ""), []
    if d["status"] == "error" or p["status"] == "error":
        lines = []
        for side in (d, p):
            if side["status"] == "error":
                lines.append(f"{side['target']} raised: {json.dumps(side['result'], ensure_ascii=False)}")
                lines.extend("    " + x for x in (side.get("reason") or "").splitlines()[-12:])
        if d["status"] == "error" and p["status"] != "error":
            note = "direct run raised (test bug?)"
        elif d["status"] == "error":
            note = "both runs raised (test bug?)"
        else:
            note = "raised through splitrail only"
        return FAIL, note, lines
    if d["status"] != p["status"]:
        return FAIL, f"direct {d['status']}, proxy {p['status']}", [
            f"direct: {d['status']} {d.get('reason', '')}",
            f"proxy: {p['status']} {p.get('reason', '')}"]
    if d.get("result") == p.get("result"):
        return PASS, "", []
    diff = list(difflib.unified_diff(pretty(d.get("result")), pretty(p.get("result")),
                                     "direct", "splitrail", n=3, lineterm=""))
    if len(diff) > 120:
        diff = diff[:120] + [f"... ({len(diff) - 120} more diff lines)"]
    return FAIL, "result differs", diff


def md_escape(s):
    return s.replace("|", "\\|").replace("\n", " ")


def main():
    results_dir, out_md = sys.argv[1], sys.argv[2]
    runs, clients, scenarios = load(results_dir)
    clients = sorted(clients, key=lambda c: ORDER.index(c) if c in ORDER else len(ORDER))
    scenarios = sorted(scenarios, key=lambda s: CORE.index(s) if s in CORE else len(CORE))
    cells = {k: judge(v) for k, v in runs.items()}
    passed = sum(1 for s, _, _ in cells.values() if s == PASS)
    failed = sum(1 for s, _, _ in cells.values() if s == FAIL)
    na = sum(1 for s, _, _ in cells.values() if s == NA)

    drivers = []
    dpath = os.path.join(results_dir, "drivers.txt")
    if os.path.exists(dpath):
        drivers = [ln.split() for ln in open(dpath, encoding="utf-8") if ln.strip()]
    # A driver that exited non-zero without leaving a per-scenario trace is
    # a failure too (e.g. it died before its first scenario).
    bad_drivers = [d for d in drivers if len(d) >= 3 and d[2] != "0"]
    failed += len(bad_drivers)

    versions = ""
    vpath = os.path.join(results_dir, "versions.txt")
    if os.path.exists(vpath):
        versions = open(vpath, encoding="utf-8").read().strip()

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out = []
    out.append("<!-- GENERATED by proto-tests/clients/run — do not edit by hand. -->")
    out.append("")
    out.append("# Client compatibility")
    out.append("")
    out.append(f"Generated by `proto-tests/clients/run` on {now}. "
               f"**{passed} passed, {failed} failed**, {na} n/a.")
    out.append("")
    out.append("Each cell is one scenario run twice with the same client library: once "
               "through splitrail and once directly against the backend splitrail routes "
               "it to (reads: replica r1; writes and transactions: master m1). It passes "
               "when everything the application sees is identical: values and their "
               "language types, column metadata, affected rows, insert ids, warnings, "
               "error codes, SQLSTATEs and messages. `FAIL` is any difference, an "
               "exception or a hang (details below); `n/a` means the client cannot do "
               "it (reason in the notes); `·` means the scenario is not defined for "
               "that client.")
    out.append("")
    def mark(cell):
        return "·" if cell is None else ("**FAIL**" if cell[0] == FAIL else cell[0])

    core = [s for s in CORE if s in scenarios]
    table_clients = [c for c in clients if any((c, s) in cells for s in core)]
    out.append("Run it with `proto-tests/clients/run` (it installs its clients and starts its "
               "own lab and splitrail; see the script's header).")
    out.append("")
    out.append("| client | " + " | ".join(core) + " |")
    out.append("|" + " --- |" * (len(core) + 1))
    for c in table_clients:
        out.append("| " + " | ".join([c] + [mark(cells.get((c, s))) for s in core]) + " |")
    out.append("")
    others = [(c, s) for c in clients for s in scenarios if s not in CORE and (c, s) in cells]
    if others:
        out.append("Tool- and framework-specific scenarios:")
        out.append("")
        out.append("| client | scenario | result |")
        out.append("| --- | --- | --- |")
        for c, s in others:
            out.append(f"| {c} | {s} | {mark(cells[(c, s)])} |")
        out.append("")
    out.append("## Scenarios")
    out.append("")
    out.append(SCENARIO_DOC)
    out.append("")
    out.append("## Failures")
    out.append("")
    if not failed:
        out.append("None.")
    for d in bad_drivers:
        out.append(f"- driver `{d[0]}` ({d[1]}) exited with status {d[2]}")
    for c in clients:
        for s in scenarios:
            cell = cells.get((c, s))
            if cell and cell[0] == FAIL:
                out.append(f"### {c} / {s}: {cell[1]}")
                out.append("")
                out.append("```diff" if cell[2] and cell[2][0].startswith("---") else "```")
                out.extend(cell[2])
                out.append("```")
                out.append("")
    out.append("")
    out.append("## Not applicable")
    out.append("")
    reasons = {}
    for (c, s), cell in cells.items():
        if cell[0] == NA:
            reasons.setdefault(cell[1], []).append(f"{c}/{s}")
    for reason, where in sorted(reasons.items()):
        out.append(f"- {md_escape(reason)}: {', '.join(sorted(where))}")
    if versions:
        out.append("")
        out.append("## Versions")
        out.append("")
        out.append("```")
        out.append(versions)
        out.append("```")
    if drivers:
        out.append("")
        out.append("## Driver runs")
        out.append("")
        out.append("| driver | target | exit | seconds |")
        out.append("| --- | --- | --- | --- |")
        for d in drivers:
            out.append("| " + " | ".join((d + ["", "", "", ""])[:4]) + " |")
    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    with open(out_md, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")

    # Console: a compact table, the failures' notes, the closing line.
    width = max([len(c) for c in clients] + [6])
    for c in clients:
        marks = []
        for s in scenarios:
            cell = cells.get((c, s))
            marks.append("." if cell is None else {PASS: "ok", FAIL: "FAIL", NA: "na"}[cell[0]])
        print(f"{c:<{width}} " + " ".join(f"{s}={m}" for s, m in zip(scenarios, marks) if m != "."))
    for (c, s), cell in sorted(cells.items()):
        if cell[0] == FAIL:
            print(f"FAIL {c} / {s}: {cell[1]}")
    for d in bad_drivers:
        print(f"FAIL driver {d[0]} ({d[1]}) exited with status {d[2]}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


SCENARIO_DOC = """\
| scenario | what the client does (same code for every client of a driver) |
| --- | --- |
| connect | connect with and without a default database; `DATABASE()`, `CURRENT_USER()`, charset variables, `VERSION()`; a qualified table name without a default database |
| auth_fail | wrong password: error class, code, SQLSTATE and message |
| types_text | text protocol `SELECT *` over every column type (INT family incl. unsigned BIGINT max, DECIMAL(10,3), FLOAT, DOUBLE, BIT, zero DATE, DATETIME(6), TIMESTAMP(3), negative TIME, YEAR, CHAR/VARCHAR with emoji, TEXT, VARBINARY/BLOB bytes, JSON, ENUM, SET, a row of NULLs): values, language types, column metadata |
| types_binary | the same through a server-side prepared statement (binary protocol rows) |
| params | `SELECT ?, ?, …` echoing every parameter type: NULL, ints, unsigned BIGINT max, DOUBLE, DECIMAL, utf8mb4 text, bytes, a 1 MB BLOB (via COM_STMT_SEND_LONG_DATA where the client can), DATETIME(6), DATE, negative TIME, boolean |
| params_dml | those parameters INSERTed into typed columns, UPDATEd, read back in a transaction, DELETEd |
| txn | commit and rollback (explicit transactions and `autocommit=0`) visible correctly, also from a fresh connection |
| insert_id | insert id of single and multi-row inserts, `LAST_INSERT_ID()`, inside a transaction, after an explicit id |
| multi_stmt | one COM_QUERY with DDL, DML and two SELECTs; a batch whose second statement fails; the connection stays in sync |
| call_2_results | `CALL` of a procedure returning two result sets (and its trailing OK) |
| warnings | warning counts and `SHOW WARNINGS` after an `INSERT IGNORE` and after a `SELECT` with truncations |
| errors | no such table, syntax, duplicate key, NOT NULL, data too long, unknown column, `SIGNAL` with a custom errno; errors from PREPARE and EXECUTE; code, SQLSTATE, message; the connection stays usable |
| blob_32mb | a 32 MB BLOB inserted and read back (multi-packet command and row) |
| too_large | a 65 MB statement (over `max_allowed_packet`): ERROR 1153 and its sequence id (Node clients only: with the other clients even the direct outcome depends on socket timing) |
| utf8mb4 | emoji and CJK in literals, a fixture and a round trip |
| latin1 | a `latin1` connection charset: server-side conversion of utf8mb4 data, literals, a round trip |
| load_local | `LOAD DATA LOCAL INFILE` (the file is sent by the client) with warnings; a missing file |
| reset_conn | `COM_RESET_CONNECTION` mid-transaction: user variables, session `sql_mode` and temporary tables gone, database kept, connection reusable |
| change_user | `COM_CHANGE_USER` to the same account (session state cleared) and with a wrong password |
| tls | TLS required and the server's certificate verified against the lab's CA (chain and, where the client checks it, the name 127.0.0.1): a read of the fixtures and a utf8mb4 literal, a write in a transaction read back before the commit, a prepared statement where the client has them; whether the client's own socket is TLS where it tells (PyMySQL, Connector/Python, mysql2, the CLI's `status`) and whether the server session is (`Ssl_cipher` set: through splitrail, its own TLS session with the backend). Never the cipher's name: OpenSSL and rustls may agree on different ones |
| tls_wrong_ca | the same TLS options with a CA that did not sign the server's certificate: the connect must fail, with the same error class and code (not the TLS library's message); this also shows the client really does TLS (and verifies) where it does not tell |
| orm_crud | SQLAlchemy ORM: units of work with relationships, a flushed-then-rolled-back insert, update, delete |
| dump, dump_single_txn, dump_xml | `mariadb-dump` of the fixture table and the database's routines (default `LOCK TABLES` mode, `--single-transaction`, `--xml`) |
| dump_tls | `mariadb-dump --single-transaction` over TLS (`--ssl --ssl-ca --ssl-verify-server-cert`: required and verified) |
| admin_ping, admin_status, admin_auth_fail | `mariadb-admin ping`, `status` (counters masked), `ping` with a wrong password |
| admin_tls | `mariadb-admin ping status` over TLS, required and verified |
| sysbench_* | sysbench 1.0 OLTP: prepare, read-write in text (`--db-ps-mode=disable`) and prepared-statement mode (one thread, so no deadlock retries), read-only autocommit reads (go to the replicas) with two threads, the same over TLS (`sysbench_tls`: `--mysql-ssl=on`, whose CA comes from `cacert.pem` in the working directory; sysbench cannot require TLS, so `sysbench_tls_wrong_ca` shows the chain is checked, i.e. TLS is used), cleanup: exit code, errors, reconnects |

splitrail runs with `[tls]` (the lab's certificate, TLS offered, not required) and `[backend_tls] mode = "verify_identity"`: every scenario's backend sessions are TLS, whether the client's connection is or not. Clients connect over plain TCP (TLS explicitly off where the library would otherwise prefer it) except in the `tls*` scenarios and `orm_crud` (SQLAlchemy over PyMySQL, whose default mode upgrades when the server offers TLS).

The `mariadb` CLI row runs its scenarios as SQL scripts and compares the printed output (`--table`, `--column-type-info`, `-vvv`, `--show-warnings`, error lines), with timings masked."""


if __name__ == "__main__":
    sys.exit(main())
