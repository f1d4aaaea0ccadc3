"""Background tasks owned by an async context manager, without changing the body's errors.

anyio's task group wraps an exception raised in its body into an ``ExceptionGroup``. For
``async with EventLoopLagMonitor(): ...`` that would turn a plain ``ValueError`` from the user's
code into a group, so :class:`BackgroundTasks` cancels its tasks when the body ends and lets the
body's own exception through unchanged; errors of the background tasks still surface (grouped).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

__all__ = ["BackgroundTasks"]


class BackgroundTasks:
    """A task group that lives from ``__aenter__`` to ``__aexit__``; tasks are cancelled at exit."""

    def __init__(self) -> None:
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> BackgroundTasks:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        return self

    def start_soon(self, fn: Callable[[], Coroutine[Any, Any, Any]], *, name: str) -> None:
        assert self._tg is not None, "BackgroundTasks used outside 'async with'"
        self._tg.start_soon(fn, name=name)

    async def start(self, fn: Callable[..., Coroutine[Any, Any, Any]], *, name: str) -> Any:
        """Start ``fn(task_status=...)`` and wait until it reports started; returns its value."""
        assert self._tg is not None, "BackgroundTasks used outside 'async with'"
        return await self._tg.start(fn, name=name)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        tg, self._tg = self._tg, None
        assert tg is not None
        tg.cancel_scope.cancel()
        if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
            await tg.__aexit__(None, None, None)
            return None  # the body's exception propagates as it was
        return await tg.__aexit__(exc_type, exc, tb)
