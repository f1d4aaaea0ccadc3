"""How long a live change waits behind a relisted backlog, with the priority queue on and off.

The embedded API server runs in its own process with ``--objects`` ConfigMaps. A controller
(concurrency ``--concurrency``, each reconcile awaiting ``--work`` seconds, as an API call would)
starts and lists them all: every object becomes due at once, at low priority. While that backlog
drains, ``--writes`` live writes (an annotation patch, each to an object far back in the list) are
made ``--spacing`` seconds apart. A write's latency is from just before its PATCH is sent to the
start of the first reconcile that reads its new value. Printed per mode: p50/max latency, how
long the backlog took to drain, and the ratio of the medians.

    python benches/bench_priority.py                    # 10,000 objects, 16 workers, 5 ms reconciles
    python benches/bench_priority.py --objects 2000 --work 0.01
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import anyio

_HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(_HERE), str(_HERE.parent)]  # the harness, and this checkout's kube_runtime

from harness.server import BenchServer  # noqa: E402
from harness.workload import configmap_template  # noqa: E402

from kube_runtime.client import Api, Client  # noqa: E402
from kube_runtime.client.resource import ApiResource  # noqa: E402
from kube_runtime.controller import Action, Controller, ControllerConfig, Reconciled  # noqa: E402

CONFIG_MAP = ApiResource.builtin("ConfigMap")
NAMESPACE = "bench-priority"
STAMP = "bench.kube-runtime.io/written-at"


async def run_mode(kubeconfig: Path, args: argparse.Namespace, *, priority_queue: bool) -> dict[str, Any]:
    written: dict[str, float] = {}  # object name -> perf_counter before its PATCH
    latencies: list[float] = []
    reconciled = 0
    drained = anyio.Event()
    first_start: list[float] = []
    started_reconciling = anyio.Event()

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        nonlocal reconciled
        now = time.perf_counter()
        if not first_start:
            first_start.append(now)
            started_reconciling.set()
        meta = obj["metadata"]
        stamp = (meta.get("annotations") or {}).get(STAMP)
        if stamp is not None and meta["name"] in written:
            latencies.append(now - written.pop(meta["name"]))
        await anyio.sleep(args.work)
        return Action.await_change()

    async with Client.from_kubeconfig(str(kubeconfig)) as client:
        api: Api = Api(client, CONFIG_MAP, NAMESPACE)
        config = ControllerConfig(concurrency=args.concurrency, priority_queue=priority_queue)
        controller = Controller(api, name=f"bench-{priority_queue}").with_config(config)
        started = time.perf_counter()
        drain_seconds = 0.0

        async def writer() -> None:
            await started_reconciling.wait()
            await anyio.sleep(args.spacing)
            for i in range(args.writes):
                # Far back in the list order: the last objects the relist yields.
                name = f"obj-{args.objects - 1 - i * 7}"
                written[name] = time.perf_counter()
                patch = {"metadata": {"annotations": {STAMP: str(written[name])}}}
                await api.patch(name, patch)
                await anyio.sleep(args.spacing)

        async with controller.run(reconcile, None, None) as results, anyio.create_task_group() as tg:
            tg.start_soon(writer)
            async for item in results:
                if isinstance(item, Reconciled):
                    reconciled += 1
                    if reconciled >= args.objects and not drained.is_set():
                        drain_seconds = time.perf_counter() - started
                        drained.set()
                if drained.is_set() and len(latencies) == args.writes:
                    break
            tg.cancel_scope.cancel()
    return {"latencies": latencies, "drain": drain_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--work", type=float, default=0.005, help="seconds each reconcile awaits")
    parser.add_argument("--writes", type=int, default=10)
    parser.add_argument("--spacing", type=float, default=0.2, help="seconds between live writes")
    args = parser.parse_args()
    print(
        f"{args.objects:,} ConfigMaps listed at start; concurrency {args.concurrency}; "
        f"{args.work * 1e3:g} ms per reconcile; {args.writes} live writes {args.spacing:g} s apart"
    )
    medians = {}
    with BenchServer(cpu=0) as server:
        server.bulk_create("configmaps", NAMESPACE, args.objects, configmap_template())
        for priority_queue in (False, True):
            out = anyio.run(lambda pq=priority_queue: run_mode(server.kubeconfig, args, priority_queue=pq))
            lat = sorted(out["latencies"])
            medians[priority_queue] = statistics.median(lat)
            label = "priority queue on " if priority_queue else "priority queue off"
            print(
                f"{label}: live write -> reconcile p50 {statistics.median(lat) * 1e3:8.1f} ms  "
                f"max {lat[-1] * 1e3:8.1f} ms   backlog drained after {out['drain']:.2f} s"
            )
    print(f"p50 ratio off/on: {medians[False] / medians[True]:.1f}x")


if __name__ == "__main__":
    main()
