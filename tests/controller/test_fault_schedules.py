"""The Controller under randomized fault schedules, over real HTTP on loopback against the
embedded API server, on the virtual clock (backoffs, Retry-After, latency and pauses cost no wall time).

Each schedule (see :func:`kube_runtime.testing.schedules.random_schedule`) picks a list shape by seed
(paged 500, paged 50, streaming, unpaged), starts with 0 to 100 objects or, every fifth seed, 2,000,
and interleaves churn (creates, updates, deletes, child deletes and edits) with faults: dropped
watches, compaction (410 on resume, then a relist), 429s and 5xx with Retry-After, latency, silent
connections, server restarts, and outages during which objects change and history is compacted. Then
the faults stop and the harness checks that every object's latest version was reconciled, that no
object was reconciled twice at once, and (small schedules) that every parent's Secret holds its
content. Schedules with 1,000 objects or more run the observer (no writes of its own) to stay fast.

The normal run takes seeds 0..11 and the named shapes below. The full set, 200 schedules::

    KUBE_RUNTIME_FAULT_SCHEDULES=200 python -m pytest tests/controller/test_fault_schedules.py -q

(``KUBE_RUNTIME_FAULT_SCHEDULES=N`` runs seeds 0..N-1; ``KUBE_RUNTIME_FAULT_SEEDS=3,17`` runs
those seeds only.) A failure prints the seed and the schedule, step by step.

Known failure until the relist fix (branch a1-relist) lands: a change that the controller learns of
only through a relist after a 410 is lost when the relist is paged or streaming. Its ``InitApply``
triggers a reconcile that reads the store, which still serves the pre-relist state until
``InitDone``, and nothing triggers again after the swap. It shows as "obj-N: latest
resourceVersion X not reconciled (last reconciled: Y)" in the outage shapes (paged 500, paged 50,
streaming; unpaged lists are delivered in one piece and pass) and in the seeds whose schedules
relist with changed objects (seed 0 every time; others, e.g. 5, 6 or 9, depending on how the
loopback I/O interleaves with the reconciles).
"""

from __future__ import annotations

import os

import pytest

from kube_runtime.testing.controller_harness import ControllerSpec, run_on_embedded_server
from kube_runtime.testing.schedules import (
    Compact,
    DropWatches,
    ListMode,
    Pause,
    Schedule,
    StartServing,
    Step,
    StopServing,
    Update,
    random_schedule,
)
from tests.controller.mirror_spec import MIRROR, OBSERVER

pytestmark = pytest.mark.timeout(1800)


def _seeds() -> list[int]:
    chosen = os.environ.get("KUBE_RUNTIME_FAULT_SEEDS", "").strip()
    if chosen:
        return [int(s) for s in chosen.split(",") if s.strip()]
    return list(range(int(os.environ.get("KUBE_RUNTIME_FAULT_SCHEDULES", "12"))))


def spec_for(schedule: Schedule) -> ControllerSpec:
    return OBSERVER if schedule.initial_objects >= 1000 else MIRROR


@pytest.mark.parametrize("seed", _seeds())
def test_controller_under_random_fault_schedule(seed: int) -> None:
    schedule = random_schedule(seed)
    report = run_on_embedded_server(spec_for(schedule), schedule)  # raises ScheduleFailed
    print(f"seed {seed}: {report.summary()}")


def outage(indexes: range, *, restart: bool) -> tuple[Step, ...]:
    """Cut the controller off, change ``indexes`` meanwhile, compact history, reconnect: the
    resumed watch gets 410 and only a relist can show the changes."""
    cut: Step = StopServing() if restart else DropWatches()
    changed = tuple(Update(i, "changed") for i in indexes)
    return (cut, *changed, Compact(), Pause(1.0), StartServing())


SHAPES: list[tuple[ListMode, int | None, bool]] = [
    ("paged", None, False),
    ("paged", 50, True),
    ("streaming", None, False),
    ("unpaged", None, True),
]


@pytest.mark.parametrize(("mode", "page_size", "restart"), SHAPES)
def test_changes_missed_during_an_outage_are_reconciled_after_the_relist(
    mode: ListMode, page_size: int | None, restart: bool
) -> None:
    """2,000 objects, settled; an outage changes objects on the first and the last pages; after the
    relist each one's latest version must be what its reconcile was handed."""
    steps = (*outage(range(0, 2000, 97), restart=restart), Pause(5.0))
    schedule = Schedule(mode, page_size, 2000, steps, settle_first=True)
    report = run_on_embedded_server(OBSERVER, schedule)  # raises ScheduleFailed
    assert report.errors >= 1  # the resumed watch's 410: the controller did relist
    assert report.reconciles >= 2000 + 21
