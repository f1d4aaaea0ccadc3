"""How long a live change waits behind a relisted backlog, with the priority queue on and off.

The embedded API server runs in its own process with ``--objects`` ConfigMaps. A controller
(concurrency ``--concurrency``, each reconcile awaiting ``--work`` seconds, as an API call would)
starts and lists them all: every object becomes due at once, at low priority. While that backlog
drains, ``--writes`` live writes (an annotation patch, each to an object far back in the list) are
made ``--spacing`` seconds apart. Then the server drops its watch history and closes the watch,
which resumes into 410 Gone and relists: the same again. A write's latency is from just before its
PATCH is sent to the start of the first reconcile that reads its new value. Printed per mode and
backlog: p50/max latency, how long the backlog took to drain, and the ratio of the medians.

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
OTHER_NAMESPACE = "bench-priority-other"
STAMP = "bench.kube-runtime.io/written-at"


class Phase:
    """One backlog: the live writes made while it drains and their latencies."""

    def __init__(self, name: str, offset: int) -> None:
        self.name = name
        self.offset = offset  # which objects this phase writes to (far back in the list order)
        self.started = anyio.Event()
        self.written: dict[str, float] = {}  # object name -> perf_counter before its PATCH
        self.latencies: list[float] = []
        self.reconciled = 0
        self.begun = 0.0
        self.drain = 0.0


async def run_mode(server: BenchServer, args: argparse.Namespace, *, priority_queue: bool) -> list[Phase]:
    phases = [Phase("start", 0), Phase("relist", 3)]
    current = phases[0]

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        now = time.perf_counter()
        phase = current
        if not phase.started.is_set():
            phase.started.set()
        meta = obj["metadata"]
        if meta["name"] in phase.written and (meta.get("annotations") or {}).get(STAMP):
            phase.latencies.append(now - phase.written.pop(meta["name"]))
        await anyio.sleep(args.work)
        return Action.await_change()

    async with Client.from_kubeconfig(str(server.kubeconfig)) as client:
        api: Api = Api(client, CONFIG_MAP, NAMESPACE)
        config = ControllerConfig(concurrency=args.concurrency, priority_queue=priority_queue)
        controller = Controller(api, name=f"bench-{priority_queue}").with_config(config)

        async def writer(phase: Phase) -> None:
            await phase.started.wait()
            await anyio.sleep(args.spacing)
            for i in range(args.writes):
                name = f"obj-{args.objects - 1 - phase.offset - i * 7}"
                phase.written[name] = time.perf_counter()
                patch = {"metadata": {"annotations": {STAMP: str(phase.written[name])}}}
                await api.patch(name, patch)
                await anyio.sleep(args.spacing)

        def force_relist() -> None:
            # A write the watch does not see, the history dropped, the watch closed: it resumes
            # from a resourceVersion older than the history and gets 410 Gone, so it relists.
            server.bulk_create(
                "configmaps", OTHER_NAMESPACE, 1, configmap_template(), prefix=f"bump-{time.time_ns()}-"
            )
            server.compact()
            server.close_watches()

        current.begun = time.perf_counter()
        async with controller.run(reconcile, None, None) as results, anyio.create_task_group() as tg:
            tg.start_soon(writer, current)
            async for item in results:
                if not isinstance(item, Reconciled):
                    continue
                current.reconciled += 1
                if current.reconciled >= args.objects and not current.drain:
                    current.drain = time.perf_counter() - current.begun
                if current.drain and len(current.latencies) == args.writes:
                    if current is phases[-1]:
                        break
                    current = phases[1]
                    current.begun = time.perf_counter()
                    tg.start_soon(writer, current)
                    await anyio.to_thread.run_sync(force_relist)
            tg.cancel_scope.cancel()
    return phases


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
    medians: dict[tuple[str, bool], float] = {}
    with BenchServer(cpu=0) as server:
        server.bulk_create("configmaps", NAMESPACE, args.objects, configmap_template())
        for priority_queue in (False, True):
            phases = anyio.run(lambda pq=priority_queue: run_mode(server, args, priority_queue=pq))
            label = "priority queue on " if priority_queue else "priority queue off"
            for phase in phases:
                lat = sorted(phase.latencies)
                medians[(phase.name, priority_queue)] = statistics.median(lat)
                print(
                    f"{label}, {phase.name:<6}: live write -> reconcile p50 "
                    f"{statistics.median(lat) * 1e3:8.1f} ms  max {lat[-1] * 1e3:8.1f} ms   "
                    f"backlog of {phase.reconciled:,} drained after {phase.drain:.2f} s"
                )
    for name in ("start", "relist"):
        print(f"p50 ratio off/on, {name}: {medians[(name, False)] / medians[(name, True)]:.1f}x")


if __name__ == "__main__":
    main()
