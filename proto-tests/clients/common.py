"""Shared plumbing for the Python drivers: where to connect, how a
scenario's result is written, how client values become comparable JSON.

Every driver (whatever its language) prints one JSON object per line:

    {"client": "pymysql", "scenario": "types_text", "target": "proxy",
     "status": "ok" | "na" | "error", "result": <any JSON>,
     "reason": "...", "secs": 0.12}

`result` is what the application sees (values with their language types,
column metadata, affected rows, warnings, error codes); aggregate.py
compares the `direct` and `proxy` results of the same client and scenario.
"""

import datetime
import decimal
import hashlib
import json
import os
import signal
import sys
import time
import traceback

HOST = os.environ.get("CLIENTS_HOST", "127.0.0.1")
USER = os.environ.get("CLIENTS_USER", "app")
PASSWORD = os.environ.get("CLIENTS_PASSWORD", "app")
DB = os.environ.get("CLIENTS_DB", "splitrail_test")
# Prefix of every table/procedure this run creates (unique per run).
RUN = os.environ.get("CLIENTS_RUN", "cdev")
PORTS = {
    "proxy": int(os.environ.get("CLIENTS_PROXY_PORT", "25033")),
    "m1": int(os.environ.get("CLIENTS_M1_PORT", "25061")),
    "r1": int(os.environ.get("CLIENTS_R1_PORT", "25063")),
}
# A scenario that takes longer than this is a hang, reported as an error.
SCENARIO_TIMEOUT = int(os.environ.get("CLIENTS_SCENARIO_TIMEOUT", "120"))
BLOB_MB = int(os.environ.get("CLIENTS_BLOB_MB", "32"))
ONLY = os.environ.get("CLIENTS_ONLY", "")  # comma list of client or scenario names
# The lab's CA (it signed the certificate every MariaDB node and splitrail
# serve) and an unrelated CA, for the tls and tls_wrong_ca scenarios.
TLS_CA = os.environ.get("CLIENTS_TLS_CA", "/tmp/splitrail-clients-lab/tls/ca.pem")
TLS_OTHER_CA = os.environ.get("CLIENTS_TLS_OTHER_CA", "/tmp/splitrail-clients-lab/tls/other-ca.pem")


def port_for(target, route):
    """Direct runs go to the backend splitrail routes the scenario to:
    reads to replica r1, writes and transactions to master m1."""
    if target == "proxy":
        return PORTS["proxy"]
    return PORTS["r1"] if route == "read" else PORTS["m1"]


class NA(Exception):
    """The client cannot do this feature (the message says why)."""


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout(f"scenario did not finish within {SCENARIO_TIMEOUT}s (hang?)")


def wanted(client, scenario):
    if not ONLY:
        return True
    names = set(ONLY.split(","))
    return client in names or scenario in names


def emit(client, scenario, target, status, result=None, reason=None, secs=0.0):
    line = {"client": client, "scenario": scenario, "target": target,
            "status": status, "result": result, "secs": round(secs, 3)}
    if reason:
        line["reason"] = reason
    sys.stdout.write(json.dumps(line, sort_keys=True, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o):
    # Metadata may hold bytes (e.g. raw column names); keep them comparable.
    if isinstance(o, (bytes, bytearray, memoryview)):
        return {"bytes": bytes(o).hex()}
    return repr(o)


def run_scenario(client, scenario, target, fn):
    """Runs fn() with a hang guard and emits its result line."""
    if not wanted(client, scenario):
        return
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SCENARIO_TIMEOUT)
    t0 = time.monotonic()
    try:
        result = fn()
        signal.alarm(0)
        emit(client, scenario, target, "ok", result, secs=time.monotonic() - t0)
    except NA as e:
        signal.alarm(0)
        emit(client, scenario, target, "na", reason=str(e), secs=time.monotonic() - t0)
    except BaseException as e:  # noqa: BLE001 - any escape is a scenario error
        signal.alarm(0)
        tb = traceback.format_exc(limit=6)
        emit(client, scenario, target, "error",
             {"exception": type(e).__name__, "message": str(e)[:500]},
             reason=tb[-1500:], secs=time.monotonic() - t0)
        if isinstance(e, KeyboardInterrupt):
            raise


def digest(b):
    return hashlib.sha256(b).hexdigest()[:16]


def enc(v):
    """A client value as [python type name, comparable JSON form]. Long
    strings and byte strings are shortened to length + hash so results stay
    small; the hash still catches a single wrong byte."""
    t = type(v).__name__
    if v is None:
        return [t, None]
    if isinstance(v, bool):
        return [t, v]
    if isinstance(v, int):
        return [t, str(v)]
    if isinstance(v, float):
        return [t, repr(v)]
    if isinstance(v, decimal.Decimal):
        return [t, str(v)]
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        if len(b) > 64:
            return [t, {"len": len(b), "sha256": digest(b)}]
        return [t, b.hex()]
    if isinstance(v, str):
        if len(v) > 200:
            return [t, {"len": len(v), "sha256": digest(v.encode("utf-8", "surrogatepass"))}]
        return [t, v]
    if isinstance(v, (datetime.datetime, datetime.date, datetime.time)):
        return [t, v.isoformat()]
    if isinstance(v, datetime.timedelta):
        return [t, [v.days, v.seconds, v.microseconds]]
    if isinstance(v, (set, frozenset)):
        return [t, sorted(enc(x)[1] for x in v)]
    if isinstance(v, (list, tuple)):
        return [t, [enc(x) for x in v]]
    if isinstance(v, dict):
        return [t, {str(k): enc(x) for k, x in v.items()}]
    return [t, repr(v)]


def enc_rows(rows):
    return [[enc(v) for v in row] for row in (rows or [])]


def blob_of(n):
    """n bytes covering every byte value (0x00 and 0xff included), not
    compressible into a repeating pattern of one byte."""
    unit = bytes(range(256)) + bytes(reversed(range(256)))
    return (unit * (n // len(unit) + 1))[:n]
