"""Task dumps list every task with its stack; the SIGUSR1 handler writes one and is removed on exit."""

from __future__ import annotations

import io
import os
import signal

import anyio

from kube_runtime.observe.taskdump import TaskDumpOnSignal, format_task_dump


async def stuck_reconciler(started: anyio.Event) -> None:
    started.set()
    await anyio.sleep_forever()


async def test_dump_names_the_task_and_where_it_waits() -> None:
    async with anyio.create_task_group() as tg:
        started = anyio.Event()
        tg.start_soon(stuck_reconciler, started, name="reconcile ConfigMap/stuck")
        await started.wait()
        dump = format_task_dump()
        tg.cancel_scope.cancel()
    assert "task 'reconcile ConfigMap/stuck' [pending]" in dump
    section = dump.split("task 'reconcile ConfigMap/stuck'")[1]
    assert "stuck_reconciler" in section
    assert "sleep_forever" in section


async def test_sigusr1_writes_a_dump_until_exit() -> None:
    out = io.StringIO()
    previous = signal.getsignal(signal.SIGUSR1)
    async with TaskDumpOnSignal(stream=out) as dumper:
        os.kill(os.getpid(), signal.SIGUSR1)
        with anyio.fail_after(10):
            while dumper.dumps == 0:  # noqa: ASYNC110 (the signal handler sets no event we could await)
                await anyio.sleep(0.01)
    assert "asyncio tasks" in out.getvalue()
    assert "test_sigusr1_writes_a_dump_until_exit" in out.getvalue()
    assert signal.getsignal(signal.SIGUSR1) == previous
