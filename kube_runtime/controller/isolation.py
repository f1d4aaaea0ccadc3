"""Awaiting a coroutine inside a context of its own, without a task of its own.

A task runs its coroutine in a copy of the spawner's context, so context variables a run sets
(the current reconcile, the current span, a caller's logging fields) die with it. A long-lived
worker that runs one message after another inline would leak them from one run into the next.
:func:`in_context` restores the task's guarantee at a fraction of a task's cost: every step of the
coroutine (each resumption by the event loop) runs inside ``context``, exactly as a task steps
its coroutine inside its own context.

Guarantees: values set during the run are visible only inside the run and to tasks and callbacks
it creates; the awaiting task's context is untouched; cancellation and exceptions pass through
unchanged. Pitfall: a context can be entered by one run at a time; pass a fresh copy per run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Generator
from contextvars import Context
from typing import Any, TypeVar

__all__ = ["in_context"]

R = TypeVar("R")


class _InContext(Generator[Any, Any, R]):
    """Steps the awaitable inside the context. Looks like the coroutine it wraps to anything that
    walks an await chain (``cr_frame``/``cr_await``: task dumps, debuggers)."""

    __slots__ = ("_awaitable", "_run", "_steps")

    def __init__(self, awaitable: Awaitable[R], context: Context) -> None:
        self._awaitable = awaitable
        self._run = context.run
        self._steps: Generator[Any, Any, R] = awaitable.__await__()

    def __await__(self) -> Generator[Any, Any, R]:
        return self

    def __next__(self) -> Any:
        # What an ``await`` resumed with ``None`` calls (every step an event loop drives); defined
        # here, not inherited from Generator's mixin, to step without a call through ``send``.
        return self._run(self._steps.send, None)

    def send(self, value: Any) -> Any:
        return self._run(self._steps.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:  # cancellation included
        if val is None and tb is None:
            return self._run(self._steps.throw, typ)
        return self._run(self._steps.throw, typ, val, tb)

    def close(self) -> None:
        self._run(self._steps.close)

    @property
    def cr_frame(self) -> Any:
        return getattr(self._awaitable, "cr_frame", None)

    @property
    def cr_await(self) -> Any:
        return getattr(self._awaitable, "cr_await", None)


def in_context(awaitable: Awaitable[R], context: Context) -> _InContext[R]:
    """An awaitable running ``awaitable`` (usually a coroutine) with ``context`` as its context."""
    return _InContext(awaitable, context)
