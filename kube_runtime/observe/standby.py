"""Probes and store metrics of a controller gated on leader election while it stands by.

A controller built with ``Controller.with_leader_election(elector, warmup=...)`` runs from the
start of the process but reconciles only while its elector leads
(:mod:`kube_runtime.controller.leadership`). While it stands by:

* ``/livez``: queued work does not count as a stall (a warm standby's queue holds an entry per
  object and nothing may run it); the stall clock starts when the replica starts leading.
* ``/readyz`` and ``kube_runtime_store_ready``: a warm standby's store syncs like a leader's and is
  reported as it is; a cold standby's store is empty on purpose and counts as ready, so a rolling
  update is not held up and ``KubeRuntimeStoreNeverSynced`` does not fire on standbys. Once the
  replica leads, the store is reported as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kube_runtime.observe.watch_metrics import ReadableStore

__all__ = ["StandbyStore", "leading_check"]


def leading_check(controller: object) -> tuple[Callable[[], bool] | None, bool]:
    """``(is leading, warm-up)`` of a leader-gated controller, ``(None, False)`` for one that is
    not gated (read from its ``leader_election``)."""
    election: Any = getattr(controller, "leader_election", None)
    if election is None:
        return None, False
    elector = election.elector
    return (lambda: bool(elector.is_leader)), bool(election.warmup)


class StandbyStore:
    """``store`` as a cold standby reports it: ready while not leading (see the module docs).

    Hold a strong reference: store metrics keep their stores weakly."""

    def __init__(self, store: ReadableStore, leading: Callable[[], bool]) -> None:
        self._store = store
        self._leading = leading

    def __len__(self) -> int:
        return len(self._store)

    def is_ready(self) -> bool:
        return self._store.is_ready() or not self._leading()
