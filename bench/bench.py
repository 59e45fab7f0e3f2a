#!/usr/bin/env python3
"""One benchmark run: direct vs HAProxy (TCP) vs a bare tokio relay vs splitrail.

Started by bench/run, which installs the tools, builds the binaries and
brings the lab up; this script runs every workload and writes
$BENCH_OUT/results.json (rendered by bench/report.py). It never touches
anything but its own lab (LAB_PORT/LAB_DIR), its own proxies and the
run directory, and it stops every process it starts.
"""

import collections
import fcntl
import json
import os
import platform
import re
import select
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
E = os.environ


def env_list(name, default):
    value = E.get(name, "").strip()
    return [int(x) for x in value.replace(",", " ").split()] if value else default


QUICK = E.get("BENCH_QUICK", "0") not in ("", "0")
TIME = int(E.get("BENCH_TIME") or (3 if QUICK else 10))
THREADS = env_list("BENCH_THREADS", [8] if QUICK else [1, 8, 64])
IDLE_COUNTS = env_list("BENCH_IDLE", [1000, 10000])
BIG_ROWS = int(E.get("BENCH_BIG_ROWS") or 1_000_000)
SETTLE_MAX = float(E.get("BENCH_SETTLE_MAX") or 20)
SETTLE_BUSY_PCT = float(E.get("BENCH_SETTLE_BUSY") or 25)
CARGO_LOCK = E.get("BENCH_CARGO_LOCK", "/tmp/cargo.lock")
PARTS = (E.get("BENCH_PARTS") or "lexer sysbench headline layout big idle").split()
BIG_REPS = int(E.get("BENCH_BIG_REPS") or (1 if QUICK else 3))
TABLES, TABLE_SIZE = 4, 10_000
IDLE_MAX_CONNECTIONS = 12_000  # raised on the lab's nodes for the idle test
POOL_MAX_IDLE = 64  # pool.max_idle_per_node in the generated config

LAB_PORT = int(E.get("LAB_PORT", "36060"))
LAB_DIR = E.get("LAB_DIR", "/tmp/splitrail-bench-lab")
OUT = Path(E.get("BENCH_OUT", "/tmp/splitrail-bench-run"))
SPLITRAIL_BIN = E.get("SPLITRAIL_BIN", str(ROOT / "target/release/splitrail"))
RELAY_BIN = E.get("RELAY_BIN", str(ROOT / "target/release/examples/tcp_relay"))
HAPROXY_BIN = E.get("HAPROXY_BIN", "haproxy")
HAPROXY_NBTHREAD = int(E.get("BENCH_HAPROXY_NBTHREAD") or 2)
LAB = [str(ROOT / "proto-tests/lab")]
NODES = ["m1", "m2", "r1", "r2"]
# Below Linux's default ephemeral range (32768-60999): the proxies are
# restarted for every run, and a port inside that range can meanwhile be
# taken as the local end of some outgoing connection (EADDRINUSE).
PROXY_PORT = int(E.get("BENCH_PORT") or 26070)
HAPROXY_PORT, RELAY_PORT, SPLITRAIL_PORT, ADMIN_PORT = (PROXY_PORT + i for i in range(4))
CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
PATHS = ["direct", "haproxy", "relay", "splitrail"]
# splitrail in both runtime layouts (proxy.threads), for the layout part:
# 0 = tokio's multi-thread runtime (the default), 1 = one current-thread
# runtime.
LAYOUT_PATHS = {"splitrail-multi": 0, "splitrail-current": 1}
LAYOUT_ROUNDS = int(E.get("BENCH_LAYOUT_ROUNDS") or (1 if QUICK else 3))
# The headline comparison (point_select, text, 8 threads; HAProxy,
# the relay and splitrail alternating) and its latency target (1 thread,
# direct and splitrail alternating), for this many rounds: those targets are
# judged on the median of the per-round figures, since one run on this
# machine swings by ±20 % with outside load.
HEADLINE_ROUNDS = int(E.get("BENCH_HEADLINE_ROUNDS") or (1 if QUICK else 5))


def node_port(node):
    return LAB_PORT + NODES.index(node) + 1


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def lab_env():
    return dict(E, LAB_PORT=str(LAB_PORT), LAB_DIR=LAB_DIR)


def lab_sql(node, sql):
    """Runs SQL as the lab's socket admin; returns the rows (header dropped)."""
    p = subprocess.run(LAB + ["sql", node, sql], env=lab_env(), capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{node}: {sql[:120]!r} failed: {p.stderr.strip()[-400:]}")
    out = p.stdout
    return [line.split("\t") for line in out.splitlines()[1:]]


def lab_pids():
    pids = []
    for node in NODES:
        try:
            pids.append(int(Path(LAB_DIR, node, "mariadbd.pid").read_text().strip()))
        except (OSError, ValueError):
            pass
    return pids


def record_pid(pid):
    with open(OUT / "pids", "a") as f:
        f.write(f"{pid}\n")


# ------------------------------------------------------------- /proc ----


def proc_cpu(pid):
    """utime+stime of a live process, in seconds (all threads)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_context_switches(pid):
    """Voluntary + involuntary context switches of all threads of a live
    process (each time a thread sleeps in epoll_wait and is woken again
    counts one: on this kind of load that is most of a proxy's CPU)."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                text = Path(f"/proc/{pid}/task/{tid}/status").read_text()
            except OSError:
                continue  # the thread just ended
            for line in text.splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split(":")[1])
    except OSError:
        pass
    return total


def proc_status(pid):
    """VmRSS, VmHWM (kB), thread count and open fds of a live process."""
    res = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                res[key] = int(value.split()[0])
            elif key == "Threads":
                res[key] = int(value)
        res["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        pass
    return res


def machine_busy():
    """(busy seconds, total seconds) summed over all CPUs, from /proc/stat."""
    vals = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = vals
    busy = user + nice + system + irq + softirq + steal
    return busy / CLK_TCK, (busy + idle + iowait) / CLK_TCK


class Noise:
    """CPU used on the machine by anything but the benchmark's own processes
    (the lab's mariadbd, the proxy, the client), as a % of all cores. Also
    counts kernel softirq time not charged to a process, so it is an upper
    bound on foreign load."""

    def __init__(self, proxy_pid):
        self.pids = lab_pids() + ([proxy_pid] if proxy_pid else [])
        self.ours0 = sum(proc_cpu(p) for p in self.pids)
        self.busy0, self.total0 = machine_busy()

    def finish(self, client_cpu):
        busy1, total1 = machine_busy()
        ours = sum(proc_cpu(p) for p in self.pids) - self.ours0 + client_cpu
        total = total1 - self.total0
        if total <= 0:
            return None, None
        return (
            round(100 * max(0.0, busy1 - self.busy0 - ours) / total, 1),
            round(100 * (busy1 - self.busy0) / total, 1),
        )


def lock_free(path):
    """True if nobody holds the cargo lock (a build would compete for CPU).
    The lock is taken for an instant only, never held."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def settle():
    """Waits (at most SETTLE_MAX s) until no cargo build holds the lock and
    the machine is quiet: under SETTLE_BUSY_PCT % of all cores busy over one
    second, the idle lab included. Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < SETTLE_MAX:
        if lock_free(CARGO_LOCK):
            b0, t_0 = machine_busy()
            time.sleep(1)
            b1, t_1 = machine_busy()
            if t_1 > t_0 and 100 * (b1 - b0) / (t_1 - t_0) < SETTLE_BUSY_PCT:
                break
        else:
            time.sleep(1)
    return round(time.monotonic() - t0, 1)


def run_child(argv, timeout, discard_stdout=False):
    """Runs a client to completion; returns (rc, its output, its CPU seconds).
    With discard_stdout, stdout goes to /dev/null and only stderr is kept."""
    log_path = OUT / "client.out"
    with open(log_path, "wb") as out:
        p = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if discard_stdout else out,
            stderr=out if discard_stdout else subprocess.STDOUT,
        )
        record_pid(p.pid)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.02)
        p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, log_path.read_text(errors="replace"), ru.ru_utime + ru.ru_stime


# ------------------------------------------------------------ proxies ----


def wait_port(port, proc, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"not listening on {port} after {seconds}s")


class Proxy:
    def __init__(self, name, argv, port, env=None):
        self.name, self.argv, self.port, self.env = name, argv, port, env
        self.proc = None

    def start(self, tries=3):
        for attempt in range(tries):
            try:
                return self._start()
            except RuntimeError as e:
                if attempt == tries - 1:
                    raise
                log(f"{self.name} did not start ({e}); retrying")
                time.sleep(2)

    def _start(self):
        logf = open(OUT / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            cwd=OUT,  # splitrail's state file (if any) lands here
            env=self.env,
        )
        logf.close()
        record_pid(self.proc.pid)
        try:
            wait_port(self.port, self.proc, 60)
        except Exception:
            self.stop()
            raise
        return self

    @property
    def pid(self):
        return self.proc.pid

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def status(self):
        return proc_status(self.proc.pid)

    def context_switches(self):
        return proc_context_switches(self.proc.pid)

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def write_configs():
    r1 = f"127.0.0.1:{node_port('r1')}"
    (OUT / "haproxy.cfg").write_text(
        f"""# generated by bench/bench.py: HAProxy in TCP mode in front of r1
global
    maxconn 4000
    nbthread {HAPROXY_NBTHREAD}

defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h

frontend mysql
    bind 127.0.0.1:{HAPROXY_PORT}
    default_backend r1

backend r1
    server r1 {r1}
"""
    )
    (OUT / "splitrail.toml").write_text(splitrail_config())
    for path, threads in LAYOUT_PATHS.items():
        (OUT / f"{path}.toml").write_text(splitrail_config(threads))
    check = subprocess.run(
        [SPLITRAIL_BIN, "check", "-c", str(OUT / "splitrail.toml")], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise RuntimeError(f"generated splitrail.toml rejected:\n{check.stderr}{check.stdout}")


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(str(v))


def splitrail_config(threads=None):
    """proto-tests/lab.toml (kept valid for the tree being measured) with the
    bench lab's ports, the bench's listen ports, a raised client limit, an
    explicit pool limit and no state file; `threads` sets proxy.threads."""
    cfg = tomllib.loads((ROOT / "proto-tests/lab.toml").read_text())
    lab_default = 13300
    for node in cfg.get("nodes", []):
        host, _, port = node["addr"].rpartition(":")
        if lab_default < int(port) <= lab_default + 4:
            node["addr"] = f"{host}:{LAB_PORT + int(port) - lab_default}"
    cfg.setdefault("proxy", {})["listen"] = f"127.0.0.1:{SPLITRAIL_PORT}"
    cfg["proxy"]["max_connections"] = 20_000
    if threads is not None:
        cfg["proxy"]["threads"] = threads
    if "admin" in cfg:
        cfg["admin"]["listen"] = f"127.0.0.1:{ADMIN_PORT}"
    cfg.setdefault("pool", {})["max_idle_per_node"] = POOL_MAX_IDLE
    lines = ["# generated by bench/bench.py from proto-tests/lab.toml"]
    for key, value in cfg.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines += [f"{k} = {toml_value(v)}" for k, v in value.items()]
    for key, value in cfg.items():
        if isinstance(value, list):
            for item in value:
                lines.append(f"\n[[{key}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"


def make_proxy(path):
    if path == "haproxy":
        return Proxy("haproxy", [HAPROXY_BIN, "-db", "-f", str(OUT / "haproxy.cfg")], HAPROXY_PORT)
    if path == "relay":
        argv = [RELAY_BIN, "--listen", f"127.0.0.1:{RELAY_PORT}"]
        return Proxy("relay", argv + ["--backend", f"127.0.0.1:{node_port('r1')}"], RELAY_PORT)
    if path == "splitrail" or path in LAYOUT_PATHS:
        env = dict(E, RUST_LOG=E.get("BENCH_RUST_LOG", "info"))
        conf = OUT / ("splitrail.toml" if path == "splitrail" else f"{path}.toml")
        argv = [SPLITRAIL_BIN, "serve", "-c", str(conf)]
        return Proxy(path, argv, SPLITRAIL_PORT, env)
    return None


def path_port(path):
    return {
        "direct": node_port("r1"),
        "direct-m1": node_port("m1"),
        "haproxy": HAPROXY_PORT,
        "relay": RELAY_PORT,
        "splitrail": SPLITRAIL_PORT,
        **{p: SPLITRAIL_PORT for p in LAYOUT_PATHS},
    }[path]


# ----------------------------------------------------------- sysbench ----


def sysbench_argv(test, port, threads, ps_mode, seconds):
    return [
        "sysbench",
        test,
        "--db-driver=mysql",
        "--mysql-host=127.0.0.1",
        f"--mysql-port={port}",
        "--mysql-user=app",
        "--mysql-password=app",
        "--mysql-db=splitrail_test",
        f"--tables={TABLES}",
        f"--table-size={TABLE_SIZE}",
        f"--threads={threads}",
        f"--time={seconds}",
        "--events=0",
        "--report-interval=0",
        "--histogram=on",
        "--percentile=99",
        f"--db-ps-mode={ps_mode}",
        "run",
    ]


HIST_RE = re.compile(r"^\s*([0-9.]+)\s+\|[* ]*?\s(\d+)\s*$", re.M)


def percentile(hist, q):
    total = sum(c for _, c in hist)
    if not total:
        return None
    need, acc = q * total, 0
    for value, count in hist:
        acc += count
        if acc >= need:
            return value
    return hist[-1][0]


def parse_sysbench(out):
    def num(pattern, cast=float):
        m = re.search(pattern, out)
        return cast(m.group(1)) if m else None

    hist = [(float(v), int(c)) for v, c in HIST_RE.findall(out)]
    return {
        "queries": num(r"queries:\s+(\d+)\s+\(", int),
        "qps": num(r"queries:\s+\d+\s+\(([0-9.]+) per sec"),
        "tps": num(r"transactions:\s+\d+\s+\(([0-9.]+) per sec"),
        "errors": num(r"ignored errors:\s+(\d+)", int),
        "reconnects": num(r"reconnects:\s+(\d+)", int),
        "seconds": num(r"total time:\s+([0-9.]+)s"),
        "p50_ms": percentile(hist, 0.50),
        "p99_ms": percentile(hist, 0.99),
        "sysbench_p99_ms": num(r"99th percentile:\s+([0-9.]+)"),
    }


def run_sysbench(test, path, threads, ps_mode):
    rec = {"kind": "sysbench", "test": test, "path": path, "threads": threads, "ps_mode": ps_mode}
    proxy = make_proxy(path)
    try:
        if proxy:
            proxy.start()
        argv = sysbench_argv(test, path_port(path), threads, ps_mode, TIME)
        rec["command"] = shlex.join(argv)
        rec["settle_s"] = settle()
        noise = Noise(proxy.pid if proxy else None)
        cpu0 = proxy.cpu() if proxy else 0.0
        switches0 = proxy.context_switches() if proxy else 0
        rc, out, client_cpu = run_child(argv, TIME + 120)
        if proxy:
            rec["proxy_cpu_s"] = round(proxy.cpu() - cpu0, 3)
            rec["proxy_context_switches"] = proxy.context_switches() - switches0
            st = proxy.status()
            rec["proxy_hwm_kb"], rec["proxy_rss_kb"] = st.get("VmHWM"), st.get("VmRSS")
        rec["other_cpu_pct"], rec["machine_busy_pct"] = noise.finish(client_cpu)
        rec["client_cpu_s"] = round(client_cpu, 3)
        rec.update(parse_sysbench(out))
        rec["ok"] = rc == 0 and bool(rec.get("queries"))
        if not rec["ok"]:
            rec["error"] = f"sysbench exit {rc}: " + " | ".join(
                line.strip() for line in out.splitlines() if "FATAL" in line or "error" in line.lower()
            )[:600]
        if proxy and rec.get("queries"):
            rec["cpu_s_per_1k"] = round(rec["proxy_cpu_s"] / rec["queries"] * 1000, 5)
            rec["switches_per_query"] = round(rec["proxy_context_switches"] / rec["queries"], 3)
    except Exception as e:  # noqa: BLE001 - a failed run is a result, not the end
        rec["ok"], rec["error"] = False, f"{type(e).__name__}: {e}"
    finally:
        if proxy:
            proxy.stop()
    status = (
        f"{rec.get('qps', 0) or 0:9.0f} qps  p50 {rec.get('p50_ms')} p99 {rec.get('p99_ms')} ms"
        if rec["ok"]
        else f"FAILED: {rec.get('error')}"
    )
    extra = f"  cpu/1kq {rec.get('cpu_s_per_1k')}" if rec.get("cpu_s_per_1k") else ""
    log(f"{test:18} {ps_mode:7} {threads:2}t {path:10} {status}{extra}")
    return rec


def prepare_sysbench():
    log(f"preparing sysbench tables ({TABLES} x {TABLE_SIZE} rows) on m1")
    base = sysbench_argv("oltp_read_write", node_port("m1"), 4, "disable", 1)[:-1]
    subprocess.run(base + ["cleanup"], check=True, capture_output=True)
    subprocess.run(base + ["prepare"], check=True, capture_output=True)


def wait_replicas(timeout=300):
    """Waits until r1, r2 (and m2) have applied everything m1 has logged."""
    pos = lab_sql("m1", "SELECT @@gtid_binlog_pos AS pos")[0][0]
    for node in ("m2", "r1", "r2"):
        got = lab_sql(node, f"SELECT MASTER_GTID_WAIT('{pos}', {timeout}) AS w")[0][0]
        if got != "0":
            raise RuntimeError(f"{node} did not catch up with m1 ({pos}) in {timeout}s")


# ------------------------------------------------------- large result ----

BIG_SQL = "SELECT id, pad FROM big"


def ensure_big_table():
    have = lab_sql("m1", "SELECT COUNT(*) AS n FROM splitrail_test.big") if big_exists() else None
    if have and int(have[0][0]) == BIG_ROWS:
        log(f"table big already holds {BIG_ROWS} rows")
    else:
        log(f"filling table big with {BIG_ROWS} rows (SEQUENCE engine) on m1")
        lab_sql(
            "m1",
            "DROP TABLE IF EXISTS splitrail_test.big;"
            "CREATE TABLE splitrail_test.big (id INT UNSIGNED PRIMARY KEY,"
            " pad CHAR(96) NOT NULL) ENGINE=InnoDB",
        )
        step = 100_000
        for lo in range(1, BIG_ROWS + 1, step):
            hi = min(BIG_ROWS, lo + step - 1)
            lab_sql(
                "m1",
                f"INSERT INTO splitrail_test.big SELECT seq, RPAD(SHA1(seq), 96, '.')"
                f" FROM splitrail_test.seq_{lo}_to_{hi}",
            )
    wait_replicas()
    row = lab_sql(
        "r1",
        "SELECT COUNT(*), SUM(CHAR_LENGTH(id) + CHAR_LENGTH(pad) + 2) FROM splitrail_test.big",
    )[0]
    return int(row[0]), int(row[1])


def big_exists():
    return bool(
        lab_sql(
            "m1",
            "SELECT 1 FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA='splitrail_test' AND TABLE_NAME='big'",
        )
    )


# The pre-lexer micro-benchmark's cases (criterion group/function names in
# benches/classify.rs): the 100-byte SELECT, classified; lexed
# only; classified and routed as a session does per COM_QUERY.
LEXER_CASES = ("classify/select_100b", "lexer/select_100b", "classify_and_route/select_100b")


def run_lexer():
    """Runs the criterion pre-lexer benchmark while holding the cargo lock
    (so no build competes for the cores) and reads its medians (ns)."""
    rec = {"kind": "lexer", "ok": False, "cases": {}}
    rec["settle_wait_s"] = settle()
    argv = [
        "cargo", "bench", "--quiet", "--bench", "classify", "--",
        "--warm-up-time", "1", "--measurement-time", "3", "select_100b",
    ]
    if subprocess.run(["which", "flock"], capture_output=True).returncode == 0:
        argv = ["flock", CARGO_LOCK] + argv
    rec["command"] = shlex.join(argv)
    log(f"pre-lexer benchmark: {rec['command']}")
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        rec["error"] = (done.stderr or done.stdout)[-2000:]
        log(f"pre-lexer benchmark failed: {rec['error'][-300:]}")
        return rec
    target = Path(E.get("CARGO_TARGET_DIR") or ROOT / "target")
    for case in LEXER_CASES:
        estimates = json.loads((target / "criterion" / case / "new" / "estimates.json").read_text())
        rec["cases"][case] = estimates["median"]["point_estimate"]
    rec["ok"] = True
    log("pre-lexer: " + ", ".join(f"{c} {ns:.0f} ns" for c, ns in rec["cases"].items()))
    return rec


def big_argv(port):
    return [
        "mariadb",
        "--no-defaults",
        "--protocol=TCP",
        "-h127.0.0.1",
        f"-P{port}",
        "-uapp",
        "-papp",
        "--quick",
        "-N",
        "-B",
        "splitrail_test",
        "-e",
        BIG_SQL,
    ]


def run_big(path, rows, out_bytes):
    rec = {"kind": "big", "path": path, "rows": rows, "bytes": out_bytes, "reps": BIG_REPS}
    proxy = make_proxy(path)
    try:
        if proxy:
            proxy.start()
            rec["proxy_rss_start_kb"] = proxy.status().get("VmRSS")
        argv = big_argv(path_port(path))
        rec["command"] = shlex.join(argv) + " > /dev/null"
        if not QUICK:  # one untimed pass: page cache and buffer pool warm for every path
            subprocess.run(argv, stdout=subprocess.DEVNULL, check=True, timeout=600)
        rec["settle_s"] = settle()
        cpu0 = proxy.cpu() if proxy else 0.0
        noise = Noise(proxy.pid if proxy else None)
        times, client_cpu = [], 0.0
        for _ in range(BIG_REPS):
            t0 = time.perf_counter()
            rc, out, ccpu = run_child(argv, 600, discard_stdout=True)
            times.append(time.perf_counter() - t0)
            client_cpu += ccpu
            if rc != 0:
                raise RuntimeError(f"mariadb exit {rc}: {out[-300:]}")
        rec["other_cpu_pct"], rec["machine_busy_pct"] = noise.finish(client_cpu)
        rec["times_s"] = [round(t, 3) for t in times]
        rec["seconds"] = round(statistics.median(times), 3)
        rec["mb_per_s"] = round(out_bytes / rec["seconds"] / 1e6, 1)
        if proxy:
            rec["proxy_cpu_s"] = round((proxy.cpu() - cpu0) / BIG_REPS, 3)
            st = proxy.status()
            rec["proxy_hwm_kb"], rec["proxy_rss_kb"] = st.get("VmHWM"), st.get("VmRSS")
            rec["proxy_rss_growth_kb"] = rec["proxy_hwm_kb"] - rec["proxy_rss_start_kb"]
        rec["ok"] = True
    except Exception as e:  # noqa: BLE001
        rec["ok"], rec["error"] = False, f"{type(e).__name__}: {e}"
    finally:
        if proxy:
            proxy.stop()
    log(
        f"big result {path:10} "
        + (
            f"{rec['seconds']} s  {rec['mb_per_s']} MB/s  proxy RSS growth "
            f"{rec.get('proxy_rss_growth_kb')} kB"
            if rec["ok"]
            else f"FAILED: {rec['error']}"
        )
    )
    return rec


# ------------------------------------------------- idle connections ----


def backend_counts():
    counts = {}
    for node in NODES:
        try:
            counts[node] = int(
                lab_sql(
                    node, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='app'"
                )[0][0]
            )
        except Exception as e:  # noqa: BLE001
            counts[node] = f"error: {e}"
    return counts


ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
TS_RE = re.compile(r"^\S+Z\s+")


def log_size(path):
    try:
        return path.stat().st_size
    except OSError:
        return 0


def log_summary(path, since):
    """WARN/ERROR lines a proxy logged since byte offset SINCE, counted by message."""
    counts = collections.Counter()
    with open(path, "rb") as f:
        f.seek(since)
        for raw in f:
            line = TS_RE.sub("", ANSI_RE.sub("", raw.decode(errors="replace"))).strip()
            if line.startswith(("WARN", "ERROR")):
                counts[line[:200]] += 1
    return dict(counts.most_common(10))


def fd_limit(pid):
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_reply(client, timeout):
    """One JSON line from bench/idle.py, or an exception after timeout."""
    ready, _, _ = select.select([client.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"idle client gave no answer within {timeout}s")
    line = client.stdout.readline()
    if not line:
        raise RuntimeError(f"idle client exited ({client.poll()})")
    return json.loads(line)


def run_idle(count, python):
    rec = {"kind": "idle", "path": "splitrail", "clients": count, "pool_max_idle_per_node": POOL_MAX_IDLE}
    proxy = make_proxy("splitrail")
    client = None
    log_start = log_size(OUT / "splitrail.log")
    try:
        proxy.start()
        rec["proxy_fd_limit"] = fd_limit(proxy.pid)
        rec["proxy_rss_start_kb"] = proxy.status().get("VmRSS")
        argv = [python, str(ROOT / "bench/idle.py"), "--port", str(SPLITRAIL_PORT)]
        argv += ["--count", str(count), "--concurrency", "200", "--timeout", "5"]
        rec["command"] = shlex.join(argv)
        client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        record_pid(client.pid)
        rec["open"] = read_reply(client, 900)
        time.sleep(2)  # let connections settle (pool returns, resets)
        rec["idle_status"] = proxy.status()
        rec["backends_idle"] = backend_counts()
        client.stdin.write("check\n")
        client.stdin.flush()
        rec["check"] = read_reply(client, 600)
        time.sleep(1)
        rec["after_check_status"] = proxy.status()
        rec["backends_after_check"] = backend_counts()
        client.stdin.write("close\n")
        client.stdin.flush()
        client.wait(60)
        time.sleep(2)
        rec["backends_after_close"] = backend_counts()
        st = proxy.status()
        rec["proxy_hwm_kb"] = st.get("VmHWM")
        rec["proxy_alive"] = proxy.proc.poll() is None
        rec["ok"] = True
    except Exception as e:  # noqa: BLE001
        rec["ok"], rec["error"] = False, f"{type(e).__name__}: {e}"
    finally:
        if client and client.poll() is None:
            client.kill()
            client.wait()
        if proxy.proc and proxy.proc.poll() is not None:
            rec["proxy_exit"] = proxy.proc.returncode
        proxy.stop()
    rec["proxy_log"] = log_summary(OUT / "splitrail.log", since=log_start)
    log(
        f"idle {count:6} clients: opened {rec.get('open', {}).get('opened')}"
        f" failed {rec.get('open', {}).get('failed')} errors {rec.get('open', {}).get('errors')}"
        f"; served {rec.get('check', {}).get('served')}; RSS {rec.get('idle_status', {}).get('VmRSS')} kB;"
        f" backends {rec.get('backends_idle')}" + (f"; ERROR {rec['error']}" if not rec["ok"] else "")
    )
    return rec


# -------------------------------------------------------------- facts ----


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30).stdout.strip()
    except Exception:  # noqa: BLE001
        return ""


def machine_facts():
    lscpu = sh("lscpu")
    model = re.search(r"Model name:\s*(.+)", lscpu)
    hyper = re.search(r"Hypervisor vendor:\s*(.+)", lscpu)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": sh("nproc"),
        "cpu_model": model.group(1).strip() if model else platform.processor(),
        "hypervisor": hyper.group(1).strip() if hyper else None,
        "mem": sh("free -h | awk '/^Mem:/ {print $2}'"),
        "kernel": platform.release(),
        "os": sh(". /etc/os-release && echo \"$PRETTY_NAME\""),
        "mariadb": lab_sql("r1", "SELECT VERSION() AS v")[0][0],
        "sysbench": sh("sysbench --version"),
        "haproxy": sh(f"{HAPROXY_BIN} -v | head -1"),
        "rustc": sh("rustc -V"),
        "git": sh(f"git -C {ROOT} rev-parse --short HEAD")
        + (" (+ uncommitted changes)" if sh(f"git -C {ROOT} status --porcelain -- src Cargo.toml Cargo.lock") else ""),
        "splitrail_built": time.strftime(
            "%Y-%m-%d %H:%M:%S %Z", time.localtime(os.path.getmtime(SPLITRAIL_BIN))
        ),
        "lscpu": lscpu,
        "free": sh("free -m"),
    }


def interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    results = {
        "settings": {
            "quick": QUICK,
            "time_s": TIME,
            "threads": THREADS,
            "idle_counts": IDLE_COUNTS,
            "big_rows": BIG_ROWS,
            "big_reps": BIG_REPS,
            "tables": TABLES,
            "table_size": TABLE_SIZE,
            "haproxy_nbthread": HAPROXY_NBTHREAD,
            "headline_rounds": HEADLINE_ROUNDS,
            "settle_max_s": SETTLE_MAX,
            "lab_port": LAB_PORT,
            "ports": {"haproxy": HAPROXY_PORT, "relay": RELAY_PORT, "splitrail": SPLITRAIL_PORT},
            "python": sys.executable,
        },
        "runs": [],
    }
    write_configs()
    results["configs"] = {
        "haproxy.cfg": (OUT / "haproxy.cfg").read_text(),
        "splitrail.toml": (OUT / "splitrail.toml").read_text(),
    }
    results["machine"] = machine_facts()
    runs = results["runs"]

    def save():
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        (OUT / "results.json").write_text(json.dumps(results, indent=1))

    t0 = time.monotonic()
    if "lexer" in PARTS:
        runs.append(run_lexer())
        save()
    if "sysbench" in PARTS:
        prepare_sysbench()
        wait_replicas()
        for test in ("oltp_point_select", "oltp_read_only"):
            for ps_mode in ("disable", "auto"):
                for threads in THREADS:
                    for path in PATHS:
                        runs.append(run_sysbench(test, path, threads, ps_mode))
                    save()
        for ps_mode in ("disable", "auto"):
            for path in ("direct-m1", "splitrail"):
                runs.append(run_sysbench("oltp_read_write", path, 8, ps_mode))
            save()

    if "headline" in PARTS:
        if "sysbench" not in PARTS:
            prepare_sysbench()
            wait_replicas()
        for n in range(HEADLINE_ROUNDS):
            for path in ("haproxy", "relay", "splitrail"):
                rec = run_sysbench("oltp_point_select", path, 8, "disable")
                rec["kind"], rec["round"] = "headline", n + 1
                runs.append(rec)
            for path in ("direct", "splitrail"):
                rec = run_sysbench("oltp_point_select", path, 1, "disable")
                rec["kind"], rec["round"] = "latency", n + 1
                runs.append(rec)
            save()

    if "layout" in PARTS:
        if "sysbench" not in PARTS and "headline" not in PARTS:
            prepare_sysbench()
            wait_replicas()
        # Alternating, so both layouts see the same conditions.
        for _ in range(LAYOUT_ROUNDS):
            for path in LAYOUT_PATHS:
                rec = run_sysbench("oltp_point_select", path, 8, "disable")
                rec["kind"] = "layout"
                rec["proxy_threads"] = LAYOUT_PATHS[path]
                runs.append(rec)
            save()

    if "big" in PARTS:
        rows, out_bytes = ensure_big_table()
        for path in PATHS:
            runs.append(run_big(path, rows, out_bytes))
            save()

    if "idle" not in PARTS:
        results["elapsed_s"] = round(time.monotonic() - t0)
        save()
        return

    old_max = {n: lab_sql(n, "SELECT @@max_connections AS m")[0][0] for n in NODES}
    results["settings"]["lab_max_connections"] = old_max
    results["settings"]["idle_max_connections"] = IDLE_MAX_CONNECTIONS
    for n in NODES:
        lab_sql(n, f"SET GLOBAL max_connections = {IDLE_MAX_CONNECTIONS}")
    try:
        for count in IDLE_COUNTS:
            runs.append(run_idle(count, sys.executable))
            save()
    finally:
        for n in NODES:
            try:
                lab_sql(n, f"SET GLOBAL max_connections = {old_max[n]}")
            except Exception:  # noqa: BLE001 - the lab is stopped right after anyway
                pass
    results["elapsed_s"] = round(time.monotonic() - t0)
    save()
    log(f"done in {results['elapsed_s']} s: {OUT / 'results.json'}")


if __name__ == "__main__":
    main()
