"""Blocking calls (a subprocess, file reads, a metrics collection) run off the event loop.

:func:`in_thread` runs ``fn(*args)`` on the running loop's default executor through asyncio's
public ``loop.run_in_executor``. Why not ``anyio.to_thread.run_sync``: the virtual test clock
(:class:`~kube_runtime.testing.clock.VirtualClockLoop`) must not jump while work it cannot see is
still running in a thread (a cached credential would expire mid-refresh, a timeout would fire),
and executor work is what it can see and wait for.

Cancellation: the caller stops waiting at once; the call itself cannot be interrupted and
finishes in its thread, its result dropped (anyio's ``abandon_on_cancel=True``).

Pitfall: ``asyncio.run`` (and so ``anyio.run``) waits for the default executor when it ends, so an
abandoned call still delays the process's exit until it returns: pass blocking calls a timeout
of their own (an exec plugin runs under its ``timeout``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import TypeVar

__all__ = ["in_thread"]

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], /, *args: object) -> T:
    """``fn(*args)`` in a worker thread; raises what it raises."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(fn, *args))
