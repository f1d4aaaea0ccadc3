"""The benchmark scenarios S1, S2, S4 and S5 (S3 and S6 are in :mod:`harness.latency`) and what
they share: sizes, peer environment, failure rows. Each scenario returns a dict:
{"title", "rows": [...], "notes": [...]}.

Every figure comes from the peer protocol (benches/peers/README.md) and /proc; nothing here is
specific to one peer except the choice of mode (watch or controller).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from harness.peers import BENCHES, Peer, PeerRun, PeerTimeout
from harness.server import BenchServer
from harness.workload import template

__all__ = [
    "Sizes",
    "failed_row",
    "has_taskset",
    "peer_env",
    "pinned",
    "s1_cold_sync",
    "s2_ingest",
    "s4_memory",
    "s5_recovery",
]


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; ``quick()`` keeps the whole suite under 3 minutes (2:53 measured on the idle
    2-core machine, envtest run included): no-op reconciles only in S3, our peer only in S5."""

    cold_sync: tuple[int, ...] = (10_000, 100_000)
    ingest_cached: int = 20_000
    ingest_start: int = 1_000
    ingest_floor: int = 125
    ingest_refine: int = 3
    ingest_drain_timeout: float = 120.0  # after a failed step; then the peer is restarted (relist)
    ingest_step_seconds: float = 5.0
    latency_cached: int = 10_000
    latency_seconds: float = 10.0
    latency_concurrency: tuple[int, ...] = (1, 8, 64)
    latency_reconcile_ms: tuple[float, ...] = (0.0, 5.0)
    #: S3: extra rounds at c=8 (no-op) over every controller peer, in rotating order, for CPU medians.
    latency_cpu_rounds: int = 3
    #: S6: interleaved off/on pairs (one pair's difference is within the machine's run-to-run noise).
    observability_rounds: int = 6
    #: S6's instruction count (valgrind): objects cached, writes and their rate (the peer runs slowly).
    instructions_cached: int = 1_000
    instructions_writes: int = 400
    instructions_rate: int = 50
    memory_cached: int = 100_000
    recovery_cached: int = 10_000
    recovery_down_seconds: float = 5.0
    recovery_peers: tuple[str, ...] = ()  # empty: every peer
    memory_variants_for_all: bool = True  # False: strip/metadata variants for kube-runtime only
    sync_timeout: float = 600.0

    @staticmethod
    def quick() -> Sizes:
        return Sizes(
            cold_sync=(1_000,),
            ingest_cached=1_000,
            ingest_start=8_000,
            ingest_floor=2_000,
            ingest_refine=0,
            ingest_drain_timeout=5.0,
            ingest_step_seconds=0.75,
            latency_cached=1_000,
            latency_seconds=2.0,
            latency_concurrency=(8,),
            latency_reconcile_ms=(0.0,),
            latency_cpu_rounds=0,
            observability_rounds=1,
            instructions_cached=200,
            instructions_writes=100,
            memory_cached=2_000,
            recovery_cached=500,
            recovery_down_seconds=1.5,
            recovery_peers=("kube-runtime",),
            memory_variants_for_all=False,
            sync_timeout=60.0,
        )


def peer_env(peer: Peer, expect: int) -> dict[str, str]:
    return {"KOPF_PEER_EXPECT": str(expect)}


def failed_row(peer: Peer, exc: BaseException, run: PeerRun | None = None) -> dict[str, Any]:
    tail = run.stderr_tail(2) if run is not None else ""
    return {"peer": peer.name, "error": f"{exc} {tail}".strip()[:300]}


# -- S1 ------------------------------------------------------------------------------------------


def s1_cold_sync(server: BenchServer, peers: list[Peer], sizes: Sizes) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for resource in ("configmaps", "pods"):
        for n in sizes.cold_sync:
            ns = f"s1-{resource}-{n}"
            server.bulk_create(resource, ns, n, template(resource))
            size = server.json_size(resource, ns)
            for peer in peers:
                cpu0 = server.cpu_seconds()
                run = PeerRun(peer, server.kubeconfig, ns, resource=resource, env=peer_env(peer, n))
                with run:
                    try:
                        s = run.wait_synced(sizes.sync_timeout)
                    except PeerTimeout as exc:
                        rows.append({**failed_row(peer, exc, run), "resource": resource, "n": n})
                        continue
                    rows.append(
                        {
                            "peer": peer.name,
                            "resource": resource,
                            "n": n,
                            "json_bytes": round(size),
                            "synced": s["synced"],
                            "seconds": round(s["t"] - run.started, 3),
                            "cpu_s": s["cpu"],
                            "peak_rss_mib": round(s.get("VmHWM", 0) / 1024, 1),
                            "server_cpu_s": round(server.cpu_seconds() - cpu0, 2),
                        }
                    )
    return {
        "title": "S1 cold sync (start to store ready)",
        "rows": rows,
        "notes": [
            "seconds: from process start to the peer's store-ready line; cpu_s and peak RSS "
            "(VmHWM) read from /proc at that moment; server_cpu_s: the API server's CPU "
            "meanwhile (all peers list with limit=500 except kopf, which lists unpaged)."
        ],
    }


# -- S2 ------------------------------------------------------------------------------------------


def _ingest_step(server: BenchServer, run: PeerRun, ns: str, rate: int, seconds: float) -> dict[str, Any]:
    """One paced burst of ``rate * seconds`` MODIFIED events; how the peer kept up with it."""
    count = max(1, int(rate * seconds))
    before = run.events()
    cpu0, scpu0, t0 = run.cpu_seconds(), server.cpu_seconds(), time.time()
    server.reset_stalls()
    churn = server.wait_churn(server.churn("configmaps", ns, count, rate))
    got = run.wait_events(before + count, timeout=3.0)
    t1 = time.time()
    cpu = run.cpu_seconds() - cpu0
    received = run.events() - before
    windows = [w for w in run.windows(t0, t1 + 1.0) if w.get("lag_p99") is not None]
    p99 = max((w["lag_p99"] for w in windows), default=None)
    achieved = float(churn["ratePerSecond"])
    return {
        "rate": rate,
        "ok": bool(got and p99 is not None and p99 < 1.0),
        "server_short": achieved < 0.9 * rate,
        "rate_server": round(achieved),
        "lag_p99_s": p99,
        "cpu_us_per_event": round(cpu / max(1, received) * 1e6, 1),
        "server_cpu_us_per_event": round((server.cpu_seconds() - scpu0) / count * 1e6, 1),
        "server_stall_ms": server.stall_max_ms(),
    }


def s2_ingest(server: BenchServer, peers: list[Peer], sizes: Sizes) -> dict[str, Any]:
    """Highest sustained rate per peer: double from ``ingest_start`` until a step fails (halve
    down to ``ingest_floor`` when the first one does), then bisect ``ingest_refine`` times between
    the best passing and the lowest failing rate. A peer that failed a step is given time to drain,
    and is restarted (fresh list) when it cannot, so each step starts from a caught-up peer."""
    ns = "s2"
    n = sizes.ingest_cached
    server.bulk_create("configmaps", ns, n, template("configmaps"))
    rows: list[dict[str, Any]] = []
    for peer in peers:
        steps: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        error: str | None = None
        run: PeerRun | None = None

        def start(peer: Peer = peer) -> PeerRun:
            new = PeerRun(peer, server.kubeconfig, ns, env=peer_env(peer, n)).__enter__()
            try:
                new.wait_synced(sizes.sync_timeout)
            except PeerTimeout:
                new.__exit__(None, None, None)
                raise
            new.wait_quiet(0.5, 5)
            return new

        try:
            run = start()
            low, high = 0, 0  # best passing rate, lowest failing rate (0: none yet)
            rate = sizes.ingest_start
            refinements = 0
            while True:
                step = _ingest_step(server, run, ns, rate, sizes.ingest_step_seconds)
                steps.append(step)
                if step["ok"]:
                    low = max(low, rate)
                    if best is None or step["rate_server"] > best["rate_server"]:
                        best = step
                    if step["server_short"]:
                        break  # the server cannot go faster: the peer's own limit is higher still
                else:
                    high = rate if high == 0 else min(high, rate)
                if high == 0:
                    rate *= 2
                elif low == 0:
                    if rate <= sizes.ingest_floor:
                        break
                    rate = max(sizes.ingest_floor, rate // 2)
                else:
                    if refinements >= sizes.ingest_refine or high - low <= max(50, low // 20):
                        break
                    refinements += 1
                    rate = (low + high) // 2
                if not step["ok"]:  # another step follows: start it from a caught-up peer
                    run.wait_quiet(1.0, sizes.ingest_drain_timeout)
                    if not run.alive() or not _drained(run):
                        run.__exit__(None, None, None)
                        run = None
                        run = start()
                if run.alive():
                    run.wait_quiet(0.5, 5)
        except PeerTimeout as exc:
            error = str(exc)
        finally:
            if run is not None:
                run.__exit__(None, None, None)
        row: dict[str, Any] = {"peer": peer.name, "max_sustained": best["rate_server"] if best else 0}
        if best:
            keys = ("lag_p99_s", "cpu_us_per_event", "server_cpu_us_per_event", "server_stall_ms")
            row.update({k: best[k] for k in keys})
            # The server short of a failed step's target: that failure may be the server's own.
            server_bound = best["server_short"] or any(s["server_short"] and not s["ok"] for s in steps)
            row["bound"] = "server" if server_bound else "peer"
        else:
            failed = [st["rate"] for st in steps if not st["ok"]]
            if failed:
                row["lowest_failed"] = min(failed)
        if error:
            row["error"] = error[:300]
        row["steps"] = " ".join(_step_text(s) for s in steps)
        rows.append(row)
    return {
        "title": f"S2 steady watch ingest ({n} ConfigMaps cached, rate search)",
        "rows": rows,
        "notes": [
            "max_sustained: the highest rate (as the server achieved it) whose events all arrived "
            "within 3 s of the server finishing and whose worst one-second lag p99 stayed under 1 s. "
            f"Search: {sizes.ingest_step_seconds:g} s steps doubling from {sizes.ingest_start}/s until one "
            f"fails (halving down to {sizes.ingest_floor}/s if the first fails), then "
            f"{sizes.ingest_refine} bisection steps; after a failed step the peer drains or is restarted.",
            "bound: 'server' when the embedded server (one core) fell more than 10% short of a step's "
            "target, so the peer's own limit is at least max_sustained; 'peer' when the peer failed a "
            "step the server delivered. cpu_us_per_event: the peer's CPU during its best step / events "
            "received; server_cpu_us_per_event: the server's (churn writes are built from per-object "
            "byte templates: see kube_runtime/testing/apiserver/loadgen.py).",
        ],
    }


def _step_text(s: dict[str, Any]) -> str:
    outcome = "ok" if s["ok"] else "FAIL"
    return f"{s['rate']}:{outcome}(p99={_fmt(s['lag_p99_s'])}s,server={s['rate_server']}/s)"


def _drained(run: PeerRun) -> bool:
    """The last one-second report of ``run`` shows no lagging backlog (its lag is back under 1 s)."""
    recent = run.windows(time.time() - 2.5)
    lags = [w["lag_p99"] for w in recent if w.get("lag_p99") is not None]
    return not lags or max(lags) < 1.0


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def pinned(argv: list[str], cpu: int = 1) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if has_taskset() else argv


def has_taskset() -> bool:
    return any(os.access(os.path.join(d, "taskset"), os.X_OK) for d in os.environ.get("PATH", "").split(":"))


# -- S4 ------------------------------------------------------------------------------------------


def s4_memory(server: BenchServer, peers: list[Peer], sizes: Sizes, quick: bool) -> dict[str, Any]:
    n = sizes.memory_cached
    server.ensure_namespace("s4-empty")
    server.bulk_create("configmaps", "s4", n, template("configmaps"))
    size = server.json_size("configmaps", "s4")
    rows: list[dict[str, Any]] = []
    for peer in peers:
        base = _steady_rss(server, peer, "s4-empty", 0, sizes)
        if isinstance(base, str):
            rows.append({"peer": peer.name, "error": base})
            continue
        variants = (
            peer.variants if sizes.memory_variants_for_all or peer.name == "kube-runtime" else ("full",)
        )
        for variant in variants:
            rss = _steady_rss(server, peer, "s4", n, sizes, variant)
            if isinstance(rss, str):
                rows.append({"peer": peer.name, "variant": variant, "error": rss})
                continue
            per = (rss - base) * 1024 / n
            rows.append(
                {
                    "peer": peer.name,
                    "variant": variant,
                    "n": n,
                    "json_bytes": round(size),
                    "empty_rss_mib": round(base / 1024, 1),
                    "rss_mib": round(rss / 1024, 1),
                    "bytes_per_object": round(per),
                    "x_json": round(per / size, 2),
                }
            )
    store = subprocess.run(
        pinned(
            [sys.executable, str(BENCHES / "bench_store.py"), "--store-only", *(["--quick"] if quick else [])]
        ),
        capture_output=True,
        text=True,
        timeout=900,
    )
    out = store.stdout.strip() or store.stderr.strip()[-2000:]
    # The longest collector pause with the default policy: its full collection, the one-time freeze
    # during the sync, or a re-freeze during updates, whichever is longest.
    freeze_lines = [line for line in out.splitlines() if "FreezeAfterSync" in line]
    pauses = [max(float(m) for m in re.findall(r"([0-9.]+) ms", line)) for line in freeze_lines]
    compact_lines = [line for line in out.splitlines() if "GC," in line and "compact store" in line]
    compact_pauses = [max(float(m) for m in re.findall(r"([0-9.]+) ms", line)) for line in compact_lines]
    return {
        "title": f"S4 memory per cached object ({n} ConfigMaps; steady RSS minus an empty-namespace run)",
        "rows": rows,
        "notes": [
            "bytes_per_object = (VmRSS after sync and 1 s settle - VmRSS of the same peer synced on "
            "an empty namespace) / N; x_json: over the mean JSON size of one object.",
            "bench_store.py --store-only (our store alone, tracemalloc; GC pauses):",
        ],
        "verbatim": out,
        "gc_longest_ms": pauses,
        "gc_longest_ms_compact": compact_pauses,
    }


def _steady_rss(
    server: BenchServer, peer: Peer, ns: str, n: int, sizes: Sizes, variant: str = "full"
) -> float | str:
    with PeerRun(peer, server.kubeconfig, ns, variant=variant, env=peer_env(peer, n)) as run:
        try:
            run.wait_synced(sizes.sync_timeout)
        except PeerTimeout as exc:
            return str(exc)
        time.sleep(1.0)
        return float(run.memory_kib().get("VmRSS", 0))


# -- S5 ------------------------------------------------------------------------------------------


def s5_recovery(server: BenchServer, peers: list[Peer], sizes: Sizes) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    n = sizes.recovery_cached
    for case in ("reset", "410-after-burst", "server-down"):
        ns = f"s5-{case}"
        server.bulk_create("configmaps", ns, n, template("configmaps"))
        server.bulk_create("configmaps", ns, 1, template("configmaps"), prefix="sentinel-")
        for peer in peers:
            if sizes.recovery_peers and peer.name not in sizes.recovery_peers:
                continue
            mode = "controller" if peer.controller else "watch"
            with PeerRun(peer, server.kubeconfig, ns, mode=mode, concurrency=8, env=peer_env(peer, n)) as run:
                try:
                    run.wait_synced(sizes.sync_timeout)
                except PeerTimeout as exc:
                    rows.append({**failed_row(peer, exc, run), "case": case})
                    continue
                if mode == "controller":
                    run.wait_events(n, timeout=sizes.sync_timeout)
                base = run.wait_quiet(1.0, 30)
                rss_before = run.memory_kib().get("VmRSS", 0)
                run.reset_peak()
                writes, t_fault = _inject(server, ns, case, sizes, run)
                t_writes_done = time.time()
                sentinels = _until_live(server, ns, run)
                converged = time.time() - t_writes_done
                writes += sentinels
                after = run.wait_quiet(1.0, 30)
                lag_max = max(
                    (w["lag_max"] for w in run.windows(t_fault) if w.get("lag_max") is not None), default=None
                )
                hwm = run.memory_kib().get("VmHWM", 0)
                dump = run.stop()
                server_versions = server.versions("configmaps", ns)
                lost = (
                    None if dump is None else sum(1 for k, v in server_versions.items() if dump.get(k) != v)
                )
                rows.append(
                    {
                        "peer": peer.name,
                        "case": case,
                        "mode": mode,
                        "writes": writes,
                        "max_lag_s": None if lag_max is None else round(lag_max, 3),
                        "converged_s": round(converged, 2),
                        "spurious": max(0, (after - base) - writes),
                        "peak_over_rss": round(hwm / rss_before, 2) if rss_before else None,
                        "lost_updates": lost,
                    }
                )
    return {
        "title": f"S5 recovery ({n} ConfigMaps cached, writes continuing through the fault)",
        "rows": rows,
        "notes": [
            "reset: every watch closed mid-stream; 410-after-burst: a burst of writes, history "
            "compacted, watches closed (the resume gets 410 Gone and must relist); server-down: the "
            "listener stopped for longer than the server's history while writes go on.",
            "max_lag_s: the largest emit-to-receive lag of a watch event after the fault (writes "
            "recovered through a relist arrive as list items and carry no lag); converged_s: from the "
            "last write until the peer was seen live again (a sentinel write, repeated each second, "
            "came through as an event) and then quiet for 1 s; spurious: reconciles/events beyond the "
            "writes made (a lower bound: dedup can hide relist reconciles); peak_over_rss: VmHWM "
            "during recovery / VmRSS before the fault; lost_updates: objects whose cached "
            "resourceVersion differs from the server's at the end (must be 0).",
        ],
    }


def _until_live(server: BenchServer, ns: str, run: PeerRun, timeout: float = 90.0) -> int:
    """Write a sentinel object once a second until the peer reports a new event; returns the writes."""
    deadline = time.time() + timeout
    writes = 0
    while time.time() < deadline and run.alive():
        before = run.events()
        server.wait_churn(server.churn("configmaps", ns, 1, 0, prefix="sentinel-"))
        writes += 1
        if run.wait_events(before + 1, timeout=1.0):
            break
    return writes


def _inject(server: BenchServer, ns: str, case: str, sizes: Sizes, run: PeerRun) -> tuple[int, float]:
    """Apply one fault while writes go on; returns (writes made, fault time)."""
    rate = 500
    if case == "reset":
        idx = server.churn("configmaps", ns, rate * 3, rate)
        time.sleep(1.0)
        t = time.time()
        server.close_watches()
        server.wait_churn(idx)
        return rate * 3, t
    if case == "410-after-burst":
        # Requests are held back (latency) so the resume arrives after the burst and the compaction.
        burst = server.history_size + 500
        server.set_latency(1.0)
        t = time.time()
        server.close_watches()
        server.wait_churn(server.churn("configmaps", ns, burst, 0))
        server.compact()
        server.set_latency(0.0)
        server.wait_churn(server.churn("configmaps", ns, rate * 2, rate))
        return burst + rate * 2, t
    # server-down: more writes happen while it is down than the history keeps.
    down = sizes.recovery_down_seconds
    per_s = int(server.history_size / down * 1.5)
    count = int(per_s * (down + 2))
    idx = server.churn("configmaps", ns, count, per_s)
    time.sleep(0.5)
    t = time.time()
    server.restart(down)
    time.sleep(down + 0.5)
    server.wait_churn(idx)
    return count, t
