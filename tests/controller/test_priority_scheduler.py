"""The priority scheduler's guarantees, as a hypothesis state machine against a plain model.

Checked on every step: one entry per message; a request raises an entry's priority and never
lowers it; a due message is taken highest priority first, earliest due first within a priority
(unless it is the aged pick); a message whose object is running is never taken; the starvation
bound (once a takeable message has waited ``max_wait``, at most ``2k + 1`` others start before
it, ``k`` the messages due before it still waiting); depth per priority; the next deadline.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from kube_runtime.controller.action import DEFAULT_PRIORITY, LOW_PRIORITY, ReconcileReason, ReconcileRequest
from kube_runtime.controller.scheduler import Scheduler
from kube_runtime.store.object_ref import ObjectRef

MAX_WAIT = 10.0
KEYS = st.integers(0, 5)
PRIORITIES = st.sampled_from([LOW_PRIORITY, DEFAULT_PRIORITY, 7])


def req(key: int, payload: str = "") -> ReconcileRequest:
    return ReconcileRequest(ObjectRef("ConfigMap", f"o{key}", "ns"), ReconcileReason.custom(payload))


@dataclass
class _Entry:
    run_at: float
    priority: int
    seq: int
    payload: str
    state: str = "scheduled"  # scheduled | ready | parked


class _Model:
    """The rules of kube_runtime.controller.scheduler, written as directly as possible."""

    def __init__(self) -> None:
        self.entries: dict[int, _Entry] = {}
        self.seq = 0
        self.aged_turn = False

    def schedule(self, key: int, run_at: float, priority: int, payload: str, now: float) -> None:
        e = self.entries.get(key)
        if e is not None and e.state != "scheduled":
            e.priority = max(e.priority, priority)
            return
        if e is not None and e.run_at < run_at:
            e.priority = max(e.priority, priority)
            return
        if e is not None:
            priority = max(priority, e.priority)
        self.seq += 1
        # Due when made: pending at once (no pass through the delay queue).
        self.entries[key] = _Entry(
            run_at, priority, self.seq, payload, "ready" if run_at <= now else "scheduled"
        )

    def expire(self, now: float) -> None:
        for e in self.entries.values():
            if e.state == "scheduled" and e.run_at <= now:
                e.state = "ready"

    def ready(self) -> dict[int, _Entry]:
        return {k: e for k, e in self.entries.items() if e.state == "ready"}

    def pop(self, now: float, running: set[int]) -> tuple[int, _Entry, bool] | None:
        """``(key, entry, taken as the aged pick)`` or None."""
        self.expire(now)
        while True:
            ready = self.ready()
            if not ready:
                return None
            best = min(ready, key=lambda k: (-ready[k].priority, ready[k].run_at, ready[k].seq))
            aged = [k for k, e in ready.items() if e.run_at <= now - MAX_WAIT]
            oldest = min(aged, key=lambda k: (ready[k].run_at, ready[k].seq)) if aged else None
            if oldest is None or oldest == best:
                key, aged_pick, other = best, oldest is not None, False
            elif self.aged_turn:
                key, aged_pick, other = oldest, True, False
            else:
                key, aged_pick, other = best, False, True
            if key in running:
                self.entries[key].state = "parked"
                continue
            self.aged_turn = False if aged_pick else other
            return key, self.entries.pop(key), aged_pick

    def unpark(self, key: int) -> None:
        e = self.entries.get(key)
        if e is not None and e.state == "parked":
            e.state = "ready"


class PriorityScheduler(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.s: Scheduler[ReconcileRequest] = Scheduler(max_wait=MAX_WAIT)
        self.model = _Model()
        self.now = 0.0
        self.running: set[int] = set()
        self.n = 0
        #: Aged takeable messages -> [k (due before it, still waiting), others started since].
        self.aged: dict[int, list[int]] = {}

    @rule(key=KEYS, delay=st.integers(0, 15), priority=PRIORITIES)
    def schedule(self, key: int, delay: int, priority: int) -> None:
        self.n += 1
        payload = f"r{self.n}"
        before = self.s.priority_of(req(key))
        self.s.schedule(req(key, payload), self.now + delay, self.now, priority)
        self.model.schedule(key, self.now + delay, priority, payload, self.now)
        after = self.s.priority_of(req(key))
        assert after is not None
        assert after >= priority  # a request raises the priority ...
        assert before is None or after >= before  # ... and never lowers it

    @rule(seconds=st.integers(0, 12))
    def advance(self, seconds: int) -> None:
        self.now += seconds

    @rule()
    def hold(self) -> None:
        self.s.hold(self.now)
        self.model.expire(self.now)

    @rule(key=KEYS)
    def finish(self, key: int) -> None:
        if key in self.running:
            self.running.discard(key)
            self.s.unpark(req(key))
            self.model.unpark(key)

    @rule()
    def pop(self) -> None:
        now, running, model = self.now, self.running, self.model
        model.expire(now)
        self._track_aged()
        ready_before = {k: (e.priority, e.run_at) for k, e in model.ready().items() if k not in running}
        got = self.s.pop(now, lambda m: int(m.obj_ref.name[1:]) not in running)
        want = model.pop(now, running)
        if want is None:
            assert got is None
            assert not ready_before
            return
        key, entry, aged_pick = want
        assert got is not None
        assert (got.message.obj_ref.name, str(got.message.reason), got.due_at, got.priority) == (
            f"o{key}",
            entry.payload,
            entry.run_at,
            entry.priority,
        )
        # The guarantees, stated directly.
        assert got.due_at <= now
        assert key not in running  # one run per object at a time
        if not aged_pick:  # priority order: nothing takeable outranks it
            assert all((-p, due) >= (-entry.priority, entry.run_at) for p, due in ready_before.values())
        else:
            assert entry.run_at <= now - MAX_WAIT
            assert all(due >= entry.run_at for p, due in ready_before.values() if due <= now - MAX_WAIT)
        running.add(key)
        self.aged.pop(key, None)
        for other, bound in self.aged.items():
            bound[1] += 1
            assert bound[1] <= 2 * bound[0] + 1, f"o{other} starved: {bound}"
        for parked in [k for k in self.aged if model.entries[k].state != "ready"]:
            del self.aged[parked]

    def _track_aged(self) -> None:
        model, now = self.model, self.now
        for k, e in model.ready().items():
            if k in self.aged or k in self.running or e.run_at > now - MAX_WAIT:
                continue
            earlier = sum(
                1
                for other, o in model.entries.items()
                if other != k and o.state != "scheduled" and (o.run_at, o.seq) < (e.run_at, e.seq)
            )
            self.aged[k] = [earlier, 0]

    @invariant()
    def same_state(self) -> None:
        model = self.model
        assert len(self.s) == len(model.entries)  # one entry per message
        waiting = [e for e in model.entries.values() if e.state != "scheduled"]
        assert self.s.pending_count == len(waiting)
        depths = {p: c for p, c in self.s.depths.items() if c}
        want: dict[int, int] = {}
        for e in waiting:
            want[e.priority] = want.get(e.priority, 0) + 1
        assert depths == want
        scheduled = [e.run_at for e in model.entries.values() if e.state == "scheduled"]
        deadline = self.s.next_deadline()
        # Entries the model counts as due may still sit in the scheduler's delay heap until a pop.
        assert deadline == min(scheduled, default=None) or (deadline is not None and deadline <= self.now)


PriorityScheduler.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
test_priority_scheduler = PriorityScheduler.TestCase


def test_a_live_change_jumps_a_relisted_backlog() -> None:
    s: Scheduler[ReconcileRequest] = Scheduler()
    for key in range(1000):
        s.schedule(req(key, "listed"), 0.0, 0.0, LOW_PRIORITY)
    s.schedule(req(500, "live"), 1.0, 1.0)  # pending: swallowed, but raises the priority
    s.schedule(req(2000, "live"), 1.0, 1.0)
    first, second = s.pop(1.0), s.pop(1.0)
    assert first is not None
    assert second is not None
    assert (first.message.obj_ref.name, str(first.message.reason), first.priority) == ("o500", "listed", 0)
    assert (second.message.obj_ref.name, second.priority) == ("o2000", 0)
    third = s.pop(1.0)
    assert third is not None
    assert (third.message.obj_ref.name, third.priority) == ("o0", LOW_PRIORITY)


def test_aged_messages_get_every_other_start() -> None:
    s: Scheduler[ReconcileRequest] = Scheduler(max_wait=5.0)
    s.schedule(req(0), 0.0, 0.0, LOW_PRIORITY)
    s.schedule(req(1), 0.0, 0.0, LOW_PRIORITY)
    for key in range(10, 20):
        s.schedule(req(key), 6.0, 6.0)
    names = []
    for _ in range(5):
        due = s.pop(6.0)
        assert due is not None
        names.append(due.message.obj_ref.name)
    assert names == ["o10", "o0", "o11", "o1", "o12"]


def test_without_priorities_every_request_counts_as_default() -> None:
    s: Scheduler[ReconcileRequest] = Scheduler(prioritized=False)
    s.schedule(req(0), 0.0, 0.0, LOW_PRIORITY)
    s.schedule(req(1), 1.0, 0.0, 7)
    first = s.pop(1.0)
    assert first is not None
    assert (first.message.obj_ref.name, first.priority) == ("o0", DEFAULT_PRIORITY)
    assert dict(s.depths) == {DEFAULT_PRIORITY: 1}


def test_max_wait_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_wait"):
        Scheduler(max_wait=0)
