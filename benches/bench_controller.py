"""What the scheduler, runner and controller cost per operation (CPU, not wall: the machine is shared).

Phases, each on a plain asyncio loop with in-memory inputs (no HTTP, so the figures are the
runtime's own overhead):

* scheduler: schedule/pop of N distinct messages, and N re-requests of one pending message;
* runner: N trivial runs through the runner (unbounded, then concurrency 16);
* reference: spawning N anyio tasks (an unbounded runner starts one per run; with a limit, a
  fixed pool of workers runs them), to scale the rest;
* controller: N objects x 3 reconciles each through the whole controller (store lookup, span,
  contextvar, metrics, requeue channel, result stream), the kube-rs #926 shape, unbounded and at
  the default concurrency. Unbounded keeps N tasks alive at once, and Python's cyclic GC then
  costs a large share (about 40% at N = 20,000).
* latency (``--latency``): S3's shape in process, without HTTP: ``--cached`` objects in the store,
  writes at ``--rate`` per second to 20 hot keys (each applied to the store, then triggering the
  controller, as a watch event does), concurrency 8, a no-op reconcile. Each write carries its
  ``perf_counter`` stamp; a reconcile's latency is its start minus the stamp of the version it
  reads, as S3 measures from the server's commit. It reports p50/p99/max, the CPU per reconcile,
  the collector's pauses (and how many of the slowest 1% of reconciles waited through one) and
  the gaps in the writer's own pacing (the event loop was busy or descheduled), once with the
  compact store (the default) and once with the dict store and its FreezeAfterSync policy.

    python benches/bench_controller.py               # N = 20,000
    python benches/bench_controller.py --objects 5000
    python benches/bench_controller.py --latency     # 10k cached, 1k writes/s, 10k writes
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from kube_runtime.client.resource import ApiResource
from kube_runtime.controller import Action, Controller, Reconciled, ReconcileRequest, Scheduler, runner
from kube_runtime.controller.scheduler import ScheduleRequest
from kube_runtime.store import store
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.watcher import Apply, Init, InitApply, InitDone

CONFIG_MAP = ApiResource.builtin("ConfigMap")


def cpu(label: str, count: int, fn: Callable[[], Any]) -> None:
    gc.collect()
    start = time.process_time()
    fn()
    spent = time.process_time() - start
    print(f"{label:<58} {count:>9,} ops  {spent:7.3f} s CPU  {spent / count * 1e6:8.2f} us/op")


def bench_scheduler(n: int) -> None:
    refs = [ReconcileRequest(ObjectRef("ConfigMap", f"cm-{i}", "default")) for i in range(n)]

    def distinct() -> None:
        s: Scheduler[ReconcileRequest] = Scheduler()
        for i, r in enumerate(refs):
            s.schedule(r, float(i % 100), 0.0)
        while s.pop(1e9) is not None:
            pass

    def duplicates() -> None:
        s: Scheduler[ReconcileRequest] = Scheduler()
        s.schedule(refs[0], 0.0, 0.0)
        s.pop(0.0, lambda m: False)  # parked behind its running instance
        for _ in range(n):
            s.schedule(refs[0], 0.0, 0.0)

    cpu("scheduler: schedule + pop, distinct messages", n, distinct)
    cpu("scheduler: request for a pending message (dropped)", n, duplicates)


def bench_runner(n: int, concurrency: int) -> None:
    async def run_msg(message: int) -> int:
        return message

    async def main() -> None:
        finished = anyio.Event()

        async def requests() -> AsyncIterator[ScheduleRequest[int]]:
            for i in range(n):
                yield ScheduleRequest(i, 0.0)
            await finished.wait()  # the runner ends with its input: keep it open until all ran

        seen = 0
        async with runner(requests(), run_msg, concurrency=concurrency) as outputs:
            async for _ in outputs:
                seen += 1
                if seen == n:
                    finished.set()
        assert seen == n

    cpu(f"runner: trivial runs (concurrency {concurrency or 'unbounded'})", n, lambda: asyncio.run(main()))


def bench_controller(n: int, concurrency: int) -> None:
    objects = [
        {"metadata": {"name": f"cm-{i}", "namespace": "default", "resourceVersion": "1", "uid": str(i)}}
        for i in range(n)
    ]
    counts: dict[str, int] = {}

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        name = obj["metadata"]["name"]
        counts[name] = counts.get(name, 0) + 1
        return Action.requeue(0) if counts[name] < 3 else Action.await_change()

    async def main() -> None:
        reader, writer = store(CONFIG_MAP, gc_policy=None)

        async def stream() -> AsyncIterator[Any]:
            writer.apply_watcher_event(Init())
            for obj in objects:
                writer.apply_watcher_event(InitApply(obj))
            writer.apply_watcher_event(InitDone())
            for obj in objects:
                yield obj
            await anyio.sleep_forever()

        controller = Controller.for_stream(CONFIG_MAP, stream(), reader).with_config(concurrency=concurrency)
        done = 0
        async with controller.run(reconcile, None, None) as results:
            async for item in results:
                if isinstance(item, Reconciled):
                    done += 1
                    if done == 3 * n:
                        break

    label = f"controller: reconciles incl. requeue (concurrency {concurrency or 'unbounded'})"
    counts.clear()
    cpu(label, 3 * n, lambda: asyncio.run(main()))


def bench_latency(cached: int, rate: float, writes: int, *, compact: bool) -> None:
    """Trigger-to-start latency at a steady write rate (see the module docs)."""
    hot = 20
    base: list[dict[str, Any]] = [
        {
            "metadata": {
                "name": f"cm-{i}",
                "namespace": "default",
                "resourceVersion": "1",
                "uid": str(i),
                "labels": {"app": "bench"},
                "annotations": {"stamp": "0"},
            },
            "data": {"payload": "y" * 128},
        }
        for i in range(cached)
    ]
    lags: list[float] = []
    starts: list[float] = []
    gc_pauses: list[tuple[float, float]] = []
    pacing_gaps: list[float] = []
    gc_start = 0.0
    cpu = [0.0, 0.0]  # process CPU at the first write and after the last reconcile
    initial_done: anyio.Event | None = None

    def on_gc(phase: str, info: dict[str, int]) -> None:
        nonlocal gc_start
        if phase == "start":
            gc_start = time.perf_counter()
        else:
            gc_pauses.append((gc_start, time.perf_counter()))

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        now = time.perf_counter()
        lags.append(now - float(obj["metadata"]["annotations"]["stamp"]))
        starts.append(now)
        if len(starts) == cached and initial_done is not None:
            initial_done.set()
        return Action.await_change()

    async def main() -> None:
        nonlocal initial_done
        initial_done = anyio.Event()
        reader, writer = store(CONFIG_MAP, compact=compact)
        done = anyio.Event()

        async def stream() -> AsyncIterator[Any]:
            writer.apply_watcher_event(Init())
            for obj in base:
                writer.apply_watcher_event(InitApply(obj))
            writer.apply_watcher_event(InitDone())
            for obj in base:  # the initial reconcile of every listed object, as after a watch's list
                yield obj
            await initial_done.wait()  # the initial reconciles of every cached object
            await anyio.sleep(0.1)
            lags.clear()
            starts.clear()
            gc_pauses.clear()
            cpu[0] = time.process_time()
            t0 = time.perf_counter()
            for i in range(writes):
                target = t0 + i / rate
                now = time.perf_counter()
                if now < target:
                    await anyio.sleep(target - now)
                elif now - target > 0.002:
                    pacing_gaps.append(now - target)
                obj = copy.deepcopy(base[i % hot])
                obj["metadata"]["resourceVersion"] = str(i + 2)
                obj["metadata"]["annotations"]["stamp"] = repr(time.perf_counter())
                writer.apply_watcher_event(Apply(obj))
                yield obj
            await anyio.sleep(0.5)
            cpu[1] = time.process_time()
            done.set()
            await anyio.sleep_forever()

        controller = Controller.for_stream(CONFIG_MAP, stream(), reader).with_config(concurrency=8)
        async with controller.run(reconcile, None, None) as results:
            with anyio.CancelScope() as scope:

                async def stop() -> None:
                    await done.wait()
                    scope.cancel()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(stop)
                    async for _ in results:
                        pass

    gc.collect()
    gc.callbacks.append(on_gc)
    try:
        asyncio.run(main())
    finally:
        gc.callbacks.remove(on_gc)
        gc.unfreeze()
    cpu_spent = cpu[1] - cpu[0]
    ordered = sorted(lags)
    count = len(ordered)
    p50, p99 = ordered[count // 2], ordered[min(count - 1, int(count * 0.99))]
    slow = [(start, lag) for start, lag in zip(starts, lags, strict=True) if lag >= p99]
    through_gc = sum(1 for start, lag in slow if any(g0 < start and g1 > start - lag for g0, g1 in gc_pauses))
    longest_gc = max((g1 - g0 for g0, g1 in gc_pauses), default=0.0)
    kind = "compact store (default)" if compact else "dict store + FreezeAfterSync"
    print(
        f"latency, {kind}: {cached:,} cached, {rate:,.0f} writes/s x {writes:,}, concurrency 8: "
        f"{count:,} reconciles, p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms, "
        f"max {ordered[-1] * 1e3:.2f} ms; "
        f"{cpu_spent / max(count, 1) * 1e6:.0f} us CPU per reconcile (writer and its deep copies included)"
    )
    print(
        f"  collector: {len(gc_pauses)} passes, longest {longest_gc * 1e3:.2f} ms; the slowest 1% "
        f"({len(slow)}) that waited through one: {through_gc}; writer pacing gaps > 2 ms: "
        f"{len(pacing_gaps)} (longest {max(pacing_gaps, default=0.0) * 1e3:.1f} ms)"
    )


def bench_reference(n: int) -> None:
    """What one task costs on this machine, to read the figures above against."""

    async def nothing() -> None:
        pass

    async def spawn() -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(nothing)

    cpu("reference: anyio task spawn + finish", n, lambda: asyncio.run(spawn()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--latency", action="store_true", help="only the latency phase")
    parser.add_argument("--cached", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1_000.0)
    parser.add_argument("--writes", type=int, default=10_000)
    args = parser.parse_args()
    if args.latency:
        for compact in (True, False):
            bench_latency(args.cached, args.rate, args.writes, compact=compact)
        return
    n = args.objects
    bench_reference(n)
    bench_scheduler(n)
    bench_runner(n, 0)
    bench_runner(n, 16)
    bench_controller(n, 0)
    bench_controller(n, 16)


if __name__ == "__main__":
    main()
