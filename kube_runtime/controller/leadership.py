"""A controller run gated on leader election, cold or warm (controller-runtime's ``EnableWarmup``).

``Controller.with_leader_election(elector, warmup=...)`` (or ``ApplierSpec.leader_election``)
ties a run to a :class:`~kube_runtime.leader.LeaderElector` (anything with the
:class:`Leadership` shape). Guarantees:

* No reconcile starts before the elector leads: the runner's readiness gate is the store's
  readiness *and* leadership. Nor does one start after the term is over: each attempt asks
  ``is_leader`` first (a paused process resumes past its deadline before the elector's
  ``lost`` fires), and one that finds it false stops the run instead.
* **Cold** (``warmup=False``, the default as in controller-runtime): the watches are not opened
  before the elector leads, so a standby costs nothing, and a new leader lists every watched
  object before its first reconcile.
* **Warm** (``warmup=True``): the watches run from the start of the run, so a standby keeps its
  stores synced and its queue filled (one entry per object, as always) while it waits for the
  Lease; the new leader starts reconciling from a warm cache at once. It costs a standby the
  watches' traffic and the stores' memory.
* When the term ends (the elector's ``lost`` fires, also for a standby whose elector stopped)
  the run is stopped forcefully: running reconciles are cancelled at their next await and the
  result stream ends, as ``LeaderElector.run_while_leading`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["LeaderElection", "Leadership"]


class _Signal(Protocol):
    def wait(self) -> Any: ...


class Leadership(Protocol):
    """What a gated run needs from an elector (:class:`~kube_runtime.leader.LeaderElector`)."""

    @property
    def lost(self) -> _Signal:
        """Fires when the term ends."""

    @property
    def is_leader(self) -> bool:
        """Whether it leads now."""

    async def wait_until_leading(self) -> None:
        """Return once leading; raise if the term ended before."""


@dataclass(frozen=True, slots=True)
class LeaderElection:
    """The election a run is gated on, and whether a standby warms up (see the module docs)."""

    elector: Leadership
    warmup: bool = False
