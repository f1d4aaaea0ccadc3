"""Hot-loop detection from the result stream: back-to-back self-triggered reconciles of one object."""

from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from kube_runtime.controller.action import Action, ReconcileReason
from kube_runtime.observe.hotloop import HotLoopDetector
from kube_runtime.observe.logging import configure_logging
from kube_runtime.observe.metrics import observe_results

from .results import reconciled, ref, stream

UPDATED = ReconcileReason.OBJECT_UPDATED
RETRY = ReconcileReason.RECONCILER_REQUESTED_RETRY


def chain(
    detector: HotLoopDetector, obj: str, n: int, *, start: float = 0.0, gap: float = 0.01
) -> list[bool]:
    """n reconciles of 0.05 s each, each starting ``gap`` after the previous one ended."""
    out, now = [], start
    for _ in range(n):
        now += gap + 0.05
        out.append(detector.observe(ref(obj), UPDATED, 0.05, now))
    return out


def test_self_triggered_chain_is_reported_once_at_threshold() -> None:
    detector = HotLoopDetector("c", threshold=5, window=60)
    reports = chain(detector, "hot", 12)
    assert reports.index(True) == 4
    assert reports.count(True) == 1
    assert [(str(r), n) for r, n in detector.detections] == [(str(ref("hot")), 5)]


def test_persisting_loop_is_reported_again_after_a_window() -> None:
    detector = HotLoopDetector("c", threshold=3, window=1.0)
    reports = chain(detector, "hot", 60)  # 60 x 0.06 s = 3.6 s of looping
    assert 3 <= reports.count(True) <= 4


def test_gaps_longer_than_gap_do_not_chain() -> None:
    detector = HotLoopDetector("c", threshold=3, gap=1.0)
    assert not any(chain(detector, "steady-writer", 50, gap=5.0))


def test_requeues_and_related_changes_do_not_count() -> None:
    detector = HotLoopDetector("c", threshold=3)
    now = 0.0
    for i in range(30):
        now += 0.06
        reason = RETRY if i % 2 else ReconcileReason.related_object_updated(ref("child"))
        assert not detector.observe(ref("o"), reason, 0.05, now)


def test_a_break_in_the_chain_resets_it() -> None:
    detector = HotLoopDetector("c", threshold=4)
    assert not any(chain(detector, "o", 3))
    detector.observe(ref("o"), RETRY, 0.05, 10.0)
    assert not any(chain(detector, "o", 3, start=10.0))
    assert chain(detector, "o", 1, start=10.3) == [True]


def test_objects_are_tracked_independently_and_forgotten_after_the_window() -> None:
    detector = HotLoopDetector("c", threshold=3, window=10)
    chain(detector, "a", 2)
    chain(detector, "b", 2)
    assert len(detector) == 2
    detector.observe(ref("c"), UPDATED, 0.05, 100.0)  # a later reconcile triggers the sweep
    assert len(detector) == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=1.01, max_value=100), min_size=1, max_size=50))
def test_never_reports_without_chaining(gaps: list[float]) -> None:
    detector = HotLoopDetector("c", threshold=2, gap=1.0)
    now = 0.0
    for gap in gaps:
        now += gap + 0.05
        assert not detector.observe(ref("o"), UPDATED, 0.05, now)


async def test_detection_through_the_result_stream_warns_and_counts(registry: CollectorRegistry) -> None:
    out = io.StringIO()
    configure_logging("warning", stream=out)
    detector = HotLoopDetector("cm", threshold=3, gap=1000.0)  # result items here carry wall-clock gaps
    items = [reconciled(ref("hot"), Action.await_change(), duration=0.0) for _ in range(3)]
    async for _ in observe_results(stream(items), "cm", registry=registry, hot_loops=detector):
        pass
    assert registry.get_sample_value("kube_runtime_hot_loop_detections_total", {"controller": "cm"}) == 1
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["level"] == "warning"
    assert line["object.ref"] == str(ref("hot"))
    assert "hot loop" in line["event"]
    configure_logging("warning", stream=io.StringIO())


class ReferenceDetector:
    """The detection rule stated plainly: one chain (start times) per object, no fast path."""

    def __init__(self, threshold: int, window: float, gap: float) -> None:
        self.threshold, self.window, self.gap = threshold, window, gap
        self.last_end: dict[str, float] = {}
        self.starts: dict[str, list[float]] = {}
        self.reported_at: dict[str, float | None] = {}

    def observe(self, obj: str, updated: bool, duration: float, now: float) -> bool:
        started = now - duration
        if obj not in self.last_end:
            self.last_end[obj], self.starts[obj], self.reported_at[obj] = now, [], None
            if updated:
                self.starts[obj].append(started)
            return False
        chained = updated and started - self.last_end[obj] <= self.gap
        self.last_end[obj] = now
        if not chained:
            self.starts[obj] = [started] if updated else []
            self.reported_at[obj] = None
            return False
        starts = [s for s in [*self.starts[obj], started] if s >= now - self.window][-self.threshold :]
        self.starts[obj] = starts
        if len(starts) < self.threshold:
            return False
        reported = self.reported_at[obj]
        if reported is not None and now - reported < self.window:
            return False
        self.reported_at[obj] = now
        return True


reconciles = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.booleans(),  # triggered by an update of the object itself
        st.sampled_from([0.0, 0.01, 0.5, 1.0, 1.5, 30.0]),  # idle time before this reconcile
        st.sampled_from([0.0, 0.05, 0.9, 2.0]),  # its duration
    ),
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(reconciles, st.integers(min_value=2, max_value=5))
def test_matches_the_plain_rule_property(steps: list[tuple[str, bool, float, float]], threshold: int) -> None:
    """The per-object fast path (a pair until an object starts chaining) reports exactly when the
    plain rule does, across interleaved objects, window expiry and sweeps (an object the
    detector forgot after a window idle is unchained either way)."""
    detector = HotLoopDetector("c", threshold=threshold, window=10.0, gap=1.0)
    reference = ReferenceDetector(threshold, 10.0, 1.0)
    now = 0.0
    for obj, updated, idle, duration in steps:
        now += idle + duration
        reason = UPDATED if updated else RETRY
        expected = reference.observe(obj, updated, duration, now)
        assert detector.observe(ref(obj), reason, duration, now) == expected


def test_forget_drops_plain_and_chaining_objects() -> None:
    detector = HotLoopDetector("c", threshold=5)
    chain(detector, "chaining", 3)
    detector.observe(ref("plain"), RETRY, 0.05, 1.0)
    assert len(detector) == 2
    detector.forget(ref("chaining"))
    detector.forget(ref("plain"))
    detector.forget(ref("never-seen"))
    assert len(detector) == 0
    assert chain(detector, "chaining", 4, start=1.0) == [False] * 4  # starts afresh


def test_entries_expire_window_plus_gap_after_their_last_reconcile() -> None:
    detector = HotLoopDetector("c", threshold=3, window=10.0, gap=1.0)
    for i in range(1000):  # churn: every object reconciled once, one per 10 ms
        detector.observe(ref(f"o{i}"), UPDATED, 0.001, i * 0.01)
    # Only the objects of the last window + gap (11 s = 1100 reconciles, capped by 1000) remain.
    assert len(detector) == 1000
    detector.observe(ref("late"), UPDATED, 0.001, 9.99 + 11.0 - 0.005)
    assert len(detector) == 2  # o999 (ended at 9.99) is just within the horizon, plus "late"
    detector.observe(ref("later"), UPDATED, 0.001, 9.99 + 11.0 + 0.005)
    assert len(detector) == 2  # o999 expired


def test_tracked_objects_are_bounded_by_max_tracked() -> None:
    detector = HotLoopDetector("c", threshold=3, max_tracked=50)
    now = 0.0
    for i in range(500):
        now += 0.001
        detector.observe(ref(f"o{i}"), UPDATED, 0.0005, now)
        assert len(detector) <= 50
    chain(detector, "hot", 3, start=now)  # the newest objects, chaining or not, are kept
    assert len(detector) == 50
    assert [str(r) for r, _ in detector.detections] == [str(ref("hot"))]


@settings(max_examples=100, deadline=None)
@given(reconciles, st.integers(min_value=2, max_value=5), st.integers(min_value=3, max_value=4))
def test_bound_large_enough_for_the_objects_changes_nothing_property(
    steps: list[tuple[str, bool, float, float]], threshold: int, max_tracked: int
) -> None:
    """With room for every object (three here), the bound and the expiry never change a report;
    with a forget in between, the object starts afresh as a new one does."""
    detector = HotLoopDetector("c", threshold=threshold, window=10.0, gap=1.0, max_tracked=max_tracked)
    reference = ReferenceDetector(threshold, 10.0, 1.0)
    now = 0.0
    for i, (obj, updated, idle, duration) in enumerate(steps):
        now += idle + duration
        if i % 17 == 16:
            detector.forget(ref(obj))
            reference.last_end.pop(obj, None)
        expected = reference.observe(obj, updated, duration, now)
        assert detector.observe(ref(obj), UPDATED if updated else RETRY, duration, now) == expected
        assert len(detector) <= max_tracked
