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

    python benches/bench_controller.py               # N = 20,000
    python benches/bench_controller.py --objects 5000
"""

from __future__ import annotations

import argparse
import asyncio
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
from kube_runtime.watcher import Init, InitApply, InitDone

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
    args = parser.parse_args()
    n = args.objects
    bench_reference(n)
    bench_scheduler(n)
    bench_runner(n, 0)
    bench_runner(n, 16)
    bench_controller(n, 0)
    bench_controller(n, 16)


if __name__ == "__main__":
    main()
