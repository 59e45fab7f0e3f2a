#!/usr/bin/env python3
"""Python client libraries against splitrail or the lab directly.

    py_clients.py --target proxy|direct

Clients: PyMySQL, mysql-connector-python (C extension and pure Python),
mysqlclient (MySQLdb) and a SQLAlchemy ORM session. Every scenario is one
function run once per client; the adapters below hide only what differs
between the DB-API drivers (connect options, warnings, error attributes,
prepared cursors), so the scenarios are literally the same code for all.
Results are JSON lines (see common.py).
"""

import argparse
import datetime
import decimal
import hashlib
import io
import os
import tempfile

from common import (BLOB_MB, DB, HOST, NA, PASSWORD, RUN, TLS_CA, TLS_OTHER_CA, USER, blob_of,
                    digest, enc, enc_rows, port_for, run_scenario)


# ------------------------------------------------------------- adapters ----

class Adapter:
    """What a scenario needs from a DB-API driver."""
    name = "?"
    # Does cursor(prepared=True) use the binary protocol (COM_STMT_*)?
    server_ps = False
    long_data = False      # can send a parameter with COM_STMT_SEND_LONG_DATA
    reset = False          # exposes COM_RESET_CONNECTION
    # PyMySQL sends bytes as X'hex': a 32 MB value would need a 64 MB
    # statement (over max_allowed_packet), so it goes in two halves.
    blob_parts = 1
    # Placeholder for a bytes parameter in a SELECT list (mysqlclient sends
    # bytes as a plain string literal, so the result would be text).
    bytes_ph = "%s"
    change_user = False    # exposes COM_CHANGE_USER

    def __init__(self, target):
        self.target = target

    def port(self, route):
        return port_for(self.target, route)

    def connect(self, route, db=True, password=PASSWORD, charset="utf8mb4",
                multi=False, local_infile=False, timeout=90, tls=None):
        """tls=None: plain TCP (TLS explicitly off). tls=CA path: TLS
        required, the server's certificate verified against that CA and
        its name (127.0.0.1)."""
        raise NotImplementedError

    def encrypted(self, conn):
        """Whether the client's own connection is TLS, as the client tells
        it (None where it does not expose it)."""
        return None

    def thread_id(self, conn):
        """The connection id the server's handshake gave the client."""
        return conn.thread_id()

    def connect_compressed(self, route):
        """A connection using the compressed protocol."""
        raise NA(f"{self.name} has no compressed protocol")

    def err_kind(self, e):
        """The error class and code of a failed connect, not its message
        (a TLS library's text may name what differs between servers)."""
        return {"class": type(e).__name__,
                "code": e.args[0] if e.args and isinstance(e.args[0], int) else None}

    def cursor(self, conn, prepared=False):
        if prepared:
            raise NA(f"{self.name} has no server-side prepared statements "
                     "(parameters are interpolated client-side)")
        return conn.cursor()

    def begin(self, conn):
        conn.begin()

    def set_autocommit(self, conn, on):
        conn.autocommit(on)

    def warning_count(self, conn, cur):
        raise NotImplementedError

    def err(self, e):
        """The client-visible parts of a server error."""
        return {"class": type(e).__name__, "args": [str(a) for a in e.args]}

    def meta(self, cur):
        """Column metadata as the client exposes it."""
        return [list(d) for d in (cur.description or [])]

    def next_result(self, cur):
        return cur.nextset()

    def fetch_all_sets(self, cur):
        """Every result set of the last execute, with per-set metadata."""
        sets = []
        while True:
            if cur.description is not None:
                sets.append({"meta": self.meta(cur), "rows": enc_rows(cur.fetchall())})
            else:
                sets.append({"rowcount": cur.rowcount})
            if not self.next_result(cur):
                break
        return sets


class PyMySQL(Adapter):
    name = "pymysql"
    blob_parts = 2

    def connect(self, route, db=True, password=PASSWORD, charset="utf8mb4",
                multi=False, local_infile=False, timeout=90, tls=None):
        import pymysql
        from pymysql.constants import CLIENT
        # Without ssl options PyMySQL >= 1.2 upgrades whenever the server
        # offers TLS (PREFERRED): the plain scenarios say ssl_disabled.
        tls_kw = (dict(ssl_ca=tls, ssl_verify_cert=True, ssl_verify_identity=True)
                  if tls else dict(ssl_disabled=True))
        return pymysql.connect(
            host=HOST, port=self.port(route), user=USER, password=password,
            database=DB if db else None, charset=charset, autocommit=True,
            client_flag=CLIENT.MULTI_STATEMENTS if multi else 0,
            local_infile=local_infile, connect_timeout=10,
            read_timeout=timeout, write_timeout=timeout, **tls_kw)

    def encrypted(self, conn):
        import ssl
        return isinstance(conn._sock, ssl.SSLSocket) and conn._sock.version() is not None

    def warning_count(self, conn, cur):
        return cur._result.warning_count if cur._result else None

    def meta(self, cur):
        # The raw column definitions (db, table, org names, charset, length,
        # flags, decimals): exactly what splitrail must relay untouched.
        fields = cur._result.fields if cur._result and cur._result.fields else []
        return [list(d) for d in (cur.description or [])] + [
            [f.db, f.table_name, f.org_table, f.name, f.org_name, f.charsetnr,
             f.length, f.type_code, f.flags, f.scale] for f in fields]


class Connector(Adapter):
    """mysql-connector-python; `pure` picks the pure-Python protocol
    implementation instead of the C extension (libmysqlclient)."""
    server_ps = True
    reset = True
    change_user = True

    def __init__(self, target, pure):
        super().__init__(target)
        self.pure = pure
        self.name = "connector-pure" if pure else "connector-cext"
        self.long_data = pure  # the C extension raises NotImplementedError

    def connect(self, route, db=True, password=PASSWORD, charset="utf8mb4",
                multi=False, local_infile=False, timeout=90, tls=None):
        import mysql.connector
        kw = dict(host=HOST, port=self.port(route), user=USER, password=password,
                  charset=charset, autocommit=True, use_pure=self.pure,
                  allow_local_infile=local_infile, connection_timeout=10,
                  read_timeout=timeout, write_timeout=timeout,
                  get_warnings=False)
        if tls:
            kw.update(ssl_ca=tls, ssl_verify_cert=True, ssl_verify_identity=True)
        else:
            kw["ssl_disabled"] = True
        if charset == "utf8mb4":
            kw["collation"] = "utf8mb4_general_ci"
        if db:
            kw["database"] = DB
        conn = mysql.connector.connect(**kw)
        if not self.pure and type(conn).__name__ != "CMySQLConnection":
            raise RuntimeError("C extension not in use: " + type(conn).__name__)
        return conn

    def cursor(self, conn, prepared=False):
        return conn.cursor(prepared=prepared)

    def begin(self, conn):
        conn.start_transaction()

    def set_autocommit(self, conn, on):
        conn.autocommit = on

    def warning_count(self, conn, cur):
        return cur.warning_count

    def err(self, e):
        return {"class": type(e).__name__, "errno": e.errno, "sqlstate": e.sqlstate,
                "msg": e.msg}

    def err_kind(self, e):
        return {"class": type(e).__name__, "code": getattr(e, "errno", None)}

    def encrypted(self, conn):
        if self.pure:
            return conn.is_secure  # set once the socket was wrapped
        return bool(conn._cmysql.get_ssl_cipher())

    def thread_id(self, conn):
        return conn.connection_id

    def connect_compressed(self, route):
        import mysql.connector
        return mysql.connector.connect(
            host=HOST, port=self.port(route), user=USER, password=PASSWORD,
            database=DB, autocommit=True, use_pure=self.pure, compress=True,
            ssl_disabled=True, collation="utf8mb4_general_ci", charset="utf8mb4",
            connection_timeout=10, get_warnings=False)



class MySQLdb(Adapter):
    name = "mysqlclient"
    bytes_ph = "_binary %s"

    def connect(self, route, db=True, password=PASSWORD, charset="utf8mb4",
                multi=False, local_infile=False, timeout=90, tls=None):
        import MySQLdb as m
        from MySQLdb.constants import CLIENT
        kw = dict(host=HOST, port=self.port(route), user=USER, password=password,
                  charset=charset, autocommit=True, connect_timeout=10,
                  read_timeout=timeout, write_timeout=timeout,
                  client_flag=CLIENT.MULTI_STATEMENTS if multi else 0,
                  local_infile=1 if local_infile else 0)
        if tls:
            # Against libmariadb: TLS enforced (a server that does not offer
            # it is refused) and the certificate verified
            # (MYSQL_OPT_SSL_VERIFY_SERVER_CERT).
            kw.update(ssl={"ca": tls}, ssl_mode="VERIFY_IDENTITY")
        else:
            kw["ssl_mode"] = "DISABLED"
        if db:
            kw["database"] = DB
        return m.connect(**kw)

    def begin(self, conn):
        conn.query("START TRANSACTION")

    def warning_count(self, conn, cur):
        return conn.warning_count()

    def connect_compressed(self, route):
        import MySQLdb as m
        return m.connect(host=HOST, port=self.port(route), user=USER, password=PASSWORD,
                         database=DB, charset="utf8mb4", autocommit=True, connect_timeout=10,
                         ssl_mode="DISABLED", compress=1)

    def meta(self, cur):
        return [list(d) for d in (cur.description or [])] + [list(cur.description_flags or [])]


# ------------------------------------------------------------ scenarios ----

T = f"{RUN}_types"


def table(a, scenario):
    """Per client and scenario; the same name in the direct and the proxy
    run (so column metadata compares equal), recreated by each run."""
    return f"{RUN}_{a.name.replace('-', '_')}_{scenario}"


def q(a, conn, sql, params=None, prepared=False):
    """Runs one statement and returns everything the client exposes."""
    cur = a.cursor(conn, prepared)
    try:
        if params is None:
            cur.execute(sql)
        else:
            cur.execute(sql, params)
        out = {"rowcount": cur.rowcount, "warnings": a.warning_count(conn, cur)}
        if cur.description is not None:
            out["meta"] = a.meta(cur)
            out["rows"] = enc_rows(cur.fetchall())
        return out
    finally:
        cur.close()


def error_of_or(a, fn):
    """fn()'s result, or the error it raised."""
    try:
        return fn()
    except NA:
        raise
    except Exception as e:  # noqa: BLE001 - the error is the result
        return {"raised": a.err(e)}


def error_of(a, fn):
    try:
        fn()
    except NA:
        raise
    except Exception as e:  # noqa: BLE001 - the error is the result
        return a.err(e)
    return "no error raised"


def closing(conn):
    class C:
        def __enter__(self):
            return conn

        def __exit__(self, *exc):
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already broken: fine
                pass
    return C()


def s_connect(a):
    out = {}
    with closing(a.connect("read")) as c:
        out["with_db"] = q(a, c, "SELECT DATABASE(), CURRENT_USER(), @@character_set_client, "
                                 "@@collation_connection, VERSION()")
    with closing(a.connect("read", db=False)) as c:
        out["without_db"] = q(a, c, "SELECT DATABASE(), CURRENT_USER()")
        out["qualified"] = q(a, c, f"SELECT COUNT(*) FROM {DB}.{T}")
    return out


def s_auth_fail(a):
    return error_of(a, lambda: a.connect("read", password="wrong-password"))


def s_types_text(a):
    with closing(a.connect("read")) as c:
        return q(a, c, f"SELECT * FROM {T} ORDER BY id")


TYPE_COLUMNS = ["c_tinyint", "c_tinyint_u", "c_bool", "c_smallint", "c_mediumint", "c_int",
                "c_int_u", "c_bigint", "c_bigint_u", "c_decimal", "c_float", "c_double", "c_bit",
                "c_date", "c_datetime", "c_timestamp", "c_time", "c_year", "c_char", "c_varchar",
                "c_text", "c_varbinary", "c_blob", "c_json", "c_enum", "c_set"]


def s_types_binary(a):
    """Binary-protocol rows, one column type per statement, so that a
    client that cannot decode one type still shows all the others."""
    if not a.server_ps:
        a.cursor(None, prepared=True)  # raises NA
    out = {}
    c = a.connect("read")
    try:
        out["all"] = error_of_or(a, lambda: q(a, c, f"SELECT * FROM {T} WHERE id >= %s ORDER BY id",
                                              (0,), prepared=True))
        for col in TYPE_COLUMNS:
            if isinstance(out["all"], dict) and "rows" in out["all"]:
                break  # the whole row decoded: no need to look per column
            try:
                out[col] = q(a, c, f"SELECT id, {col} FROM {T} WHERE id >= %s ORDER BY id",
                             (0,), prepared=True)
            except Exception as e:  # noqa: BLE001 - a client decoding bug is data
                out[col] = a.err(e)
                c.close()  # its result is half read: start over
                c = a.connect("read")
    finally:
        c.close()
    return out


NEG_TIME = -datetime.timedelta(hours=838, minutes=59, seconds=59)


def param_values(big):
    return (None, 42, -9223372036854775808, 18446744073709551615, 3.5,
            decimal.Decimal("-1234567.891"), "plain", "é😀 ünï", b"\x00\xff\x10\x00",
            big, datetime.datetime(2024, 2, 29, 23, 59, 59, 123456),
            datetime.date(2024, 1, 2), NEG_TIME, True)


def s_params(a):
    """Every parameter type, echoed by the server: first one per statement
    (the same SQL re-executed with a new type each time, so the statement's
    parameter types are re-bound), then all together."""
    big = blob_of(1024 * 1024)
    prepared = a.server_ps
    vals = list(param_values(big))
    out = {"protocol": "binary" if prepared else "text", "long_data": a.long_data, "each": []}
    c = a.connect("read")
    try:
        ok = []
        for i, v in enumerate(vals):
            if a.long_data and i == 9:
                v = io.BytesIO(big)  # mysql-connector sends IOBase via long data
            ph = a.bytes_ph if isinstance(v, bytes) else "%s"
            try:
                out["each"].append(q(a, c, f"SELECT {ph} AS p", (v,), prepared=prepared))
                ok.append(i)
            except Exception as e:  # noqa: BLE001 - a client encoding bug is data
                out["each"].append({"raised": type(e).__name__})  # SystemError has no errno
                c.close()
                c = a.connect("read")
        vals = [io.BytesIO(big) if (a.long_data and i == 9) else vals[i] for i in ok]
        sql = "SELECT " + ", ".join(a.bytes_ph if isinstance(v, bytes) else "%s" for v in vals)
        out["all"] = error_of_or(a, lambda: q(a, c, sql, tuple(vals), prepared=prepared))
    finally:
        c.close()
    return out


def s_params_dml(a):
    """Parameters stored into typed columns, updated, read back."""
    t = table(a, "pdml")
    big = blob_of(1024 * 1024)
    prepared = a.server_ps
    with closing(a.connect("write")) as c:
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, n INT, b BIGINT, ub BIGINT UNSIGNED,"
                " d DOUBLE, dec_ DECIMAL(10,3), s VARCHAR(20), e VARCHAR(20), vb VARBINARY(8),"
                " bl MEDIUMBLOB, dt DATETIME(6), da DATE, ti TIME, bo TINYINT(1))"
                " DEFAULT CHARSET=utf8mb4")
        vals = list(param_values(big))
        if a.long_data:
            vals[9] = io.BytesIO(big)
        if a.name == "connector-cext":
            # Its C extension cannot bind 2^64-1 (SystemError), see params.
            vals[3] = 9223372036854775807
        out = {}
        out["insert"] = q(a, c, f"INSERT INTO {t} VALUES (1, " + ", ".join(["%s"] * 13) + ")",
                          tuple(vals[1:]), prepared=prepared)
        out["insert_nulls"] = q(a, c, f"INSERT INTO {t} (id, n, bl, dt) VALUES (%s, %s, %s, %s)",
                                (2, None, None, None), prepared=prepared)
        out["update"] = q(a, c, f"UPDATE {t} SET s = %s, ti = %s WHERE id = %s",
                          ("updated", datetime.timedelta(seconds=-1, microseconds=500000), 1),
                          prepared=prepared)
        a.begin(c)  # a transaction: the read-back runs on the writer too
        out["read"] = q(a, c, f"SELECT * FROM {t} ORDER BY id")
        c.commit()
        out["delete"] = q(a, c, f"DELETE FROM {t} WHERE id = %s", (2,), prepared=prepared)
        q(a, c, f"DROP TABLE {t}")
        return out


def s_txn(a):
    t = table(a, "txn")
    with closing(a.connect("write")) as c:
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, v VARCHAR(20))")
        out = {}
        a.begin(c)
        out["ins1"] = q(a, c, f"INSERT INTO {t} VALUES (1, 'committed')")
        out["in_txn_1"] = q(a, c, f"SELECT * FROM {t} ORDER BY id")
        c.commit()
        a.begin(c)
        q(a, c, f"INSERT INTO {t} VALUES (2, 'rolled back')")
        out["in_txn_2"] = q(a, c, f"SELECT COUNT(*) FROM {t}")
        c.rollback()
        # autocommit off: every statement opens/continues a transaction.
        a.set_autocommit(c, False)
        q(a, c, f"INSERT INTO {t} VALUES (3, 'autocommit=0')")
        out["ac0_before_commit"] = q(a, c, f"SELECT * FROM {t} ORDER BY id")
        c.commit()
        q(a, c, f"INSERT INTO {t} VALUES (4, 'ac0 rolled back')")
        c.rollback()
        a.set_autocommit(c, True)
        a.begin(c)
        out["after"] = q(a, c, f"SELECT * FROM {t} ORDER BY id")
        c.commit()
    # A fresh connection sees exactly the committed rows.
    with closing(a.connect("write")) as c:
        a.begin(c)
        out["fresh_connection"] = q(a, c, f"SELECT * FROM {t} ORDER BY id")
        c.commit()
        q(a, c, f"DROP TABLE {t}")
    return out


def s_insert_id(a):
    t = table(a, "ins")
    with closing(a.connect("write")) as c:
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, v INT)")
        out = {}
        cur = a.cursor(c)
        cur.execute(f"INSERT INTO {t} (v) VALUES (10)")
        out["lastrowid_1"] = cur.lastrowid
        cur.execute(f"INSERT INTO {t} (v) VALUES (20), (30)")
        out["lastrowid_multi"] = cur.lastrowid
        out["rowcount_multi"] = cur.rowcount
        cur.close()
        out["last_insert_id"] = q(a, c, "SELECT LAST_INSERT_ID()")
        a.begin(c)
        q(a, c, f"INSERT INTO {t} (v) VALUES (40)")
        out["in_txn"] = q(a, c, "SELECT LAST_INSERT_ID(), ROW_COUNT()")
        c.commit()
        out["explicit"] = q(a, c, f"INSERT INTO {t} (id, v) VALUES (100, 1)")
        out["after_explicit"] = q(a, c, "SELECT LAST_INSERT_ID()")
        q(a, c, f"DROP TABLE {t}")
        return out


def s_multi_stmt(a):
    t = table(a, "multi")
    with closing(a.connect("write", multi=True)) as c:
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        cur = a.cursor(c)
        cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY); INSERT INTO {t} VALUES (1),(2);"
                    f" SELECT * FROM {t} ORDER BY id; SELECT 'x' AS x, NULL AS n;"
                    f" UPDATE {t} SET id = id + 10")
        out = {"sets": a.fetch_all_sets(cur)}
        cur.close()
        # The connection is in sync afterwards; an error in the middle stops the batch.
        cur = a.cursor(c)
        try:
            cur.execute("SELECT 1; SELECT * FROM no_such_table_xyz; SELECT 3")
            out["error_batch"] = {"first": enc_rows(cur.fetchall())}
            out["error_batch"]["next"] = error_of(a, lambda: a.next_result(cur))
        except Exception as e:  # noqa: BLE001 - some drivers raise at execute
            out["error_batch"] = {"raised": a.err(e)}
        cur.close()
        a.begin(c)
        out["after"] = q(a, c, f"SELECT COUNT(*) FROM {t}")
        c.commit()
        q(a, c, f"DROP TABLE {t}")
        return out


def s_call(a):
    with closing(a.connect("write")) as c:
        cur = a.cursor(c)
        cur.execute(f"CALL {RUN}_two_results(3)")
        out = {"sets": a.fetch_all_sets(cur)}
        cur.close()
        out["after"] = q(a, c, "SELECT 'still in sync' AS s")
        return out


def s_warnings(a):
    t = table(a, "warn")
    with closing(a.connect("write")) as c:
        out = {}
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(3))")
        out["insert_ignore"] = q(a, c, f"INSERT IGNORE INTO {t} VALUES (1, 'toolong'), (1, 'dup')")
        out["show_after_insert"] = q(a, c, "SHOW WARNINGS")
        out["select_cast"] = q(a, c, "SELECT CAST('12abc' AS SIGNED) AS n, 1/0 AS z")
        out["show_after_select"] = q(a, c, "SHOW WARNINGS")
        out["count"] = q(a, c, "SHOW COUNT(*) WARNINGS")
        q(a, c, f"DROP TABLE {t}")
        return out


def s_errors(a):
    t = table(a, "err")
    with closing(a.connect("write")) as c:
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(5) NOT NULL)")
        q(a, c, f"INSERT INTO {t} VALUES (1, 'a')")
        out = {
            "no_table": error_of(a, lambda: q(a, c, "SELECT * FROM no_such_table_xyz")),
            "syntax": error_of(a, lambda: q(a, c, "SELEC 1")),
            "dup_key": error_of(a, lambda: q(a, c, f"INSERT INTO {t} VALUES (1, 'b')")),
            "not_null": error_of(a, lambda: q(a, c, f"INSERT INTO {t} VALUES (2, NULL)")),
            "too_long": error_of(a, lambda: q(a, c, f"INSERT INTO {t} VALUES (3, 'toolong')")),
            "unknown_column": error_of(a, lambda: q(a, c, f"SELECT nope FROM {T}")),
            "signal": error_of(a, lambda: q(a, c, "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = "
                                                  "'custom é', MYSQL_ERRNO = 5001")),
        }
        if a.server_ps:
            out["prepare_error"] = error_of(a, lambda: q(
                a, c, "SELECT * FROM no_such_table_xyz WHERE id = %s", (1,), prepared=True))
            out["execute_error"] = error_of(a, lambda: q(
                a, c, f"INSERT INTO {t} VALUES (%s, %s)", (1, "dup"), prepared=True))
        # Reads of rows this session wrote run in a transaction: outside one,
        # splitrail may send them to a replica that has not caught up yet.
        a.begin(c)
        out["after"] = q(a, c, f"SELECT * FROM {t}")
        c.commit()
        q(a, c, f"DROP TABLE {t}")
        return out


def s_blob_32mb(a):
    t = table(a, "blob")
    big = blob_of(BLOB_MB * 1024 * 1024)
    with closing(a.connect("write")) as c:
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)")
        cur = a.cursor(c)
        n = len(big) // a.blob_parts
        cur.execute(f"INSERT INTO {t} VALUES (1, %s)", (big[:n],))
        out = {"insert_rowcount": cur.rowcount}
        if a.blob_parts > 1:
            cur.execute(f"UPDATE {t} SET b = CONCAT(b, %s) WHERE id = 1", (big[n:],))
        a.begin(c)
        cur.execute(f"SELECT b, LENGTH(b), SHA2(b, 256) = %s FROM {t}",
                    (hashlib.sha256(big).hexdigest(),))
        row = cur.fetchone()
        c.commit()
        cur.close()
        out["read_back"] = {"type": type(row[0]).__name__, "len": len(row[0]),
                            "same_bytes": bytes(row[0]) == big, "sha": digest(bytes(row[0])),
                            "server_len": enc(row[1]), "server_sha_match": enc(row[2])}
        q(a, c, f"DROP TABLE {t}")
        return out


def s_utf8mb4(a):
    t = table(a, "utf8")
    s = "é 😀 中文 ñ \U0001F9D1\u200D\U0001F4BB"
    with closing(a.connect("write")) as c:
        out = {"fixture": q(a, c, f"SELECT c_varchar, CHAR_LENGTH(c_varchar), HEX(c_varchar) "
                                  f"FROM {T} WHERE id = 1"),
               "literal": q(a, c, "SELECT '😀' AS emoji, 'ü' AS u")}
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(50)) DEFAULT CHARSET=utf8mb4")
        q(a, c, f"INSERT INTO {t} VALUES (1, %s)", (s,))
        a.begin(c)
        out["read_back"] = q(a, c, f"SELECT s, HEX(s), s = %s FROM {t}", (s,))
        c.commit()
        q(a, c, f"DROP TABLE {t}")
        return out


def s_latin1(a):
    t = table(a, "latin1")
    with closing(a.connect("write", charset="latin1")) as c:
        out = {"vars": q(a, c, "SELECT @@character_set_client, @@character_set_results, "
                               "@@collation_connection"),
               # Converted by the server: é survives, the emoji becomes '?'.
               "fixture": q(a, c, f"SELECT c_varchar, HEX(c_varchar) FROM {T} WHERE id = 1"),
               "literal": q(a, c, "SELECT 'été' AS s, HEX('été') AS h")}
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4")
        q(a, c, f"INSERT INTO {t} VALUES (1, %s)", ("çà et là",))
        a.begin(c)
        out["read_back"] = q(a, c, f"SELECT s, HEX(s) FROM {t}")
        c.commit()
        q(a, c, f"DROP TABLE {t}")
        return out


def s_load_local(a):
    t = table(a, "load")
    # Same path in both runs: the error message of a missing file names it.
    path = os.path.join(tempfile.gettempdir(), f"{t}.tsv")
    with open(path, "wb") as f:
        f.write("1\tfirst\n2\tsécond 😀\n3\t\\N\n4\ttoo many\textra\n".encode())
    try:
        with closing(a.connect("write", local_infile=True)) as c:
            q(a, c, f"DROP TABLE IF EXISTS {t}")
            q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(20)) DEFAULT CHARSET=utf8mb4")
            out = {"load": q(a, c, f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {t} "
                                   "CHARACTER SET utf8mb4")}
            out["warnings"] = q(a, c, "SHOW WARNINGS")
            # A missing file on its own short-timeout connection: some
            # clients leave the protocol out of step here, and what matters is
            # that splitrail answers the next command as the server does.
            with closing(a.connect("write", local_infile=True, timeout=10)) as c2:
                out["missing_file"] = error_of(a, lambda: q(
                    a, c2, f"LOAD DATA LOCAL INFILE '{path}.missing' INTO TABLE {t}"))
                out["next_command"] = error_of_or(a, lambda: q(a, c2, "SELECT 'next' AS n"))
            a.begin(c)
            out["read_back"] = q(a, c, f"SELECT * FROM {t} ORDER BY id")
            c.commit()
            q(a, c, f"DROP TABLE {t}")
            return out
    finally:
        os.unlink(path)


def s_reset_conn(a):
    if not a.reset:
        raise NA(f"{a.name} has no API for COM_RESET_CONNECTION")
    with closing(a.connect("write")) as c:
        out = {}
        q(a, c, "SET @v = 42")
        out["var_before"] = q(a, c, "SELECT @v")
        q(a, c, "SET SESSION sql_mode = 'ANSI_QUOTES'")
        q(a, c, "CREATE TEMPORARY TABLE tmp_reset (id INT)")
        a.begin(c)
        q(a, c, "INSERT INTO tmp_reset VALUES (1)")
        c.cmd_reset_connection()  # mid-transaction, like a pool would
        out["var_after"] = q(a, c, "SELECT @v, @@sql_mode = @@GLOBAL.sql_mode AS mode_reset")
        out["temp_gone"] = error_of(a, lambda: q(a, c, "SELECT * FROM tmp_reset"))
        out["reuse"] = q(a, c, f"SELECT COUNT(*) FROM {T}")
        out["db_kept"] = q(a, c, "SELECT DATABASE()")
        return out


def s_change_user(a):
    if not a.change_user:
        raise NA(f"{a.name} has no API for COM_CHANGE_USER")
    with closing(a.connect("write")) as c:
        out = {}
        q(a, c, "SET @v = 7")
        c.cmd_change_user(username=USER, password=PASSWORD, database=DB)
        out["after"] = q(a, c, "SELECT @v, CURRENT_USER(), DATABASE()")
        out["reuse"] = q(a, c, f"SELECT COUNT(*) FROM {T}")
        out["wrong_password"] = error_of(
            a, lambda: c.cmd_change_user(username=USER, password="nope", database=DB))
        return out


def s_tls(a):
    """TLS required and the server's certificate verified against the lab's
    CA: a read, a write in a transaction, a prepared statement (where the
    client has them). `*_client_tls` is what the client says of its own
    socket (None: it does not tell); `*_session_tls` is the server
    session's Ssl_cipher being set (through splitrail, that is its own TLS
    session with the backend)."""
    t = table(a, "tls")
    ssl_on = ("SELECT VARIABLE_VALUE <> '' AS tls FROM information_schema.SESSION_STATUS "
              "WHERE VARIABLE_NAME = 'SSL_CIPHER'")
    out = {}
    with closing(a.connect("read", tls=TLS_CA)) as c:
        out["read_client_tls"] = a.encrypted(c)
        out["read"] = q(a, c, f"SELECT id, c_varchar, c_decimal, c_json FROM {T} ORDER BY id")
        out["read_literal"] = q(a, c, "SELECT 'TLS ✓ é 😀' AS s, CURRENT_USER() AS u")
        out["read_session_tls"] = q(a, c, ssl_on)
    with closing(a.connect("write", tls=TLS_CA)) as c:
        out["write_client_tls"] = a.encrypted(c)
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(40)) DEFAULT CHARSET=utf8mb4")
        a.begin(c)
        out["insert"] = q(a, c, f"INSERT INTO {t} VALUES (%s, %s), (%s, %s)",
                          (1, "over TLS 😀", 2, "deux"))
        out["in_txn"] = q(a, c, f"SELECT * FROM {t} ORDER BY id")
        out["write_session_tls"] = q(a, c, ssl_on)
        c.commit()
        if a.server_ps:
            out["prepared"] = q(a, c, f"SELECT s, %s FROM {t} WHERE id = %s", ("é", 1),
                                prepared=True)
        a.begin(c)
        out["after_commit"] = q(a, c, f"SELECT COUNT(*) FROM {t}")
        c.commit()
        q(a, c, f"DROP TABLE {t}")
    return out


def s_tls_wrong_ca(a):
    """TLS required, verified against a CA that did not sign the server's
    certificate: the connect must fail (the same way on both targets)."""
    try:
        c = a.connect("read", tls=TLS_OTHER_CA)
    except NA:
        raise
    except Exception as e:  # noqa: BLE001 - the failure is the result
        return {"failed": True, **a.err_kind(e)}
    c.close()
    return {"failed": False}


def s_connection_id(a):
    """The id the handshake gave is what CONNECTION_ID() returns (through
    splitrail: its own session id, never a backend's), and a KILL QUERY of
    it from another connection leaves it usable."""
    with closing(a.connect("write")) as c, closing(a.connect("write")) as killer:
        out = {}
        tid = a.thread_id(c)
        row = q(a, c, "SELECT CONNECTION_ID() AS id")["rows"]
        out["connection_id_is_thread_id"] = row == enc_rows([(tid,)])
        out["kill_query"] = q(a, killer, f"KILL QUERY {tid}")["rowcount"]
        out["still_usable"] = q(a, c, f"SELECT COUNT(*) FROM {T}")
        out["kill_unknown"] = error_of(a, lambda: q(a, killer, "KILL 4000000000"))
        return out


def s_executemany(a):
    """A batch insert the way each driver sends it (rewritten into one
    multi-row INSERT, or one statement per row), then read back."""
    t = table(a, "batch")
    with closing(a.connect("write")) as c:
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(20))")
        cur = a.cursor(c)
        try:
            cur.executemany(f"INSERT INTO {t} (id, s) VALUES (%s, %s)",
                            [(i, f"row {i}") for i in range(300)])
            out = {"rowcount": cur.rowcount}
        finally:
            cur.close()
        out["read_back"] = q(a, c, f"SELECT COUNT(*), SUM(id), MAX(s) FROM {t}")
        q(a, c, f"DROP TABLE {t}")
        return out


def s_compressed(a):
    """The compressed protocol: a wide result, a write and a read back."""
    t = table(a, "zip")
    with closing(a.connect_compressed("write")) as c:
        out = {}
        out["wide"] = q(a, c, "SELECT seq, REPEAT('lorem ipsum ', 1 + seq % 5) AS s "
                              "FROM seq_1_to_5000")
        q(a, c, f"DROP TABLE IF EXISTS {t}")
        q(a, c, f"CREATE TABLE {t} (id INT PRIMARY KEY, t MEDIUMTEXT)")
        q(a, c, f"INSERT INTO {t} VALUES (%s, %s)", (1, "z" * 100_000))
        out["read_back"] = q(a, c, f"SELECT id, LENGTH(t) FROM {t}")
        q(a, c, f"DROP TABLE {t}")
        return out


SCENARIOS = [
    ("connect", s_connect), ("auth_fail", s_auth_fail), ("types_text", s_types_text),
    ("types_binary", s_types_binary), ("params", s_params), ("params_dml", s_params_dml),
    ("txn", s_txn), ("insert_id", s_insert_id), ("multi_stmt", s_multi_stmt),
    ("call_2_results", s_call), ("warnings", s_warnings), ("errors", s_errors),
    ("blob_32mb", s_blob_32mb), ("utf8mb4", s_utf8mb4), ("latin1", s_latin1),
    ("load_local", s_load_local), ("reset_conn", s_reset_conn),
    ("change_user", s_change_user), ("tls", s_tls), ("tls_wrong_ca", s_tls_wrong_ca),
    ("connection_id", s_connection_id), ("executemany", s_executemany),
    ("compressed", s_compressed),
]


# ----------------------------------------------------------- SQLAlchemy ----

def sqlalchemy_orm(target):
    """An ORM session doing CRUD in transactions (PyMySQL dialect), the way
    a web app does: one unit of work per commit, a rollback, relationships."""
    from sqlalchemy import ForeignKey, Numeric, String, create_engine, func, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

    prefix = f"{RUN}_sa"

    class Base(DeclarativeBase):
        pass

    class Author(Base):
        __tablename__ = f"{prefix}_author"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(String(50))
        books: Mapped[list["Book"]] = relationship(back_populates="author",
                                                   cascade="all, delete-orphan",
                                                   order_by="Book.id")

    class Book(Base):
        __tablename__ = f"{prefix}_book"
        id: Mapped[int] = mapped_column(primary_key=True)
        title: Mapped[str] = mapped_column(String(100))
        price: Mapped[decimal.Decimal] = mapped_column(Numeric(8, 2))
        author_id: Mapped[int] = mapped_column(ForeignKey(f"{prefix}_author.id"))
        author: Mapped[Author] = relationship(back_populates="books")

    url = (f"mysql+pymysql://{USER}:{PASSWORD}@{HOST}:{port_for(target, 'write')}/{DB}"
           "?charset=utf8mb4")
    engine = create_engine(url, pool_size=2)
    out = {}
    try:
        Base.metadata.drop_all(engine)
        Base.metadata.create_all(engine)
        with Session(engine) as s:
            a1 = Author(name="Ünïcode 😀", books=[
                Book(title="One", price=decimal.Decimal("10.50")),
                Book(title="Two", price=decimal.Decimal("0.99"))])
            a2 = Author(name="Plain")
            s.add_all([a1, a2])
            s.commit()
            out["ids"] = [a1.id, a2.id, [b.id for b in a1.books]]
        with Session(engine) as s:
            a = s.scalars(select(Author).where(Author.name == "Plain")).one()
            a.books.append(Book(title="Three", price=decimal.Decimal("3.00")))
            s.get(Author, out["ids"][0]).name = "Renamed"
            s.commit()
        with Session(engine) as s:  # rolled back unit of work
            s.add(Author(name="Ghost"))
            s.flush()
            out["ghost_visible_in_txn"] = s.scalar(select(func.count()).select_from(Author))
            s.rollback()
        with Session(engine) as s:
            b = s.scalars(select(Book).where(Book.title == "Two")).one()
            s.delete(b)
            s.commit()
        with Session(engine) as s, s.begin():
            rows = s.execute(select(Author.name, Book.title, Book.price)
                             .join(Book).order_by(Book.id)).all()
            out["final"] = [[enc(x) for x in r] for r in rows]
            out["authors"] = s.scalar(select(func.count()).select_from(Author))
        Base.metadata.drop_all(engine)
    finally:
        engine.dispose()
    return out


# ----------------------------------------------------------------- main ----

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", choices=["proxy", "direct"], required=True)
    args = ap.parse_args()
    adapters = [PyMySQL(args.target), Connector(args.target, pure=False),
                Connector(args.target, pure=True), MySQLdb(args.target)]
    for a in adapters:
        for name, fn in SCENARIOS:
            run_scenario(a.name, name, args.target, lambda fn=fn, a=a: fn(a))
    run_scenario("sqlalchemy", "orm_crud", args.target, lambda: sqlalchemy_orm(args.target))


if __name__ == "__main__":
    main()
