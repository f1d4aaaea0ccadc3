"""The graceful-shutdown deadline of a controller run (controller-runtime's ``GracefulShutdownTimeout``).

A graceful shutdown (first SIGTERM, ``graceful_shutdown_on``, ``ControllerRun.shutdown()``) lets
running reconciles finish. One that never does (a hung API call without a timeout, a deadlock)
would keep the process alive until the kubelet SIGKILLs it at the end of the pod's
``terminationGracePeriodSeconds``: no clean exit, no final log lines, spans not flushed. So a
graceful shutdown has a deadline: ``graceful_shutdown_timeout`` seconds after it started, the
reconciles still running are cancelled (a forceful shutdown), after one warning line naming them::

    {"event": "graceful shutdown timed out after 25s; cancelling 1 running reconcile(s): ...",
     "controller": "configmapgen", "cancelled": ["ConfigMapGenerator.v1.example.com/x.default"]}

Default :data:`DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT` (25 s), below Kubernetes' default grace period of
30 s (the Helm chart's ``terminationGracePeriodSeconds``), leaving time to close the watches, flush
spans and exit. ``None`` waits forever (the behaviour before the deadline existed); ``0`` cancels
running reconciles as soon as the graceful shutdown starts.

Pitfalls: cancellation reaches a reconcile at its next ``await``; one blocked in synchronous code
(or shielded from cancellation) still holds the process until it yields. The deadline runs on the
event loop's clock (the virtual clock in tests). Keep the timeout plus the time to close watches
(at most 5 s each) below the grace period.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Final

import anyio

__all__ = ["DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT", "ShutdownDeadline", "check_graceful_shutdown_timeout"]

_log = logging.getLogger("kube_runtime.controller")

#: Seconds a graceful shutdown waits for running reconciles before cancelling them.
DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT: Final = 25.0


def check_graceful_shutdown_timeout(value: float | None) -> None:
    """Raise ``ValueError`` unless ``value`` is ``None`` or a finite number >= 0."""
    if value is not None and not 0 <= value < float("inf"):
        raise ValueError(f"graceful_shutdown_timeout must be >= 0 seconds or None, got {value}")


class ShutdownDeadline:
    """Cancels a run's running reconciles ``timeout`` seconds after :meth:`start`.

    ``running()`` lists what is running (the object refs are logged); ``cancel()`` performs the
    forceful shutdown. Drive it with :meth:`run` in the run's task group; cancelling that task (the
    run ended in time) disarms it. :meth:`start` is idempotent and may come before :meth:`run`.
    """

    __slots__ = ("_cancel", "_controller", "_running", "_started", "_timeout")

    def __init__(
        self,
        controller: str,
        timeout: float | None,
        running: Callable[[], Iterable[Any]],
        cancel: Callable[[], None],
    ) -> None:
        check_graceful_shutdown_timeout(timeout)
        self._controller = controller
        self._timeout = timeout
        self._running = running
        self._cancel = cancel
        self._started: anyio.Event | None = None

    def start(self) -> None:
        """The graceful shutdown began: the deadline runs from now (from :meth:`run` if later)."""
        if self._started is None:
            self._started = anyio.Event()
        self._started.set()

    async def run(self) -> None:
        """Wait for :meth:`start`, then for the deadline; then log and cancel."""
        if self._started is None:
            self._started = anyio.Event()
        await self._started.wait()
        if self._timeout is None:
            return
        await anyio.sleep(self._timeout)
        cancelled = [str(getattr(request, "obj_ref", request)) for request in self._running()]
        _log.warning(
            "graceful shutdown timed out after %gs; cancelling %d running reconcile(s): %s",
            self._timeout,
            len(cancelled),
            ", ".join(cancelled) or "none",
            extra={"controller": self._controller, "cancelled": cancelled},
        )
        self._cancel()
