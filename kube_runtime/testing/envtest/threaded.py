"""An :class:`Envtest` hosted on its own event loop in a worker thread (for shared pytest fixtures).

Guarantees: the control plane is stopped when the ``with`` block exits, whatever happened inside.
Pitfall: call async fault controls through :meth:`ThreadedEnvtest.run`/:meth:`ThreadedEnvtest.call`,
never by awaiting them on another loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from types import TracebackType
from typing import Any, ParamSpec, TypeVar

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from kube_runtime.testing.envtest.binaries import EnvtestBinaries, EnvtestError
from kube_runtime.testing.envtest.control_plane import Envtest

__all__ = ["ThreadedEnvtest"]


_P = ParamSpec("_P")
_T = TypeVar("_T")


class ThreadedEnvtest:
    """An :class:`Envtest` running on its own event loop in a worker thread, for shared pytest fixtures.

    ``with ThreadedEnvtest(binaries, **options) as hosted:`` starts the control plane and stops it on exit;
    ``hosted.env`` gives its URL, tokens and kubeconfig. Because the children belong to the worker thread's
    loop, one instance can serve tests on any event loop (a session- or module-scoped sync fixture does not
    tie every test to one anyio runner).

    Pitfalls: call the async fault controls through :meth:`run` (from async code; it waits in a worker
    thread, so the caller's loop keeps running, but it cannot be cancelled midway) or :meth:`call` (from
    sync code), never by awaiting them directly on another loop.
    """

    def __init__(self, binaries: EnvtestBinaries | None = None, **options: Any) -> None:
        self.env = Envtest(binaries, **options)
        self._stack: ExitStack | None = None
        self._portal: BlockingPortal | None = None

    def __enter__(self) -> ThreadedEnvtest:
        stack = ExitStack()
        try:
            self._portal = stack.enter_context(start_blocking_portal("asyncio"))
            stack.enter_context(self._portal.wrap_async_context_manager(self.env))
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._portal = self._stack, None, None
        if stack is not None:
            stack.close()

    def call(self, func: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``func(*args, **kwargs)`` on the envtest's loop and return its result (blocking)."""
        if self._portal is None:
            raise EnvtestError("envtest is not started")

        async def invoke() -> _T:
            return await func(*args, **kwargs)

        return self._portal.call(invoke)

    async def run(self, func: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Await ``func(*args, **kwargs)`` on the envtest's loop from another loop."""

        def invoke() -> _T:
            return self.call(func, *args, **kwargs)

        return await anyio.to_thread.run_sync(invoke)
