"""Process-wide SIGINT/SIGTERM handling shared by every controller (and anything else) that asks.

A process has one handler per signal, so a second receiver silently replaces the first: with two
controllers each opening its own receiver, only the last one would ever hear Ctrl+C and the other
would keep running. Here there is one receiver for the whole process, installed while at least one
party is registered (:func:`shutdown_on_signals`), that fans every signal out to all of them:

* the first SIGINT/SIGTERM calls every registered ``graceful`` callback;
* the second calls every ``forceful`` callback;
* a party registering after the first signal arrived is told at once (``graceful``): the process
  is already shutting down, so it must not start work that the operator asked to stop.

When the last party leaves, the handlers that were installed before the first one registered are
put back (``signal.getsignal`` values; for SIGINT usually Python's ``KeyboardInterrupt`` raiser),
and the signal count starts over.

Callbacks run on the event loop (``loop.add_signal_handler``), not inside the C signal handler, so
they may touch loop state (set events, cancel scopes); they must not block. An exception from one
callback is logged and the others still run. Needs the main thread and an asyncio event loop; a
registration from another event loop while the handlers belong to a running loop is refused
(``RuntimeError``). Pitfall: anything else that installs SIGINT/SIGTERM handlers meanwhile
(``anyio.open_signal_receiver``, ``loop.add_signal_handler``) takes the signals away from every
party here; register with :func:`shutdown_on_signals` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from typing import Any, Final

__all__ = ["SHUTDOWN_SIGNALS", "shutdown_on_signals", "shutdown_signal_count"]

_log = logging.getLogger("kube_runtime.controller")

#: The signals that ask the process to stop (Ctrl+C, and what Kubernetes sends a pod).
SHUTDOWN_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class _Party:
    __slots__ = ("forceful", "graceful", "name")

    def __init__(self, name: str, graceful: Callable[[], None], forceful: Callable[[], None] | None) -> None:
        self.name = name
        self.graceful = graceful
        self.forceful = forceful


class _SignalHub:
    """The one receiver of the process. All state changes happen on the event loop's thread."""

    def __init__(self) -> None:
        self._parties: list[_Party] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[int, Any] = {}
        self.count = 0

    def register(self, party: _Party) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop.is_closed():  # left behind by a loop that died
            self._uninstall()
        if self._loop is None:
            self._install(loop)
        elif self._loop is not loop:
            raise RuntimeError("shutdown signals are already handled by another event loop")
        self._parties.append(party)
        if self.count >= 1:
            self._call(party, party.graceful)

    def unregister(self, party: _Party) -> None:
        with contextlib.suppress(ValueError):
            self._parties.remove(party)
        if not self._parties and self._loop is not None:
            self._uninstall()

    def _install(self, loop: asyncio.AbstractEventLoop) -> None:
        previous = {int(sig): signal.getsignal(sig) for sig in SHUTDOWN_SIGNALS}
        installed: list[int] = []
        try:
            for sig in SHUTDOWN_SIGNALS:
                loop.add_signal_handler(sig, self._received, int(sig))
                installed.append(int(sig))
        except BaseException:
            for signum in installed:
                loop.remove_signal_handler(signum)
                _restore(signum, previous[signum])
            raise
        self._loop = loop
        self._previous = previous
        self.count = 0
        _log.info("press ctrl+c to shut down gracefully")

    def _uninstall(self) -> None:
        loop, self._loop = self._loop, None
        assert loop is not None
        for sig, previous in self._previous.items():
            if not loop.is_closed():
                loop.remove_signal_handler(sig)
            _restore(sig, previous)
        self._previous = {}
        self.count = 0

    def _received(self, signum: int) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        if self.count == 1:
            _log.info(
                "graceful shutdown requested, press ctrl+c again to force shutdown", extra={"signal": name}
            )
            for party in tuple(self._parties):
                self._call(party, party.graceful)
        elif self.count == 2:
            _log.info("forced shutdown requested", extra={"signal": name})
            for party in tuple(self._parties):
                if party.forceful is not None:
                    self._call(party, party.forceful)

    @staticmethod
    def _call(party: _Party, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            _log.exception("shutdown callback of %s failed", party.name)


def _restore(sig: int, previous: Any) -> None:
    if previous is None:  # installed outside Python: nothing we can put back
        return
    with contextlib.suppress(ValueError, OSError):
        signal.signal(sig, previous)


_hub = _SignalHub()


@contextlib.contextmanager
def shutdown_on_signals(
    graceful: Callable[[], None],
    forceful: Callable[[], None] | None = None,
    *,
    name: str = "shutdown handler",
) -> Iterator[None]:
    """While the block runs, the process's first SIGINT/SIGTERM calls ``graceful`` and the second
    calls ``forceful`` (if given), together with every other registered party (see the module
    docs). Must be entered on the event loop's thread (the main thread).

    ``name`` appears in the log line of a failing callback. ``Controller.shutdown_on_signal()``
    registers the controller's run this way; call this directly for code that is not a controller
    (a reflector loop: ``with shutdown_on_signals(task_group.cancel_scope.cancel): ...``).
    """
    party = _Party(name, graceful, forceful)
    _hub.register(party)
    try:
        yield
    finally:
        _hub.unregister(party)


def shutdown_signal_count() -> int:
    """How many shutdown signals arrived since the handlers were installed (0 when none are)."""
    return _hub.count
