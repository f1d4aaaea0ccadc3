"""Which event loop a controller process runs on: uvloop when it is installed, else asyncio's.

:func:`run_event_loop` is what :meth:`~kube_runtime.manager.Manager.main` runs its process on.
``"auto"`` (the default) picks uvloop when it can be imported, as uvicorn's ``--loop auto`` does;
uvloop comes with ``uvicorn[standard]``, one of kube-runtime's dependencies, on every platform
uvloop supports. Both loops run the same code: the runtime uses only asyncio's public
interfaces (transports, protocols, futures), and the suite runs its client, watcher, controller and
manager tests on both.

What it buys: uvloop runs the event loop itself, socket reads and TLS in C. A controller that
reconciles each watch event as it arrives (a handful of wake-ups per event) executes about a fifth
fewer instructions per reconcile on it (``benches/`` scenario S3, ``kube-runtime (uvloop)`` peer).

Pitfall: ``"uvloop"`` raises :class:`ImportError` where uvloop is not installed (Windows, PyPy);
``"auto"`` falls back to asyncio there instead.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

import anyio

__all__ = ["EventLoopChoice", "run_event_loop", "uses_uvloop"]

T = TypeVar("T")

EventLoopChoice = Literal["auto", "asyncio", "uvloop"]


def uses_uvloop(choice: EventLoopChoice) -> bool:
    """Whether ``choice`` runs on uvloop here. ``ValueError`` for an unknown choice;
    ``ImportError`` for ``"uvloop"`` when it is not installed."""
    if choice == "asyncio":
        return False
    if choice == "uvloop":
        if importlib.util.find_spec("uvloop") is None:
            raise ImportError("event_loop='uvloop' needs the uvloop package (pip install uvloop)")
        return True
    if choice == "auto":
        return importlib.util.find_spec("uvloop") is not None
    raise ValueError(f"event_loop must be 'auto', 'asyncio' or 'uvloop', got {choice!r}")


def run_event_loop(
    main: Callable[..., Awaitable[T]], *args: object, event_loop: EventLoopChoice = "auto"
) -> T:
    """Run ``main(*args)`` to completion on a new event loop of the chosen kind (anyio's asyncio
    backend either way) and return its result."""
    return anyio.run(main, *args, backend="asyncio", backend_options={"use_uvloop": uses_uvloop(event_loop)})
