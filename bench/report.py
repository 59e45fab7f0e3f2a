#!/usr/bin/env python3
"""Renders bench/bench.py's results.json as Markdown and a PNG chart.

usage: bench/report.py RESULTS.json OUT.md OUT.png
"""

import json
import os
import re
import statistics
import sys
from pathlib import Path

PATHS = ["direct", "haproxy", "relay", "splitrail"]
LABEL = {
    "direct": "direct (r1)",
    "direct-m1": "direct (m1)",
    "haproxy": "HAProxy TCP",
    "relay": "tokio relay",
    "splitrail": "splitrail",
}
COLOR = {
    "direct": "#4c72b0",
    "direct-m1": "#4c72b0",
    "haproxy": "#dd8452",
    "relay": "#55a868",
    "splitrail": "#c44e52",
}
TEST_SHORT = {
    "oltp_point_select": "point_select",
    "oltp_read_only": "read_only",
    "oltp_read_write": "read_write",
}
MODE = {"disable": "text", "auto": "prepared"}


def fmt(v, digits=0, none="–"):
    if v is None:
        return none
    return f"{v:,.{digits}f}"


def ratio(a, b, digits=2):
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:.{digits}f}"


def mb(kb):
    return None if kb is None else kb / 1024


class Results:
    def __init__(self, data):
        self.data = data
        self.runs = data["runs"]

    def sb(self, test, mode, threads, path):
        for r in self.runs:
            if (
                r["kind"] == "sysbench"
                and r["test"] == test
                and r["ps_mode"] == mode
                and r["threads"] == threads
                and r["path"] == path
            ):
                return r
        return None

    def ok(self, *key):
        r = self.sb(*key)
        return r if r and r.get("ok") else None

    def kind(self, kind):
        return [r for r in self.runs if r["kind"] == kind]

    def big(self, path):
        for r in self.kind("big"):
            if r["path"] == path:
                return r
        return None

    def groups(self, test):
        seen = []
        for r in self.runs:
            if r["kind"] == "sysbench" and r["test"] == test:
                key = (r["ps_mode"], r["threads"])
                if key not in seen:
                    seen.append(key)
        return seen


def verdict(ok):
    if ok is None:
        return "not measured"
    return "**pass**" if ok else "**FAIL**"


def headline_rounds(res, kind="headline", want=("haproxy", "relay", "splitrail")):
    """{round: {path: run}} of the headline part, complete rounds only."""
    rounds = {}
    for r in res.kind(kind):
        if r.get("ok"):
            rounds.setdefault(r["round"], {})[r["path"]] = r
    return {n: paths for n, paths in sorted(rounds.items()) if set(want) <= set(paths)}


def latency_rounds(res):
    """{round: {path: run}} of the 1-thread direct/splitrail pairs."""
    rounds = headline_rounds(res, "latency", ("direct", "splitrail"))
    return {
        n: p
        for n, p in rounds.items()
        if p["direct"].get("p99_ms") is not None and p["splitrail"].get("p99_ms") is not None
    }


def latency_target(rounds):
    extra = [(p["splitrail"]["p99_ms"] - p["direct"]["p99_ms"]) * 1000 for p in rounds.values()]
    median = statistics.median(extra)
    values = ", ".join(f"{e:+.0f}" for e in extra)
    return (
        "p99 at 1 thread (point_select text) ≤ direct p99 + 100 µs",
        f"{median:+.0f} µs (median over {len(extra)} rounds of splitrail p99 − direct p99: {values})",
        median <= 100,
    )


def median_ratio(rounds, num, den, field):
    """Median over rounds of num/den for `field`, and the per-round values."""
    values = [
        paths[num][field] / paths[den][field]
        for paths in rounds.values()
        if paths[num].get(field) and paths[den].get(field)
    ]
    return (statistics.median(values), values) if values else (None, [])


def headline_targets(rounds):
    rows = []
    n = len(rounds)

    def measured(median, values):
        return f"{median:.2f} × (median of {n} rounds: {', '.join(f'{v:.2f}' for v in values)})"

    q, qs = median_ratio(rounds, "splitrail", "haproxy", "qps")
    rows.append(("point_select 8 thr text: splitrail qps ≥ 1.2 × HAProxy", measured(q, qs), q >= 1.2))
    c, cs = median_ratio(rounds, "splitrail", "haproxy", "cpu_s_per_1k")
    if c is not None:
        us = statistics.median(p["splitrail"]["cpu_s_per_1k"] * 1000 for p in rounds.values())
        uh = statistics.median(p["haproxy"]["cpu_s_per_1k"] * 1000 for p in rounds.values())
        rows.append(
            (
                "point_select 8 thr text: splitrail CPU/query ≤ 0.6 × HAProxy",
                measured(c, cs) + f"; medians {us:.0f} vs {uh:.0f} µs/query",
                c <= 0.6,
            )
        )
    r, rs = median_ratio(rounds, "splitrail", "relay", "qps")
    rows.append(("point_select 8 thr text: splitrail qps ≥ 0.9 × tokio relay", measured(r, rs), r >= 0.9))
    return rows


def single_run_targets(res):
    """The headline targets from the one 8-thread run of the sysbench part
    (when the headline part did not run)."""
    rows = []
    s = res.ok("oltp_point_select", "disable", 8, "splitrail")
    h = res.ok("oltp_point_select", "disable", 8, "haproxy")
    rl = res.ok("oltp_point_select", "disable", 8, "relay")
    if s and h:
        q = s["qps"] / h["qps"]
        rows.append(("point_select 8 thr text: splitrail qps ≥ 1.2 × HAProxy", f"{q:.2f} ×", q >= 1.2))
        if s.get("cpu_s_per_1k") and h.get("cpu_s_per_1k"):
            c = s["cpu_s_per_1k"] / h["cpu_s_per_1k"]
            rows.append(
                (
                    "point_select 8 thr text: splitrail CPU/query ≤ 0.6 × HAProxy",
                    f"{c:.2f} × ({s['cpu_s_per_1k'] * 1000:.0f} vs {h['cpu_s_per_1k'] * 1000:.0f} µs/query)",
                    c <= 0.6,
                )
            )
    else:
        rows.append(("point_select 8 thr text vs HAProxy", "run failed or missing", None))
    if s and rl:
        q = s["qps"] / rl["qps"]
        rows.append(("point_select 8 thr text: splitrail qps ≥ 0.9 × tokio relay", f"{q:.2f} ×", q >= 0.9))
    return rows


def targets(res):
    rounds = headline_rounds(res)
    rows = headline_targets(rounds) if rounds else single_run_targets(res)
    s1 = res.ok("oltp_point_select", "disable", 1, "splitrail")
    d1 = res.ok("oltp_point_select", "disable", 1, "direct")
    latency = latency_rounds(res)
    if latency:
        rows.append(latency_target(latency))
    elif s1 and d1 and s1.get("p99_ms") is not None and d1.get("p99_ms") is not None:
        extra = (s1["p99_ms"] - d1["p99_ms"]) * 1000
        rows.append(
            (
                "p99 at 1 thread (point_select text) ≤ direct p99 + 100 µs",
                f"{s1['p99_ms'] * 1000:.0f} µs vs {d1['p99_ms'] * 1000:.0f} µs ({extra:+.0f} µs)",
                extra <= 100,
            )
        )
    else:
        rows.append(("p99 at 1 thread ≤ direct p99 + 100 µs", "no 1-thread run", None))
    bs, bd = res.big("splitrail"), res.big("direct")
    if bs and bd and bs.get("ok") and bd.get("ok"):
        q = bs["mb_per_s"] / bd["mb_per_s"]
        rows.append(("1,000,000-row result: throughput ≥ 0.8 × direct", f"{q:.2f} ×", q >= 0.8))
        g = mb(bs["proxy_rss_growth_kb"])
        rows.append(("1,000,000-row result: proxy RSS growth < 32 MB", f"{g:.1f} MB", g < 32))
    else:
        rows.append(("1,000,000-row result", f"failed: {bs and bs.get('error')}", None))
    for idle in res.kind("idle"):
        if idle["clients"] != 10000:
            continue
        if not idle.get("ok"):
            rows.append(("10,000 idle clients", f"failed: {idle.get('error')}", False))
            continue
        o, c = idle.get("open", {}), idle.get("check", {})
        accepted = o.get("opened") == 10000 and c.get("served") == o.get("opened")
        rows.append(
            (
                "10,000 idle clients: accepted and served",
                f"{o.get('opened')} opened, {o.get('failed')} failed, {c.get('served')} served again",
                accepted,
            )
        )
        rss = mb(idle.get("proxy_hwm_kb"))
        rows.append(("10,000 idle clients: RSS < 256 MB", f"{fmt(rss, 1)} MB peak", None if rss is None else rss < 256))
        counts = idle.get("backends_idle", {})
        nums = [v for v in counts.values() if isinstance(v, int)]
        limit = idle["pool_max_idle_per_node"]
        rows.append(
            (
                f"10,000 idle clients: backend connections ≤ pool limit ({limit} per node)",
                ", ".join(f"{k} {v}" for k, v in counts.items()),
                bool(nums) and max(nums) <= limit,
            )
        )
    lexer = next(iter(res.kind("lexer")), None)
    if lexer and lexer.get("ok"):
        c = lexer["cases"]
        ns = c["classify/select_100b"]
        rows.append(
            (
                "pre-lexer < 200 ns for a 100-byte SELECT (criterion median)",
                f"{ns:.0f} ns (lexer alone {c['lexer/select_100b']:.0f} ns; "
                f"classified and routed {c['classify_and_route/select_100b']:.0f} ns)",
                ns < 200,
            )
        )
    else:
        why = "not run" if lexer is None else "benchmark failed"
        rows.append(("pre-lexer < 200 ns for a 100-byte SELECT (criterion)", why, None))
    return rows


def chart(res, png):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(14, 9), gridspec_kw={"width_ratios": [3, 1.3]})
    m = res.data["machine"]
    quick = " (BENCH_QUICK smoke run)" if res.data["settings"]["quick"] else ""
    fig.suptitle(
        f"splitrail benchmarks{quick} — {m.get('nproc')} × {m.get('cpu_model')}, "
        f"MariaDB {m.get('mariadb', '').split('-')[0]}, {res.data['settings']['time_s']} s per run",
        fontsize=12,
    )
    for ax, test in ((axes[0][0], "oltp_point_select"), (axes[1][0], "oltp_read_only")):
        groups = res.groups(test)
        width = 0.8 / len(PATHS)
        for i, path in enumerate(PATHS):
            xs, ys = [], []
            for g, (mode, threads) in enumerate(groups):
                r = res.ok(test, mode, threads, path)
                xs.append(g + (i - (len(PATHS) - 1) / 2) * width)
                ys.append(r["qps"] if r else 0)
            bars = ax.bar(xs, ys, width, label=LABEL[path], color=COLOR[path])
            for bar, y in zip(bars, ys):
                if y == 0:
                    ax.text(bar.get_x() + width / 2, 0, "✗", ha="center", va="bottom", color=COLOR[path])
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{MODE[mo]}\n{t} thr" for mo, t in groups])
        ax.set_title(f"{test} (queries/s)")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")

    ax = axes[0][1]
    labels, ys, colors = [], [], []
    for mode in ("disable", "auto"):
        for path in ("direct-m1", "splitrail"):
            r = res.ok("oltp_read_write", mode, 8, path)
            labels.append(f"{LABEL[path]}\n{MODE[mode]}")
            ys.append(r["qps"] if r else 0)
            colors.append(COLOR[path])
    ax.bar(range(len(ys)), ys, color=colors)
    ax.set_xticks(range(len(ys)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_title("oltp_read_write, 8 threads (queries/s)")
    ax.grid(axis="y", alpha=0.3)

    ax = axes[1][1]
    ys, colors = [], []
    for path in PATHS:
        r = res.big(path)
        ys.append(r["mb_per_s"] if r and r.get("ok") else 0)
        colors.append(COLOR[path])
    ax.bar(range(len(PATHS)), ys, color=colors)
    ax.set_xticks(range(len(PATHS)))
    ax.set_xticklabels([LABEL[p] for p in PATHS], fontsize=7)
    ax.set_title("1,000,000-row result (MB/s of result text)")
    ax.grid(axis="y", alpha=0.3)

    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)


def markdown(res, md_path, png_path):
    d = res.data
    st, m = d["settings"], d["machine"]
    out = []
    w = out.append
    img = os.path.relpath(png_path, Path(md_path).parent)
    kind = "quick smoke run (`BENCH_QUICK=1`)" if st["quick"] else "full run"
    w("# Benchmarks\n")
    w(
        f"Generated by `bench/run` ({kind}) on {m['date']}; splitrail at {m['git']}, "
        f"binary built {m.get('splitrail_built', '?')}. "
        "Do not edit by hand: rerun the harness. Raw numbers: `results.json` in the run "
        "directory (`$BENCH_OUT`, default `/tmp/splitrail-bench-run`).\n"
    )
    w("## How to run\n")
    w("```sh")
    w("bench/run                  # full run: 1, 8 and 64 threads, 10 s per sysbench run")
    w("BENCH_QUICK=1 bench/run    # smoke run: 8 threads, 3 s per run")
    w("BENCH_TIME=30 bench/run    # longer runs")
    w("```\n")
    w(
        "It needs `cargo`; it installs `sysbench`, `haproxy`, `python3-venv` and MariaDB with "
        "apt-get when missing, puts matplotlib into `bench/.venv`, builds `splitrail` and "
        "`examples/tcp_relay` in release mode, starts its own lab "
        f"(`LAB_PORT={st['lab_port']} LAB_DIR=/tmp/splitrail-bench-lab proto-tests/lab up`), runs "
        "everything, rewrites this page and `docs/img/benchmarks.png`, and stops every process "
        f"it started, the lab included. This run took {d.get('elapsed_s', '?')} s.\n"
    )
    w("## Machine\n")
    hyp = f", {m['hypervisor']} guest" if m.get("hypervisor") else ""
    w(f"- CPU: {m['nproc']} × {m['cpu_model']}{hyp}; memory {m['mem']}")
    w(f"- OS: {m['os']}, kernel {m['kernel']}")
    w(f"- MariaDB {m['mariadb']} (the script lab: m1 ⇄ m2, replicas r1, r2, all on this machine)")
    w(f"- {m['sysbench']}; {m['haproxy']}; {m['rustc']}")
    w(
        "- Everything (client, proxies, four `mariadbd`) shares the same cores, so the numbers "
        "are ratios within one run, not absolute capacity. The *other CPU* column is CPU used on "
        "the machine by anything but the lab, the proxy and the client during the run (from "
        "`/proc/stat`, including kernel time not charged to a process), as a share of all cores: "
        "where it is high, other work (e.g. a compiler) was competing and that run is noisy.\n"
    )
    others = sorted(r["other_cpu_pct"] for r in res.runs if r.get("other_cpu_pct") is not None)
    w("## Targets (issue 5)\n")
    if others:
        median = others[len(others) // 2]
        quiet = "quiet" if median < 10 else "**noisy**"
        w(
            f"Machine load from other work during the measured runs: median {median:.0f} %, "
            f"max {others[-1]:.0f} % of all cores ({quiet}; see *other CPU* below). "
            "Single runs are only as good as that; compare ratios across several runs.\n"
        )
    w("| target | measured | result |")
    w("| --- | --- | --- |")
    for name, measured, ok in targets(res):
        w(f"| {name} | {measured} | {verdict(ok)} |")
    w("")
    w(f"![queries per second per path and workload]({img})\n")

    w("## Summary: queries per second\n")
    w(
        "splitrail routes reads to r1 and r2 (weights 1:1); direct, HAProxy and the relay go to r1 "
        "only. sysbench `oltp_read_only` wraps its reads in `BEGIN … COMMIT`, so splitrail runs "
        "that workload on the writer m1, as its routing rules require.\n"
    )
    w(
        "| workload | protocol | threads | direct | HAProxy | relay | splitrail | "
        "splitrail / direct | splitrail / HAProxy | splitrail / relay |"
    )
    w("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for test in ("oltp_point_select", "oltp_read_only"):
        for mode, threads in res.groups(test):
            q = {p: (res.ok(test, mode, threads, p) or {}).get("qps") for p in PATHS}
            cells = [fmt(q[p]) if q[p] is not None else "FAILED" for p in PATHS]
            w(
                f"| {TEST_SHORT[test]} | {MODE[mode]} | {threads} | " + " | ".join(cells) + " | "
                f"{ratio(q['splitrail'], q['direct'])} | {ratio(q['splitrail'], q['haproxy'])} | "
                f"{ratio(q['splitrail'], q['relay'])} |"
            )
    w("")

    w("## Every sysbench run\n")
    w(
        "Latency is per sysbench event: one query for `point_select`, one whole transaction "
        "(16 statements with BEGIN/COMMIT) for `read_only` and `read_write`. "
        "*CPU s/1k q* is the proxy process's CPU-seconds (user + system, all threads) per "
        "1,000 queries, which is also its CPU-milliseconds per query. *Switches/q* is the "
        "proxy's context switches (all threads, voluntary and not) per query: each is a thread "
        "that slept in epoll_wait and was woken, the kernel work that dominates a proxy's CPU "
        "here. *Peak RSS* is the proxy's VmHWM; each proxy is started fresh for each run.\n"
    )
    w(
        "| workload | protocol | thr | path | qps | × direct | × HAProxy | p50 ms | p99 ms | "
        "proxy CPU s/1k q | CPU × HAProxy | switches/q | peak RSS MB | other CPU % |"
    )
    w("| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in res.kind("sysbench"):
        base = "direct-m1" if r["test"] == "oltp_read_write" else "direct"
        key = (r["test"], r["ps_mode"], r["threads"])
        d0 = res.ok(*key, base) or {}
        h0 = res.ok(*key, "haproxy") or {}
        head = f"| {TEST_SHORT[r['test']]} | {MODE[r['ps_mode']]} | {r['threads']} | {LABEL[r['path']]} |"
        if not r.get("ok"):
            err = (r.get("error") or "").replace("|", "\\|")[:200]
            w(f"{head} FAILED: {err} | | | | | | | | | |")
            continue
        w(
            f"{head} {fmt(r['qps'])} | {ratio(r['qps'], d0.get('qps'))} | "
            f"{ratio(r['qps'], h0.get('qps'))} | {fmt(r.get('p50_ms'), 3)} | "
            f"{fmt(r.get('p99_ms'), 3)} | {fmt(r.get('cpu_s_per_1k'), 4)} | "
            f"{ratio(r.get('cpu_s_per_1k'), h0.get('cpu_s_per_1k'))} | "
            f"{fmt(r.get('switches_per_query'), 2)} | "
            f"{fmt(mb(r.get('proxy_hwm_kb')), 1)} | {fmt(r.get('other_cpu_pct'), 0)} |"
        )
    w("")

    rounds = headline_rounds(res)
    if rounds:
        w("## Headline comparison, round by round\n")
        w(
            "`oltp_point_select`, text protocol, 8 threads, HAProxy, the relay and splitrail "
            f"alternating for {len(rounds)} rounds (`BENCH_HEADLINE_ROUNDS`); the targets above "
            "are the medians of the per-round ratios.\n"
        )
        w(
            "| round | HAProxy qps | relay qps | splitrail qps | splitrail / HAProxy | "
            "splitrail / relay | CPU µs/q HAProxy | relay | splitrail | switches/q splitrail | "
            "other CPU % (max) |"
        )
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n, p in rounds.items():
            h, rl, sp = p["haproxy"], p["relay"], p["splitrail"]
            other = max(r.get("other_cpu_pct") or 0 for r in (h, rl, sp))
            w(
                f"| {n} | {fmt(h['qps'])} | {fmt(rl['qps'])} | {fmt(sp['qps'])} | "
                f"{ratio(sp['qps'], h['qps'])} | {ratio(sp['qps'], rl['qps'])} | "
                f"{fmt((h.get('cpu_s_per_1k') or 0) * 1000, 1)} | "
                f"{fmt((rl.get('cpu_s_per_1k') or 0) * 1000, 1)} | "
                f"{fmt((sp.get('cpu_s_per_1k') or 0) * 1000, 1)} | "
                f"{fmt(sp.get('switches_per_query'), 2)} | {fmt(other, 0)} |"
            )
        w("")
    latency = latency_rounds(res)
    if latency:
        w(
            "Latency, the same rounds: `oltp_point_select`, text, 1 thread, direct to r1 and "
            "splitrail alternating; the p99 target above is the median of the per-round differences.\n"
        )
        w(
            "| round | direct p50 ms | direct p99 ms | splitrail p50 ms | splitrail p99 ms | "
            "p99 difference µs | other CPU % (max) |"
        )
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n, p in latency.items():
            direct, sp = p["direct"], p["splitrail"]
            other = max(r.get("other_cpu_pct") or 0 for r in (direct, sp))
            w(
                f"| {n} | {fmt(direct.get('p50_ms'), 3)} | {fmt(direct['p99_ms'], 3)} | {fmt(sp.get('p50_ms'), 3)} | "
                f"{fmt(sp['p99_ms'], 3)} | {(sp['p99_ms'] - direct['p99_ms']) * 1000:+.0f} | {fmt(other, 0)} |"
            )
        w("")

    layout = res.kind("layout")
    if layout:
        w("## Runtime layout (`proxy.threads`)\n")
        w(
            "splitrail alone, `oltp_point_select`, text protocol, 8 threads, the two runtime "
            "layouts alternating: `0` = tokio's multi-thread runtime with one worker per core "
            "(the default), `1` = a single current-thread runtime (no cross-thread wake-ups, at "
            "most one core). Same config otherwise.\n"
        )
        w("| run | proxy.threads | qps | p99 ms | proxy CPU µs/query | switches/q | other CPU % |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for i, r in enumerate(layout, 1):
            if not r.get("ok"):
                w(f"| {i} | {r['proxy_threads']} | FAILED | | | | |")
                continue
            w(
                f"| {i} | {r['proxy_threads']} | {fmt(r['qps'])} | {fmt(r.get('p99_ms'), 3)} | "
                f"{fmt((r.get('cpu_s_per_1k') or 0) * 1000, 1)} | {fmt(r.get('switches_per_query'), 2)} | "
                f"{fmt(r.get('other_cpu_pct'), 0)} |"
            )
        for threads in (0, 1):
            ok = [r for r in layout if r.get("ok") and r["proxy_threads"] == threads]
            if ok:
                qps = statistics.median(r["qps"] for r in ok)
                cpu = statistics.median(r["cpu_s_per_1k"] * 1000 for r in ok)
                w(f"\nMedian, `proxy.threads = {threads}`: {qps:,.0f} qps, {cpu:.1f} µs CPU per query.")
        w("")

    w("## 1,000,000-row result\n")
    bd = res.big("direct") or {}
    if bd.get("ok"):
        w(
            f"`SELECT id, pad FROM big`: {bd['rows']:,} rows, {bd['bytes'] / 1e6:.0f} MB of result "
            f"text, read with the `mariadb` client (`--quick`, i.e. streamed) to /dev/null; median "
            f"of {st['big_reps']} timed pass(es){'' if st['quick'] else ' after one untimed warm-up pass'}. "
            "RSS growth is the proxy's peak RSS minus its RSS before the first query.\n"
        )
    w("| path | seconds | MB/s | × direct | proxy CPU s per pass | RSS before MB | peak RSS MB | RSS growth MB | other CPU % |")
    w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for path in PATHS:
        r = res.big(path)
        if not r:
            continue
        if not r.get("ok"):
            w(f"| {LABEL[path]} | FAILED: {r.get('error')} | | | | | | | |")
            continue
        w(
            f"| {LABEL[path]} | {r['seconds']:.2f} | {r['mb_per_s']:.0f} | "
            f"{ratio(r['mb_per_s'], bd.get('mb_per_s'))} | {fmt(r.get('proxy_cpu_s'), 2)} | "
            f"{fmt(mb(r.get('proxy_rss_start_kb')), 1)} | {fmt(mb(r.get('proxy_hwm_kb')), 1)} | "
            f"{fmt(mb(r.get('proxy_rss_growth_kb')), 1)} | {fmt(r.get('other_cpu_pct'), 0)} |"
        )
    w("")

    w("## Mostly idle client connections (splitrail)\n")
    idles = res.kind("idle")
    if idles:
        w(
            "`bench/idle.py` opens the connections (200 at a time, 5 s timeout for each connect, login and query), runs one "
            "`SELECT 1` on each and keeps them open; 2 s later the harness reads splitrail's RSS "
            "and open file descriptors and counts the backend connections of user `app` on every "
            "node (`SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='app'`); then "
            "every open connection runs one more `SELECT 1` (*served again*). For this test the "
            f"lab's `max_connections` is raised from {st.get('lab_max_connections', {}).get('r1', '?')} "
            f"to {st.get('idle_max_connections', '?')} on every node (`SET GLOBAL`), and the "
            f"harness's file descriptor limit (inherited by splitrail) is the hard limit; the "
            f"configured pool limit is `pool.max_idle_per_node = {idles[0]['pool_max_idle_per_node']}`.\n"
        )
        w(
            "| clients | opened | failed | errors | served again | splitrail RSS MB (idle / peak) | "
            "splitrail fds | backend conns while idle | after closing |"
        )
        w("| ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |")
        for r in idles:
            if not r.get("ok") and "open" not in r:
                w(f"| {r['clients']:,} | FAILED: {r.get('error')} | | | | | | | |")
                continue
            o, c = r.get("open", {}), r.get("check", {})
            errs = "; ".join(f"{n}× {e}" for e, n in (o.get("errors") or {}).items()) or "none"
            errs = errs.replace("|", "\\|")[:300]
            cnt = ", ".join(f"{k} {v}" for k, v in (r.get("backends_idle") or {}).items())
            after = ", ".join(f"{k} {v}" for k, v in (r.get("backends_after_close") or {}).items())
            stt = r.get("idle_status", {})
            w(
                f"| {r['clients']:,} | {fmt(o.get('opened'))} | {fmt(o.get('failed'))} | {errs} | "
                f"{fmt(c.get('served'))} | {fmt(mb(stt.get('VmRSS')), 1)} / {fmt(mb(r.get('proxy_hwm_kb')), 1)} | "
                f"{fmt(stt.get('fds'))} | {cnt} | {after} |"
            )
        w("")
        for r in idles:
            notes = []
            if r.get("proxy_fd_limit"):
                notes.append(f"splitrail's open-file limit was {r['proxy_fd_limit']:,}")
            if r.get("error"):
                notes.append(f"harness error: {r['error']}")
            if not r.get("proxy_alive", True):
                notes.append("splitrail exited during the test")
            logged = r.get("proxy_log") or {}
            if logged:
                notes.append(
                    "splitrail logged: "
                    + "; ".join(f"{n}× `{msg.replace('`', '')}`" for msg, n in logged.items())
                )
            if notes:
                w(f"- {r['clients']:,} clients: " + ". ".join(notes) + ".")
        w("")

    settles = [r.get("settle_s") for r in res.runs if r.get("settle_s") is not None]
    settle_total = sum(settles)
    cap = st.get("settle_max_s", 20)
    settle_capped = sum(1 for x in settles if x >= cap)
    w("## Method\n")
    w(
        f"- Each sysbench run lasts {st['time_s']} s (`--time`), on {st['tables']} tables of "
        f"{st['table_size']:,} rows prepared on m1 and replicated (the harness waits with "
        "`MASTER_GTID_WAIT`). Runs of the same workload are back to back, path after path, so "
        "they see the same conditions as far as possible."
    )
    w(
        f"- Before each measured run the harness waits (at most `BENCH_SETTLE_MAX`, here "
        f"{cap:g} s) "
        "until no cargo build holds `/tmp/cargo.lock` and the machine is under 25 % busy over one "
        "second; this lowers, but does not remove, interference from other work on a shared "
        f"machine. In this run it waited {settle_total:.0f} s in all, and {settle_capped} of "
        f"{len(settles)} runs started after the full wait without the machine becoming quiet."
    )
    w(
        "- qps is sysbench's `queries … per sec.`. p50 and p99 are computed from sysbench's "
        "`--histogram` of the same run (logarithmic buckets about 1.8 % wide), so one run gives "
        "both; sysbench's own `--percentile=99` figure, from the same histogram, is kept in the "
        "raw results as a cross-check."
    )
    w(
        "- Proxy CPU: utime + stime of the proxy process from `/proc/<pid>/stat` just before "
        "sysbench starts and just after it exits, divided by the queries sysbench counted "
        "(connection set-up of the sysbench threads is included; BEGIN/COMMIT count as queries). "
        "Peak RSS: `VmHWM` from `/proc/<pid>/status`."
    )
    w(
        f"- HAProxy runs in the foreground (`haproxy -db -f haproxy.cfg`) with `nbthread "
        f"{st['haproxy_nbthread']}` (the machine's core count; HAProxy's default would be the "
        "same). The tokio relay is `examples/tcp_relay` (multi-thread runtime, one backend "
        "connection per client, `copy_bidirectional`). splitrail runs with the config below and "
        "`RUST_LOG=info`."
    )
    w(
        "- Pre-lexer: criterion's median for `benches/classify.rs` (`classify/select_100b`: the "
        "100-byte SELECT through the pre-lexer and classifier; `lexer/select_100b`: lexing only; "
        "`classify_and_route/select_100b`: what a session runs per COM_QUERY), run first, while "
        "the lab is idle and holding the cargo lock."
    )
    w("")
    w("## Exact commands\n")
    w("```sh")
    shown = set()
    for r in res.kind("sysbench"):
        key = (r["test"], r["ps_mode"])
        if key in shown or "command" not in r:
            continue
        shown.add(key)
        cmd = re.sub(r"--threads=\d+", "--threads=$T", r["command"])
        w(re.sub(r"--mysql-port=\d+", "--mysql-port=$PORT", cmd))
    for r in res.kind("big")[:1]:
        w(re.sub(r"-P\d+", "-P$PORT", r.get("command", "")))
    for r in res.kind("lexer")[:1]:
        w(r.get("command", ""))
    for r in res.kind("idle")[:1]:
        cmd = re.sub(r"\S*/bench/\.venv/bin/python\S*", "bench/.venv/bin/python", r.get("command", ""))
        w(re.sub(r"\S*/bench/idle\.py", "bench/idle.py", cmd))
    p = st["ports"]
    w(
        f"# $PORT: direct r1 {st['lab_port'] + 3}, direct m1 {st['lab_port'] + 1}, "
        f"HAProxy {p['haproxy']}, relay {p['relay']}, splitrail {p['splitrail']}; $T: 1, 8, 64"
    )
    w(f"target/release/examples/tcp_relay --listen 127.0.0.1:{p['relay']} --backend 127.0.0.1:{st['lab_port'] + 3}")
    w("haproxy -db -f haproxy.cfg")
    w("target/release/splitrail serve -c splitrail.toml")
    w("```\n")
    w("`haproxy.cfg`:\n")
    w("```\n" + d["configs"]["haproxy.cfg"].rstrip() + "\n```\n")
    w("`splitrail.toml` (generated from `proto-tests/lab.toml` with the bench lab's ports):\n")
    w("```toml\n" + d["configs"]["splitrail.toml"].rstrip() + "\n```\n")
    w("<details><summary>lscpu and free -m</summary>\n")
    w("```\n" + m.get("lscpu", "") + "\n\n" + m.get("free", "") + "\n```\n")
    w("</details>")
    Path(md_path).parent.mkdir(parents=True, exist_ok=True)
    Path(md_path).write_text("\n".join(out) + "\n")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    res = Results(json.loads(Path(sys.argv[1]).read_text()))
    chart(res, sys.argv[3])
    markdown(res, sys.argv[2], sys.argv[3])
    print(f"[bench] wrote {sys.argv[2]} and {sys.argv[3]}", file=sys.stderr)


if __name__ == "__main__":
    main()
