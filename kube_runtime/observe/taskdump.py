"""Asyncio task dumps for diagnosing stuck reconcilers (what tokio-console gives Rust users).

:func:`format_task_dump` lists every task of the running loop with its name, its coroutine, the
object it is reconciling (when it runs a reconcile) and where it is suspended. Get one:

* over HTTP: ``ObservabilityServer(..., enable_task_dump=True)`` serves ``/debug/tasks`` on the
  metrics address (behind the same authentication when metrics are secure);
* by signal: ``async with TaskDumpOnSignal():`` writes a dump to stderr on ``SIGUSR1``
  (``kill -USR1 <pid>``).

Both are off by default: a dump shows source paths and call stacks.
"""

from __future__ import annotations

import asyncio
import io
import linecache
import signal
import sys
from contextvars import Context
from types import TracebackType
from typing import Any, TextIO

import structlog

from kube_runtime.controller.context import current_reconcile
from kube_runtime.store.object_ref import ObjectRef

__all__ = ["TaskDumpOnSignal", "format_task_dump"]

log = structlog.get_logger(__name__)


def _reconcile_of(task: asyncio.Task[Any]) -> str | None:
    """The object a task is reconciling. Read from the task's context where Python exposes it
    (``Task.get_context()``, 3.12+); on 3.11, from the controller's reconcile frame in the task's
    await chain (its ``obj_ref``/``reason`` locals)."""
    get_context = getattr(task, "get_context", None)
    if callable(get_context):
        ctx: Context = get_context()
        info = ctx.run(current_reconcile)
        if info is not None:
            return f"{info.obj_ref} ({info.reason}, reconcile_id {info.reconcile_id})"
        return None
    current: Any = task.get_coro()
    for _ in range(64):
        frame = getattr(current, "cr_frame", None) or getattr(current, "gi_frame", None)
        if frame is None:
            return None
        obj_ref = frame.f_locals.get("obj_ref")
        if isinstance(obj_ref, ObjectRef) and "reason" in frame.f_locals:
            return f"{obj_ref} ({frame.f_locals['reason']})"
        current = getattr(current, "cr_await", None) or getattr(current, "gi_yieldfrom", None)
    return None


def _await_chain(awaitable: object, max_frames: int) -> list[str]:
    """Where a suspended coroutine waits, outermost first: follows ``cr_await``/``gi_yieldfrom``/
    ``ag_await`` down the chain (``Task.get_stack`` shows only the outermost frame)."""
    lines: list[str] = []
    current: Any = awaitable
    while current is not None and len(lines) < 2 * max_frames:
        frame = (
            getattr(current, "cr_frame", None)
            or getattr(current, "gi_frame", None)
            or getattr(current, "ag_frame", None)
        )
        if frame is None:
            lines.append(f"awaiting {type(current).__name__}")
            break
        code = frame.f_code
        lines.append(f'File "{code.co_filename}", line {frame.f_lineno}, in {code.co_name}')
        source = linecache.getline(code.co_filename, frame.f_lineno).strip()
        if source:
            lines.append(f"  {source}")
        current = (
            getattr(current, "cr_await", None)
            or getattr(current, "gi_yieldfrom", None)
            or getattr(current, "ag_await", None)
        )
    return lines


def format_task_dump(*, max_frames: int = 30) -> str:
    """A text dump of every task of the running event loop, sorted by task name, each with at most
    ``max_frames`` frames. Must be called from the loop's thread."""
    tasks = sorted(asyncio.all_tasks(), key=lambda t: t.get_name())
    out = io.StringIO()
    out.write(f"{len(tasks)} asyncio tasks\n")
    for task in tasks:
        coro = task.get_coro()
        coro_name = getattr(coro, "__qualname__", repr(coro))
        state = "done" if task.done() else "pending"
        out.write(f"\n--- task {task.get_name()!r} [{state}] coroutine {coro_name}\n")
        reconciling = _reconcile_of(task)
        if reconciling:
            out.write(f"    reconciling {reconciling}\n")
        for line in _await_chain(coro, max_frames):
            out.write(f"    {line}\n")
    return out.getvalue()


class TaskDumpOnSignal:
    """``async with TaskDumpOnSignal():`` dumps all tasks to ``stream`` (default stderr) each
    time the process receives ``signum`` (default ``SIGUSR1``), until the block exits.

    The handler runs on the event loop (``loop.add_signal_handler``), so it sees consistent task
    state; a loop blocked by synchronous code cannot answer, which is itself the diagnosis (use
    ``py-spy dump`` then). Unix only; the previous handler is restored on exit.
    """

    def __init__(self, signum: int = signal.SIGUSR1, *, stream: TextIO | None = None) -> None:
        self.signum = signum
        self.stream = stream
        self.dumps = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: Any = None

    def _dump(self) -> None:
        text = format_task_dump()
        stream = self.stream or sys.stderr
        stream.write(text)
        stream.flush()
        self.dumps += 1
        log.info("wrote asyncio task dump", signal=signal.Signals(self.signum).name)

    async def __aenter__(self) -> TaskDumpOnSignal:
        self._loop = asyncio.get_running_loop()
        self._previous = signal.getsignal(self.signum)
        self._loop.add_signal_handler(self.signum, self._dump)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._loop is not None:
            self._loop.remove_signal_handler(self.signum)
            self._loop = None
            if self._previous is not None:
                signal.signal(self.signum, self._previous)
