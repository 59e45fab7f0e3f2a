#!/usr/bin/env python3
"""Mostly-idle client connections for bench/run.

Opens COUNT MySQL connections to 127.0.0.1:PORT (user app/app, database
splitrail_test), runs exactly one `SELECT 1` on each, and keeps them open and
idle. It speaks the protocol itself (handshake, mysql_native_password,
COM_QUERY) with asyncio, so thousands of connections cost one process and no
client library adds statements of its own (PyMySQL, for instance, always
sends SET NAMES, which a splitrail session must run on the writer).

Driven over stdin/stdout, one JSON object per line:
  after start        -> {"phase": "open", "opened": N, "failed": N, "errors": {...}, "seconds": S}
  stdin "check"      -> {"phase": "check", "served": N, "failed": N, "errors": {...}, "seconds": S}
                        (one more SELECT 1 on every open connection)
  stdin "close"/EOF  -> closes everything and exits
"""

import argparse
import asyncio
import collections
import hashlib
import json
import resource
import struct
import sys
import time

CLIENT_LONG_PASSWORD = 0x1
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CAPS = (
    CLIENT_LONG_PASSWORD
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
)
UTF8MB4_GENERAL_CI = 45


class MySqlError(Exception):
    pass


def native_password(password: bytes, salt: bytes) -> bytes:
    if not password:
        return b""
    h1 = hashlib.sha1(password).digest()
    h2 = hashlib.sha1(h1).digest()
    h3 = hashlib.sha1(salt + h2).digest()
    return bytes(a ^ b for a, b in zip(h1, h3))


class Conn:
    def __init__(self, reader, writer):
        self.r = reader
        self.w = writer
        self.seq = 0

    async def read_packet(self) -> bytes:
        head = await self.r.readexactly(4)
        length = head[0] | head[1] << 8 | head[2] << 16
        self.seq = (head[3] + 1) & 0xFF
        return await self.r.readexactly(length)

    def write_packet(self, payload: bytes):
        self.w.write(struct.pack("<I", len(payload))[:3] + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) & 0xFF

    @staticmethod
    def check_err(pkt: bytes):
        if pkt[:1] == b"\xff":
            code = struct.unpack("<H", pkt[1:3])[0]
            msg = pkt[9:] if pkt[3:4] == b"#" else pkt[3:]
            raise MySqlError(f"ERROR {code}: {msg.decode(errors='replace')[:80]}")

    async def login(self, user: str, password: str, db: str):
        pkt = await self.read_packet()
        self.check_err(pkt)
        if pkt[0] != 10:
            raise MySqlError(f"unexpected protocol version {pkt[0]}")
        end = pkt.index(b"\0", 1)
        pos = end + 1 + 4  # server version, connection id
        salt = pkt[pos : pos + 8]
        pos += 8 + 1 + 2 + 1 + 2 + 2  # filler, caps low, charset, status, caps high
        auth_len = pkt[pos]
        pos += 1 + 10
        salt += pkt[pos : pos + max(13, auth_len - 8) - 1]
        scramble = native_password(password.encode(), salt)
        resp = struct.pack("<IIB", CAPS, 1 << 24, UTF8MB4_GENERAL_CI) + b"\0" * 23
        resp += user.encode() + b"\0" + bytes([len(scramble)]) + scramble
        resp += db.encode() + b"\0" + b"mysql_native_password\0"
        self.write_packet(resp)
        await self.w.drain()
        while True:
            pkt = await self.read_packet()
            self.check_err(pkt)
            if pkt[:1] == b"\x00":
                return
            if pkt[:1] == b"\xfe":  # auth switch request
                name_end = pkt.index(b"\0", 1)
                plugin = pkt[1:name_end]
                if plugin != b"mysql_native_password":
                    raise MySqlError(f"unsupported auth plugin {plugin!r}")
                new_salt = pkt[name_end + 1 :].rstrip(b"\0")
                self.write_packet(native_password(password.encode(), new_salt))
                await self.w.drain()
                continue
            raise MySqlError(f"unexpected login packet 0x{pkt[0]:02x}")

    async def query(self, sql: str):
        """Runs SQL, reads (and discards) the whole text-protocol response."""
        self.seq = 0
        self.write_packet(b"\x03" + sql.encode())
        await self.w.drain()
        pkt = await self.read_packet()
        self.check_err(pkt)
        if pkt[:1] == b"\x00":
            return
        eofs = 0  # column definitions end with EOF, rows end with EOF
        while eofs < 2:
            pkt = await self.read_packet()
            self.check_err(pkt)
            if pkt[:1] == b"\xfe" and len(pkt) < 9:
                eofs += 1

    def close(self):
        try:
            self.seq = 0
            self.write_packet(b"\x01")  # COM_QUIT
        except Exception:
            pass
        self.w.close()


def short(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
    return text[:120]


async def open_one(args, sem, conns, errors):
    async with sem:
        writer = None
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", args.port), args.timeout
            )
            conn = Conn(reader, writer)
            await asyncio.wait_for(conn.login(args.user, args.password, args.db), args.timeout)
            await asyncio.wait_for(conn.query("SELECT 1"), args.timeout)
            conns.append(conn)
        except Exception as e:  # noqa: BLE001 - every failure is counted and reported
            errors[short(e)] += 1
            if writer is not None:
                writer.close()


async def check_one(conn, sem, errors, timeout) -> bool:
    async with sem:
        try:
            await asyncio.wait_for(conn.query("SELECT 1"), timeout)
            return True
        except Exception as e:  # noqa: BLE001
            errors[short(e)] += 1
            return False


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--user", default="app")
    ap.add_argument("--password", default="app")
    ap.add_argument("--db", default="splitrail_test")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    conns, errors = [], collections.Counter()
    sem = asyncio.Semaphore(args.concurrency)
    t0 = time.monotonic()
    await asyncio.gather(*(open_one(args, sem, conns, errors) for _ in range(args.count)))
    emit(
        {
            "phase": "open",
            "opened": len(conns),
            "failed": args.count - len(conns),
            "errors": dict(errors),
            "seconds": round(time.monotonic() - t0, 2),
        }
    )

    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        cmd = line.strip()
        if cmd == "check":
            errors = collections.Counter()
            t0 = time.monotonic()
            ok = await asyncio.gather(*(check_one(c, sem, errors, args.timeout) for c in conns))
            emit(
                {
                    "phase": "check",
                    "served": sum(ok),
                    "failed": len(ok) - sum(ok),
                    "errors": dict(errors),
                    "seconds": round(time.monotonic() - t0, 2),
                }
            )
        else:  # "close" or EOF
            break
    for c in conns:
        c.close()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    asyncio.run(main())
