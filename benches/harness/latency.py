"""S3 (reconcile scheduling latency) and S6 (observability overhead): a controller-mode peer on a
cache of ConfigMaps while the server writes 1k objects/s, 20 of them hot."""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.peers import BENCHES, Peer, PeerRun, PeerTimeout
from harness.scenarios import Sizes, failed_row, peer_env, pinned
from harness.server import BenchServer
from harness.workload import template

__all__ = [
    "instructions_per_reconcile",
    "latency_run",
    "observability_summary",
    "s3_latency",
    "s6_observability",
]


#: S6's two configurations, off first: the peer's environment for each.
_OBSERVE = {"off": {"KR_PEER_OBSERVE": "0"}, "on": {"KR_PEER_OBSERVE": "1"}}
#: S6's instruction counts also take each half alone.
_OBSERVE_HALVES = {"metrics": {"KR_PEER_OBSERVE": "metrics"}, "tracing": {"KR_PEER_OBSERVE": "tracing"}}


def _populate(server: BenchServer, ns: str, n: int) -> None:
    """``n`` ConfigMaps in ``ns``: 20 of them named ``hot-*`` (the hot keys), the rest plain."""
    server.bulk_create("configmaps", ns, n - 20, template("configmaps"))
    server.bulk_create("configmaps", ns, 20, template("configmaps"), prefix="hot-")


def latency_run(
    server: BenchServer,
    peer: Peer,
    ns: str,
    n: int,
    sizes: Sizes,
    concurrency: int,
    reconcile_ms: float,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    rate, hot_rate = 800, 200  # 1k writes/s: 800/s round-robin over all keys, 200/s over 20 hot keys
    run = PeerRun(
        peer,
        server.kubeconfig,
        ns,
        mode="controller",
        concurrency=concurrency,
        reconcile_ms=reconcile_ms,
        env={**peer_env(peer, n), **(env or {})},
    )
    with run:
        try:
            run.wait_synced(sizes.sync_timeout)
        except PeerTimeout as exc:
            return failed_row(peer, exc, run)
        run.wait_events(n, timeout=sizes.sync_timeout)  # the initial reconcile of every object
        base = run.wait_quiet(1.0, 30)
        count = int(rate * sizes.latency_seconds)
        hot = int(hot_rate * sizes.latency_seconds)
        cpu0, t0 = run.cpu_seconds(), time.time()
        server.reset_stalls()
        a = server.churn("configmaps", ns, count, rate)
        b = server.churn("configmaps", ns, hot, hot_rate, prefix="hot-")
        server.wait_churn(a)
        server.wait_churn(b)
        reconciles = run.wait_quiet(1.0, 30) - base
        stall = server.stall_max_ms()
        t1 = time.time()
        cpu = run.cpu_seconds() - cpu0
        windows = [w for w in run.windows(t0, t1 + 1.0) if w.get("lag_p99") is not None]
        weighted = sorted((w["lag_p50"], w["window"]) for w in windows)
        total = sum(c for _, c in weighted)
        p50, acc = None, 0
        for v, c in weighted:
            acc += c
            if acc * 2 >= total:
                p50 = v
                break
        writes = count + hot
        return {
            "peer": peer.name,
            "concurrency": concurrency,
            "reconcile_ms": reconcile_ms,
            "writes": writes,
            "reconciles": reconciles,
            "p50_ms": None if p50 is None else round(p50 * 1e3, 2),
            "p99_ms": round(max(w["lag_p99"] for w in windows) * 1e3, 2) if windows else None,
            "dedup": round(1 - reconciles / writes, 3),
            "cpu_us_per_reconcile": round(cpu / max(1, reconciles) * 1e6, 1),
            "server_stall_ms": stall,
        }


def s3_latency(server: BenchServer, peers: list[Peer], sizes: Sizes) -> dict[str, Any]:
    ns, n = "s3", sizes.latency_cached
    _populate(server, ns, n)
    rows: list[dict[str, Any]] = []
    for peer in peers:
        if not peer.controller:
            continue
        # kopf has no concurrency limit (one worker per object): one run per reconciler.
        concurrencies = sizes.latency_concurrency if peer.name != "kopf" else (0,)
        for ms in sizes.latency_reconcile_ms:
            for c in concurrencies:
                rows.append(latency_run(server, peer, ns, n, sizes, c, ms))
    notes = [
        "p50/p99: from the server committing a write (emit stamp) to the reconcile "
        "starting; p99 is the worst one-second window's p99, p50 the event-weighted median "
        "of window medians. dedup = 1 - reconciles/writes. concurrency 0 = kopf's "
        "unbounded per-object workers. server_stall_ms: the API server's longest event-loop "
        "stall during the run (a late wake-up of a 5 ms ticker): a spike every peer shares."
    ]
    summary: dict[str, Any] = {}
    bounded = [p for p in peers if p.controller and p.name != "kopf"]
    if sizes.latency_cpu_rounds and bounded:
        summary["cpu_rounds"] = cpu_rounds(server, bounded, ns, n, sizes)
        medians = ", ".join(f"{name} {cpu}" for name, cpu in summary["cpu_rounds"]["median"].items())
        notes.append(
            f"CPU per reconcile at c=8 (no-op), median of {sizes.latency_cpu_rounds} more rounds over "
            f"these peers in rotating order (one run's CPU drifts by up to a quarter between runs of the "
            f"same code on this machine): {medians} us."
            + "".join(
                f" kube-runtime over {name} per round: {', '.join(map(str, r['per_round']))} "
                f"(median {r['median']})."
                for name, r in summary["cpu_rounds"]["ours_over"].items()
            )
        )
    counted = _instructions_by_peer(server, bounded, sizes)
    if counted:
        summary["instructions"] = counted
        shown = ", ".join(
            f"{name} {count:,}"
            if count is not None
            else f"{name}: not counted (the run failed under valgrind)"
            for name, count in counted.items()
        )
        notes.append(
            f"Instructions per no-op reconcile under valgrind (callgrind, c=8, {sizes.instructions_writes} "
            f"writes at {sizes.instructions_rate}/s to {sizes.instructions_cached} cached objects, start-up "
            f"and sync excluded): {shown}. Unlike CPU time, a count does not depend on the machine, so it "
            "compares runs on different machines; CPU per instruction differs between peers (an "
            "interpreter against compiled code), so the CPU ratio is not the count's ratio."
        )
    return {
        "title": f"S3 reconcile scheduling latency ({n} cached, 1k writes/s, 20 hot keys)",
        "rows": rows,
        "summary": summary,
        "notes": notes,
    }


def cpu_rounds(server: BenchServer, peers: list[Peer], ns: str, n: int, sizes: Sizes) -> dict[str, Any]:
    """CPU per reconcile of each peer at c=8 (no-op) over ``sizes.latency_cpu_rounds`` rounds, the
    peers' order rotated by one each round so that no peer always runs first or last: each peer's
    values and median, and ``kube-runtime``'s ratio to every other peer within each round (a
    failed run gives no value)."""
    values: dict[str, list[float]] = {peer.name: [] for peer in peers}
    by_round: list[dict[str, float]] = []
    for round_ in range(sizes.latency_cpu_rounds):
        shift = round_ % len(peers)
        this_round: dict[str, float] = {}
        for peer in peers[shift:] + peers[:shift]:
            cpu = latency_run(server, peer, ns, n, sizes, 8, 0.0).get("cpu_us_per_reconcile")
            if cpu:
                values[peer.name].append(float(cpu))
                this_round[peer.name] = float(cpu)
        by_round.append(this_round)
    ratios: dict[str, list[float]] = {}
    for this_round in by_round:
        ours = this_round.get("kube-runtime")
        for name, cpu in this_round.items():
            if ours is not None and name != "kube-runtime":
                ratios.setdefault(name, []).append(round(ours / cpu, 2))
    return {
        "rounds": sizes.latency_cpu_rounds,
        "cpu_us": values,
        "median": {name: round(statistics.median(v), 1) for name, v in values.items() if v},
        "ours_over": {
            name: {"per_round": r, "median": round(statistics.median(r), 2)} for name, r in ratios.items()
        },
    }


def _can_count_instructions() -> bool:
    """Whether valgrind's callgrind and its control tool are installed."""
    return bool(shutil.which("valgrind") and shutil.which("callgrind_control"))


def _instructions_by_peer(server: BenchServer, peers: list[Peer], sizes: Sizes) -> dict[str, int | None]:
    """Each peer's instructions per no-op reconcile at c=8 (``None``: its run failed under
    valgrind); empty without valgrind."""
    if not _can_count_instructions() or not peers:
        return {}
    ns = "s3-instructions"
    server.bulk_create("configmaps", ns, sizes.instructions_cached, template("configmaps"))
    counted: dict[str, int | None] = {}
    for peer in peers:
        try:
            count = instructions_per_reconcile(
                server, peer, ns, sizes, peer_env(peer, sizes.instructions_cached)
            )
        except (PeerTimeout, subprocess.SubprocessError, OSError):
            count = None
        counted[peer.name] = None if count is None else round(count)
    return counted


def s6_observability(server: BenchServer, peers: list[Peer], sizes: Sizes) -> dict[str, Any]:
    """S3 at c=8 with the built-in metrics and tracing off and on, in interleaved pairs.

    One run's CPU per reconcile varies by more than the overhead between runs of the same code on
    this machine, so the added cost is the median of the pairs' differences (each pair runs back to
    back). CPU per reconcile also drifts from one run to the next (on this machine it rose by a
    quarter over three runs of the same code), so the pairs alternate their order (off first, then
    on first): a drift that would count against whichever runs second counts against each half of
    the pairs."""
    ours = [p for p in peers if p.name == "kube-runtime"]
    rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    if ours:
        ns, n = "s6", sizes.latency_cached
        _populate(server, ns, n)
        for pair in range(1, sizes.observability_rounds + 1):
            order = list(_OBSERVE.items())
            for mode, env in order if pair % 2 else order[::-1]:
                row = latency_run(server, ours[0], ns, n, sizes, 8, 0.0, env=env)
                row["observability"] = mode
                row["pair"] = pair
                rows.append(row)
        summary = observability_summary(rows)
        if _can_count_instructions():
            ins_ns = "s6-instructions"
            server.bulk_create("configmaps", ins_ns, sizes.instructions_cached, template("configmaps"))
            counted = {
                mode: instructions_per_reconcile(server, ours[0], ins_ns, sizes, env)
                for mode, env in {**_OBSERVE, **_OBSERVE_HALVES}.items()
            }
            off = counted["off"]
            if off and counted["on"]:
                summary["instructions"] = {"off": round(off)}
                for mode in ("on", *_OBSERVE_HALVES):
                    count = counted[mode]
                    if count:
                        summary["instructions"][mode] = round(count)
                        summary["instructions"][f"{mode}_added"] = round(count - off)
                summary["instructions"]["added_pct"] = round((counted["on"] / off - 1) * 100, 1)
    micro = subprocess.run(
        pinned([sys.executable, str(BENCHES / "bench_observe.py"), "--quick"]),
        capture_output=True,
        text=True,
        timeout=300,
    )
    notes = ["bench_observe.py --quick (in-process, per reconcile):"]
    if "instructions" in summary:
        ins = summary["instructions"]
        notes.insert(
            0,
            f"Instructions per reconcile under valgrind (callgrind, counted over {sizes.instructions_writes} "
            f"writes at {sizes.instructions_rate}/s to {sizes.instructions_cached} cached objects, start-up "
            f"and sync excluded): off {ins['off']:,}, on {ins['on']:,} ({ins['added_pct']:+}%)"
            + "".join(f"; {half} alone +{ins[half + '_added']:,}" for half in _OBSERVE_HALVES if half in ins)
            + "; unlike CPU time, the same code gives the same count within 1%.",
        )
    if summary.get("pairs"):
        notes.insert(
            0,
            f"{summary['pairs']} interleaved off/on pairs (in alternating order): CPU per reconcile "
            f"off median {summary['off_median']} us, on median {summary['on_median']} us; added per pair "
            f"{', '.join(f'{a:+}' for a in summary['added'])} us, median {summary['added_median']:+} us.",
        )
    return {
        "title": "S6 observability overhead (S3 at c=8, no-op, metrics+tracing off vs on, default sampling)",
        "rows": rows,
        "summary": summary,
        "notes": notes,
        "verbatim": micro.stdout.strip() or micro.stderr.strip()[-2000:],
    }


def observability_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of S6's rows: off, on, and the added CPU per reconcile within each off/on pair."""
    by_pair: dict[int, dict[str, float]] = {}
    for row in rows:
        cpu = row.get("cpu_us_per_reconcile")
        if cpu is not None and row.get("observability") in ("off", "on"):
            by_pair.setdefault(int(row.get("pair", 1)), {})[row["observability"]] = float(cpu)
    pairs = [p for _, p in sorted(by_pair.items()) if len(p) == 2]
    if not pairs:
        return {}
    added = [round(p["on"] - p["off"], 1) for p in pairs]
    return {
        "pairs": len(pairs),
        "off_median": round(statistics.median(p["off"] for p in pairs), 1),
        "on_median": round(statistics.median(p["on"] for p in pairs), 1),
        "added": added,
        "added_median": round(statistics.median(added), 1),
    }


def instructions_per_reconcile(
    server: BenchServer, peer: Peer, ns: str, sizes: Sizes, env: dict[str, str]
) -> float | None:
    """Instructions the peer process executes per reconcile while the server writes, counted by
    valgrind's callgrind with instrumentation on only from the end of the initial reconciles to
    the last write's reconcile (``callgrind_control``), so imports, the sync and shutdown are not
    counted. ``None`` when the run fails. Slow: the peer runs about 50 times slower under valgrind,
    hence the small cache and write rate (``Sizes.instructions_*``)."""
    n = sizes.instructions_cached
    with tempfile.TemporaryDirectory(prefix="kr-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        tool = ("valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}")
        traced = dataclasses.replace(peer, argv=(*tool, *peer.argv))
        # Go's signal-based goroutine preemption breaks under valgrind (the controller-runtime peer
        # never syncs); preemption at function calls remains. Other peers ignore the variable.
        env = {"GODEBUG": "asyncpreemptoff=1", **env}
        run = PeerRun(traced, server.kubeconfig, ns, mode="controller", concurrency=8, env=env)
        with run:
            try:
                run.wait_synced(sizes.sync_timeout)
            except PeerTimeout:
                return None
            run.wait_events(n, timeout=sizes.sync_timeout)
            base = run.wait_quiet(2.0, 120)
            control = ["callgrind_control", "-i", "on", str(run.pid)]
            subprocess.run(control, check=True, capture_output=True, timeout=60)
            server.wait_churn(
                server.churn("configmaps", ns, sizes.instructions_writes, sizes.instructions_rate)
            )
            reconciles = run.wait_quiet(2.0, 120) - base
            for args in (("-i", "off"), ("-d",)):
                subprocess.run(
                    ["callgrind_control", *args, str(run.pid)], check=True, capture_output=True, timeout=60
                )
        dumps = sorted(Path(tmp).glob("callgrind.out.*"))
        totals = (
            [line for line in dumps[0].read_text().splitlines() if line.startswith("totals:")]
            if dumps
            else []
        )
        if not totals or reconciles <= 0:
            return None
        return int(totals[0].split()[1]) / reconciles
