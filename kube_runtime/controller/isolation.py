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
from typing import Any, Generic, TypeVar

__all__ = ["in_context"]

R = TypeVar("R")


class _InContext(Generic[R]):
    __slots__ = ("_awaitable", "_context")

    def __init__(self, awaitable: Awaitable[R], context: Context) -> None:
        self._awaitable = awaitable
        self._context = context

    def __await__(self) -> Generator[Any, Any, R]:
        steps = self._awaitable.__await__()
        run = self._context.run
        send = steps.send
        throw = steps.throw
        value: Any = None
        error: BaseException | None = None
        while True:
            try:
                if error is None:
                    yielded = run(send, value)
                else:
                    pending, error = error, None
                    yielded = run(throw, pending)
            except StopIteration as stop:
                result: R = stop.value
                return result
            try:
                value = yield yielded
            except GeneratorExit:
                run(steps.close)
                raise
            except BaseException as exc:  # cancellation included: hand it to the coroutine
                value = None
                error = exc


def in_context(awaitable: Awaitable[R], context: Context) -> _InContext[R]:
    """An awaitable running ``awaitable`` (a coroutine, usually) with ``context`` as its context (see the module docs)."""
    return _InContext(awaitable, context)
