#!/usr/bin/env python3
"""Writes the seed inputs in fuzz/seeds/<target>/ (they are committed; run
this again only to change them). Each is a valid input of its target's
format, so the fuzzer starts from the interesting paths."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

LONG_PASSWORD = 1
FOUND_ROWS = 2
CONNECT_WITH_DB = 8
PROTOCOL_41 = 0x200
SSL = 0x800
TRANSACTIONS = 0x2000
SECURE_CONNECTION = 0x8000
MULTI_STATEMENTS = 0x10000
MULTI_RESULTS = 0x20000
PLUGIN_AUTH = 0x80000
CONNECT_ATTRS = 0x100000
LENENC_DATA = 0x200000
DEPRECATE_EOF = 0x1000000
BASE = PROTOCOL_41 | TRANSACTIONS | SECURE_CONNECTION | MULTI_RESULTS | PLUGIN_AUTH | LENENC_DATA


def packet(seq, payload):
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


def lenenc(b):
    assert len(b) < 251
    return bytes([len(b)]) + b


def response(caps, user, token=b"", db=None, plugin=b"mysql_native_password", attrs=None):
    if db is not None:
        caps |= CONNECT_WITH_DB
    if attrs is not None:
        caps |= CONNECT_ATTRS
    p = struct.pack("<IIB", caps, 16 * 1024 * 1024, 45) + b"\0" * 23
    p += user + b"\0" + lenenc(token)
    if db is not None:
        p += db + b"\0"
    p += plugin + b"\0"
    if attrs is not None:
        kv = b"".join(lenenc(k) + lenenc(v) for k, v in attrs)
        p += lenenc(kv)
    return p


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# handshake_response: what a client sends after the greeting (framed).
hs = "handshake_response"
write(hs, "native_empty_password", packet(1, response(BASE | LONG_PASSWORD, b"root")))
write(hs, "native_with_db_and_attrs", packet(1, response(
    BASE | LONG_PASSWORD | MULTI_STATEMENTS | DEPRECATE_EOF, b"app", bytes(range(1, 21)),
    db=b"sbtest", attrs=[(b"_client_name", b"libmysql"), (b"_os", b"Linux")])))
write(hs, "sha2_fast", packet(1, response(BASE | LONG_PASSWORD, b"app", bytes(range(32)),
                                          plugin=b"caching_sha2_password")))
write(hs, "sha2_full_rsa", packet(1, response(BASE | LONG_PASSWORD, b"hashed", bytes(range(32)),
                                              plugin=b"caching_sha2_password"))
      + packet(3, b"\x02") + packet(5, bytes(16)))
write(hs, "switch_then_native", packet(1, response(BASE, b"root", b"x", plugin=b"sha256_password"))
      + packet(3, b""))
write(hs, "sha2_empty_token_switch", packet(1, response(BASE | FOUND_ROWS, b"root",
                                                        plugin=b"caching_sha2_password"))
      + packet(3, b""))
write(hs, "ssl_request", packet(1, struct.pack("<IIB", BASE | SSL, 1 << 24, 45) + b"\0" * 23))
write(hs, "old_protocol", packet(1, struct.pack("<HI", 0x8085, 0)[:5] + b"root\0"))

# packet_decoder: [chunk, flags, max_lo, max_hi] + stream.
pd = "packet_decoder"
stream = packet(0, b"\x03SELECT 1") + packet(0, b"\x0e") + packet(0, b"\x01")
write(pd, "queries_payloads", bytes([2, 1]) + struct.pack("<H", 1024) + stream)
write(pd, "queries_packets", bytes([0, 0]) + struct.pack("<H", 64) + stream)
write(pd, "oversized_header", bytes([255, 1]) + struct.pack("<H", 16) + b"\xff\xff\xff\x00abc")
write(pd, "truncated", bytes([3, 3]) + struct.pack("<H", 512) + packet(0, b"\x03SELECT 1")[:7])

# stmt_execute: [params u16][backend stmt id u32][flags] + COM_STMT_EXECUTE.
def execute(stmt, params, bound, cursor=0):
    p = b"\x17" + struct.pack("<IBI", stmt, cursor, 1)
    if params:
        p += bytes((len(params) + 7) // 8) + bytes([1 if bound else 0])
        if bound:
            p += b"".join(struct.pack("<H", t) for t, _ in params)
        p += b"".join(v for _, v in params)
    return p


se = "stmt_execute"
two = [(3, struct.pack("<i", 42)), (253, lenenc(b"hello"))]
write(se, "two_params_bound", struct.pack("<HIB", 2, 77, 0) + execute(1, two, True))
write(se, "two_params_unbound_remembered", struct.pack("<HIB", 2, 77, 2) + execute(1, two, False)
      + b"\x03\x00\xfd\x00")
write(se, "no_params_cursor", struct.pack("<HIB", 0, 9, 1) + execute(5, [], False, cursor=1))
write(se, "nine_params", struct.pack("<HIB", 9, 1, 2) + execute(2, [(8, bytes(8))] * 9, False))

# classify: statement text.
cl = "classify"
for i, sql in enumerate([
    b"SELECT c FROM sbtest1 WHERE id=4242",
    b"/* splitrail:replica */ SELECT name, 'it''s' FROM t # x\n WHERE note <> '/* y */'",
    b"INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y') ON DUPLICATE KEY UPDATE b = VALUES(b)",
    b"WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
    b"(WITH a AS (SELECT 1) SELECT * FROM a)",
    b"SET NAMES utf8mb4; SET @x := (SELECT MAX(id) FROM t)",
    b"USE `my``db`",
    b"/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE */",
    b"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
    b"SELECT GET_LOCK('a', 1), @@session.warning_count FOR UPDATE",
    b"SHOW FULL PROCESSLIST",
    b"EXPLAIN FORMAT=JSON SELECT * FROM t1 JOIN t2 USING (id)",
]):
    write(cl, f"sql_{i:02}", sql)
