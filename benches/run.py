"""Run kube-runtime's benchmark suite side by side with the peers and write the results.

    python benches/run.py [--quick] [--scenarios 1,2,...] [--peers kube-runtime,kube-rs,...]

Starts the embedded API server pinned to CPU 0 and each peer pinned to CPU 1 (taskset), runs the
scenarios (1 cold sync, 2 steady ingest, 3 scheduling latency, 4 memory per object,
5 recovery, 6 observability overhead), prints the tables and writes
benches/results/<date>-<quick|full>.md and .json. Build the compiled peers first with
benches/build_peers.sh; a peer that cannot run here is listed in the results with the reason.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import latency
from harness import scenarios as sc
from harness.baseline import Baseline
from harness.envtest_sync import envtest_cold_sync
from harness.peers import PEERS, available_peers
from harness.report import add_ratios, machine, render, targets, tool_versions
from harness.server import BenchServer

# The quick mode's default peers: the slow Python ones (kopf, kubernetes_asyncio, kr8s)
# need minutes between them even at small N (kopf indexes about 60 objects/s); name them with --peers.
QUICK_PEERS = ("kube-runtime", "kube-rs", "controller-runtime", "official", "raw (gc off)")
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: the whole suite in about 3 minutes"
    )
    parser.add_argument("--scenarios", default="1,2,3,4,5,6", help="comma-separated scenario numbers")
    parser.add_argument(
        "--cold-sync",
        default=None,
        help="comma-separated object counts for scenario 1 (default: 10000,100000; quick: 1000)",
    )
    parser.add_argument(
        "--ingest-cached",
        type=int,
        default=None,
        help="objects cached during scenario 2 (default: 20000; quick: 1000)",
    )
    parser.add_argument(
        "--peers",
        default=None,
        help=f"comma-separated, from: {', '.join(PEERS)} "
        f"(default: all; with --quick: {', '.join(QUICK_PEERS)})",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="also run kube-runtime as of git revision REV (checked out in a temporary worktree) as the "
        "peer 'kube-runtime@REV', side by side with the working tree's",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--no-envtest", action="store_true", help="skip the real kube-apiserver run")
    args = parser.parse_args(argv)

    names = args.peers or ",".join(QUICK_PEERS if args.quick else PEERS)
    wanted = [s.strip() for s in names.split(",") if s.strip()]
    unknown = [p for p in wanted if p not in PEERS]
    if unknown:
        parser.error(f"unknown peers {unknown}; known: {list(PEERS)}")
    peers, unavailable = available_peers(wanted)
    baseline = Baseline(args.baseline) if args.baseline else None
    if baseline is not None:
        peers.append(baseline.peer())
    sizes = sc.Sizes.quick() if args.quick else sc.Sizes()
    if args.cold_sync:
        sizes = dataclasses.replace(sizes, cold_sync=tuple(int(n) for n in args.cold_sync.split(",")))
    if args.ingest_cached:
        sizes = dataclasses.replace(sizes, ingest_cached=args.ingest_cached)
    chosen = {int(s) for s in args.scenarios.split(",") if s.strip()}
    load_start, t_start = os.getloadavg(), time.time()
    date = datetime.datetime.now(datetime.UTC)
    results: dict[str, Any] = {}
    notes: list[str] = []
    with BenchServer(cpu=0) as server:
        steps: list[tuple[int, str, Callable[[], dict[str, Any]]]] = [
            (1, "s1", lambda: sc.s1_cold_sync(server, peers, sizes)),
            (2, "s2", lambda: sc.s2_ingest(server, peers, sizes)),
            (3, "s3", lambda: latency.s3_latency(server, peers, sizes)),
            (4, "s4", lambda: sc.s4_memory(server, peers, sizes, args.quick)),
            (5, "s5", lambda: sc.s5_recovery(server, peers, sizes)),
            (6, "s6", lambda: latency.s6_observability(server, peers, sizes)),
        ]
        for number, key, fn in steps:
            if number not in chosen:
                continue
            t0 = time.time()
            print(f"== scenario {number} ...", flush=True)
            try:
                results[key] = fn()
            except Exception as exc:
                results[key] = {
                    "title": f"S{number} failed",
                    "rows": [],
                    "notes": [f"{type(exc).__name__}: {exc}"],
                }
            add_ratios(key, results[key])
            results[key]["seconds"] = round(time.time() - t0, 1)
            print(f"   done in {results[key]['seconds']} s", flush=True)
    if 1 in chosen and not args.no_envtest:
        env_result, why = envtest_cold_sync(peers, 1_000 if args.quick else 10_000)
        if env_result is not None:
            add_ratios("s1", env_result)
            results["s1b"] = env_result
        else:
            notes.append(f"Real kube-apiserver cold sync not run: {why}")
    skipped = [p for p in PEERS if p not in wanted]
    if skipped:
        notes.append(f"Peers not selected for this run (pass --peers to include them): {', '.join(skipped)}.")
    if load_start[0] > 1.0:
        notes.append(
            f"The 1-minute load average was {load_start[0]:.2f} at start (other work on this machine): "
            "these figures are noisy; compare ratios within this run only."
        )
    meta = {
        "mode": "quick" if args.quick else "full",
        "date": date.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "wall_s": time.time() - t_start,
        "server_cpu": 0,
        "peer_cpu": 1,
        "versions": {**{p.name: p.version() for p in peers}, **tool_versions()},
        "unavailable": unavailable,
        "sizes": sizes.__dict__,
        "notes": notes,
    }
    checks = targets(results)
    text = render(meta, results, checks)
    print(text)
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        stem = f"{date.strftime('%Y-%m-%d')}-{meta['mode']}"
        if chosen != {1, 2, 3, 4, 5, 6}:  # a partial run does not overwrite the whole suite's file
            stem += "-s" + "".join(str(n) for n in sorted(chosen))
        if args.peers:
            stem += "-" + "-".join(p.split(" ")[0] for p in wanted)
        (args.out / f"{stem}.md").write_text(text)
        (args.out / f"{stem}.json").write_text(
            json.dumps({"meta": meta, "results": results, "targets": checks}, indent=1, default=str)
        )
        print(f"wrote {args.out / stem}.md and .json")
    return 0


if __name__ == "__main__":
    # SIGTERM unwinds like Ctrl-C, so the server and the running peer are stopped on the way out.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.exit(main())
