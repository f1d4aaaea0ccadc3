"""The controller property-test kit on the configmapgen example (the worked test of docs/testing.md),
and on a broken variant of it that the kit must catch with a small shrunk counterexample."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, find, given, settings

from kube_runtime.testing.controller_harness import ScheduleFailed, run_on_embedded_server
from kube_runtime.testing.schedules import Pause, Schedule, Update
from kube_runtime.testing.strategies import ALL_FAULTS, schedules
from tests.testing.configmapgen_spec import BROKEN_CONFIGMAPGEN, CONFIGMAPGEN

pytestmark = pytest.mark.timeout(600)

#: Every fault, compaction included (a resumed watch gets 410 and the controller relists).
FAULTS = ALL_FAULTS


@given(schedules(max_objects=4, max_steps=15, faults=FAULTS))
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_configmapgen_converges_under_drawn_schedules(schedule: Schedule) -> None:
    report = run_on_embedded_server(CONFIGMAPGEN, schedule)
    assert report.reconciles >= 1 or (schedule.initial_objects == 0 and report.writes == 0)


def test_the_broken_variant_fails_a_plain_update() -> None:
    schedule = Schedule("paged", None, 1, (Pause(1.0), Update(0, "a")))
    run_on_embedded_server(CONFIGMAPGEN, schedule)  # the correct example converges
    with pytest.raises(ScheduleFailed) as failed:
        run_on_embedded_server(BROKEN_CONFIGMAPGEN, schedule)
    assert "ConfigMap holds 'init'" in str(failed.value)


def test_hypothesis_finds_and_shrinks_a_counterexample_for_the_broken_variant() -> None:
    def breaks(schedule: Schedule) -> bool:
        try:
            run_on_embedded_server(BROKEN_CONFIGMAPGEN, schedule)
        except ScheduleFailed:
            return True
        return False

    found = find(
        schedules(max_objects=3, max_steps=8, faults=FAULTS),
        breaks,
        settings=settings(max_examples=400, deadline=None, database=None),
    )
    print(f"shrunk counterexample:\n{found.describe()}")
    assert breaks(found)
    run_on_embedded_server(CONFIGMAPGEN, found)  # the bug is the variant's: the example passes it
    assert len(found.steps) <= 2, found.describe()
    assert found.initial_objects <= 1, found.describe()
