"""The one helper for background tasks owned by an async context manager.

``async with`` objects that run tasks while the caller's body runs (a controller run, a leader
elector, a shared reflector, the observability server) hold them in a :class:`BackgroundTasks`:
an anyio task group entered in ``__aenter__`` and left in ``__aexit__``, which cancels the tasks
still running when the body ends.

Exception behaviour (the one rule every owner shares):

* An exception raised in the body propagates as it was raised, never wrapped in an
  ``ExceptionGroup`` (anyio's task group wraps it; ``except ValueError`` around
  ``async with ...:`` would then miss it). Background failures that happened meanwhile are
  attached to it as notes, not lost.
* A background task's failure ends the body (the group's scope is cancelled) and is raised as
  itself when it is the only one; several at once are raised as a ``BaseExceptionGroup``.
* Cancellation (of the body or of an enclosing scope) propagates as cancellation.

Pitfalls: enter and leave it in the same task (the task group's cancel scope requires it); a task
that swallows cancellation keeps ``__aexit__`` waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

__all__ = ["BackgroundTasks"]


class BackgroundTasks:
    """A task group living from ``__aenter__`` to ``__aexit__``; tasks are cancelled at exit."""

    __slots__ = ("_tg",)

    def __init__(self) -> None:
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> BackgroundTasks:
        if self._tg is not None:
            raise RuntimeError("BackgroundTasks entered twice")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    def start_soon(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str) -> None:
        assert self._tg is not None, "BackgroundTasks used outside 'async with'"
        self._tg.start_soon(fn, *args, name=name)

    async def start(self, fn: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str) -> Any:
        """Start ``fn(*args, task_status=...)`` and wait until it reports started; returns its value."""
        assert self._tg is not None, "BackgroundTasks used outside 'async with'"
        return await self._tg.start(fn, *args, name=name)

    def cancel(self) -> None:
        """Cancel the tasks now (the body, if it awaits, is cancelled with them)."""
        assert self._tg is not None, "BackgroundTasks used outside 'async with'"
        self._tg.cancel_scope.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None
        tg.cancel_scope.cancel()
        if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
            try:
                await tg.__aexit__(None, None, None)
            except BaseExceptionGroup as group:
                for failure in _failures(group):
                    exc.add_note(f"a background task failed meanwhile: {failure!r}")
            return None  # the body's exception propagates as it was
        try:
            return await tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            leaves = _leaves(group)
            if len(leaves) == 1 and not isinstance(leaves[0], anyio.get_cancelled_exc_class()):
                raise leaves[0] from None
            raise


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The group's exceptions, nested groups flattened."""
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


def _failures(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    """The group's exceptions other than cancellation, nested groups flattened."""
    cancelled = anyio.get_cancelled_exc_class()
    return [exc for exc in _leaves(group) if not isinstance(exc, cancelled)]
