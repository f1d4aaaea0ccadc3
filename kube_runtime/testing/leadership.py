"""Leader-election doubles for tests of leader-gated controllers.

:class:`ManualElector` is an elector a test drives by hand (``lead()``, ``lose()``), with the shape
``Controller.with_leader_election`` needs. :func:`lease_held` holds a real
:class:`~kube_runtime.leader.LeaderElector`'s Lease for the length of a block, releasing it when
the test says (a rival standby then takes over at its next retry).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

from kube_runtime.leader import LeaderElectionLost, LeaderElector, LeadershipSignal

__all__ = ["ManualElector", "lease_held"]


class ManualElector:
    """Leads once :meth:`lead` is called, loses its term once :meth:`lose` is (also before it led)."""

    def __init__(self) -> None:
        self.lost = LeadershipSignal()
        self._leading = False
        self._decided = anyio.Event()

    @property
    def is_leader(self) -> bool:
        return self._leading and not self.lost.is_set()

    def lead(self) -> None:
        self._leading = True
        self._decided.set()

    def lose(self) -> None:
        self.lost._set()
        self._decided.set()

    async def wait_until_leading(self) -> None:
        """Return once leading; raise :class:`LeaderElectionLost` if the term ended first."""
        await self._decided.wait()
        if not self.is_leader:
            raise LeaderElectionLost("the term ended before it began")


@asynccontextmanager
async def lease_held(elector: LeaderElector) -> AsyncIterator[Callable[[], None]]:
    """Enter ``elector`` in a task of this block and wait until it leads; the value releases the
    Lease (the elector exits, giving it up) while the block goes on. Leaving the block releases
    it too."""
    leading, release = anyio.Event(), anyio.Event()

    async def hold() -> None:
        async with elector:
            await elector.wait_until_leading()
            leading.set()
            await release.wait()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hold)
        await leading.wait()
        try:
            yield release.set
        finally:
            release.set()
