"""Leader election: protocol and safety.

Two layers of tests:

* HTTP tests against the embedded API server on the real clock, with short lease durations.
* Virtual-clock tests (no HTTP) against an in-memory Lease store with Kubernetes' create/replace
  semantics (409 on a stale resourceVersion) and request/response latency, including a hypothesis
  property test over pause schedules: never two leaders at any instant.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from kube_runtime.client.errors import ApiError
from kube_runtime.leader import LEASE_RESOURCE, LeaderElectionLost, LeaderElector
from kube_runtime.testing.clock import VirtualClockLoop

# -- helpers -------------------------------------------------------------------------------------


class PausableElector(LeaderElector):
    """An elector whose lease calls can be frozen, simulating a stalled renew loop.

    The stall is shielded from cancellation, so only the deadline watchdog can notice it.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume = anyio.Event()
        self.resume.set()

    def pause(self) -> None:
        if self.resume.is_set():  # overlapping pauses share one gate
            self.resume = anyio.Event()

    def unpause(self) -> None:
        self.resume.set()

    async def _try_acquire_or_renew(self, *, renewing: bool = False) -> bool:
        with anyio.CancelScope(shield=True):
            await self.resume.wait()
        return await super()._try_acquire_or_renew(renewing=renewing)


class LeadershipMonitor:
    """Samples every elector's belief; records violations (two believers at one instant)."""

    def __init__(self, electors: list[LeaderElector]) -> None:
        self.electors = electors
        self.violations: list[tuple[float, list[str]]] = []
        self.believers_seen: set[str] = set()

    def check(self) -> None:
        believers = [e.identity for e in self.electors if e.is_leader]
        self.believers_seen.update(believers)
        if len(believers) > 1:
            self.violations.append((anyio.current_time(), believers))

    async def run(self, interval: float) -> None:
        while True:
            self.check()
            await anyio.sleep(interval)


async def record_time(signal: Any, into: dict[str, float], key: str) -> None:
    await signal
    into[key] = anyio.current_time()


async def first_to_lead(electors: list[LeaderElector]) -> LeaderElector:
    winner: list[LeaderElector] = []
    async with anyio.create_task_group() as tg:

        async def wait_for(elector: LeaderElector) -> None:
            await elector.leading
            winner.append(elector)
            tg.cancel_scope.cancel()

        for elector in electors:
            tg.start_soon(wait_for, elector)
    return winner[0]


def lease_api(api_server: Any, namespace: str = "default") -> Any:
    from kube_runtime.client import Api

    return Api(api_server.client, LEASE_RESOURCE, namespace)


# Short but safe timings for the real-clock HTTP tests: renew deadline well inside the lease.
FAST = {"lease_duration": 1.0, "renew_deadline": 0.6, "retry_period": 0.1}


# -- construction --------------------------------------------------------------------------------


def test_rejects_unsafe_timings() -> None:
    store = InMemoryLeases()
    with pytest.raises(ValueError, match="renew_deadline"):
        LeaderElector(None, "x", lease_api=store, lease_duration=10, renew_deadline=10, retry_period=2)
    with pytest.raises(ValueError, match="retry_period"):
        LeaderElector(None, "x", lease_api=store, lease_duration=15, renew_deadline=2, retry_period=2)


def test_rejects_invalid_lease_names() -> None:
    for bad in ["", "Upper", "under_score", "a" * 254, "-dash"]:
        with pytest.raises(ValueError, match="DNS-1123"):
            LeaderElector(None, bad, lease_api=InMemoryLeases())


def test_defaults_follow_controller_runtime() -> None:
    elector = LeaderElector(None, "x", lease_api=InMemoryLeases(), registry=CollectorRegistry())
    assert (elector.lease_duration, elector.renew_deadline, elector.retry_period) == (15.0, 10.0, 2.0)
    host, _, suffix = elector.identity.rpartition("_")
    assert host
    assert len(suffix) == 36
    assert elector.release_on_shutdown


# -- HTTP, real clock ----------------------------------------------------------------------------


async def test_only_one_of_two_candidates_leads(api_server: Any) -> None:
    registries = [CollectorRegistry(), CollectorRegistry()]
    electors = [
        LeaderElector(api_server.client, "only-one", "default", registry=registries[i], **FAST)
        for i in range(2)
    ]
    monitor = LeadershipMonitor(electors)
    async with electors[0], electors[1], anyio.create_task_group() as tg:
        tg.start_soon(monitor.run, 0.005)
        with anyio.fail_after(10):
            leader = await first_to_lead(electors)
        standby = next(e for e in electors if e is not leader)
        # Several renew periods pass: the leader keeps the lease, the standby never takes it.
        await anyio.sleep(1.5)
        assert leader.is_leader
        assert not standby.is_leader
        assert not standby.leading.is_set()
        lease = await lease_api(api_server).get("only-one")
        assert lease["spec"]["holderIdentity"] == leader.identity
        assert lease["spec"]["leaseDurationSeconds"] == 1
        assert lease["spec"]["leaseTransitions"] == 0
        assert (
            registries[electors.index(leader)].get_sample_value(
                "leader_election_master_status", {"name": "only-one"}
            )
            == 1.0
        )
        assert (
            registries[electors.index(standby)].get_sample_value(
                "leader_election_master_status", {"name": "only-one"}
            )
            == 0.0
        )
        tg.cancel_scope.cancel()
    assert monitor.violations == []


async def test_paused_leader_loses_lease_and_notices_before_the_other_acts(api_server: Any) -> None:
    first = PausableElector(api_server.client, "paused", "default", registry=CollectorRegistry(), **FAST)
    second = PausableElector(api_server.client, "paused", "default", registry=CollectorRegistry(), **FAST)
    second.pause()  # make sure `first` wins the initial race
    times: dict[str, float] = {}
    monitor = LeadershipMonitor([first, second])
    acted: list[tuple[float, str]] = []

    async def act_while_leading(elector: LeaderElector) -> None:
        # A worker that checks leadership before each action, as the docs require.
        while True:
            if elector.is_leader:
                monitor.check()
                acted.append((anyio.current_time(), elector.identity))
            await anyio.sleep(0.005)

    async with first, second, anyio.create_task_group() as tg:
        tg.start_soon(monitor.run, 0.005)
        tg.start_soon(act_while_leading, first)
        tg.start_soon(act_while_leading, second)
        tg.start_soon(record_time, first.lost, times, "first_lost")
        tg.start_soon(record_time, second.leading, times, "second_acquired")
        with anyio.fail_after(10):
            await first.wait_until_leading()
        second.unpause()
        first.pause()  # the renew loop stalls and cannot be cancelled out of the stall
        with anyio.fail_after(10):
            await second.wait_until_leading()
        assert first.lost.is_set()
        assert not first.is_leader
        assert first.lost_reason is not None
        assert "renew deadline" in first.lost_reason
        assert times["first_lost"] <= times["second_acquired"]
        first.unpause()  # resuming must not bring the old term back
        await anyio.sleep(0.3)
        assert not first.is_leader
        assert second.is_leader
        tg.cancel_scope.cancel()

    assert monitor.violations == []
    assert {who for _, who in acted} == {first.identity, second.identity}
    last_first = max(t for t, who in acted if who == first.identity)
    first_second = min(t for t, who in acted if who == second.identity)
    assert last_first < first_second
    lease = await lease_api(api_server).get("paused")
    assert lease["spec"]["leaseTransitions"] >= 1


async def test_release_on_shutdown_hands_over_without_waiting_out_the_lease(api_server: Any) -> None:
    # A 30 s lease: without the release the standby would need 30 s; the test allows 5.
    slow = {"lease_duration": 30.0, "renew_deadline": 20.0, "retry_period": 0.1}
    first = LeaderElector(api_server.client, "handover", "default", registry=CollectorRegistry(), **slow)
    second = PausableElector(api_server.client, "handover", "default", registry=CollectorRegistry(), **slow)
    second.pause()  # `first` wins the initial race
    async with second:
        async with first:
            with anyio.fail_after(5):
                await first.wait_until_leading()
            second.unpause()
            await anyio.sleep(0.3)
            assert not second.is_leader
        assert first.lost.is_set()
        assert not first.is_leader
        with anyio.fail_after(5):
            await second.wait_until_leading()
        lease = await lease_api(api_server).get("handover")
        assert lease["spec"]["holderIdentity"] == second.identity
        assert lease["spec"]["leaseTransitions"] == 1
    # `second` released on its way out too.
    lease = await lease_api(api_server).get("handover")
    assert lease["spec"]["holderIdentity"] == ""
    assert lease["spec"]["leaseTransitions"] == 1


async def test_without_release_the_lease_stays_held(api_server: Any) -> None:
    elector = LeaderElector(
        api_server.client, "kept", "default", registry=CollectorRegistry(), release_on_shutdown=False, **FAST
    )
    async with elector:
        with anyio.fail_after(5):
            await elector.wait_until_leading()
    lease = await lease_api(api_server).get("kept")
    assert lease["spec"]["holderIdentity"] == elector.identity


async def test_run_while_leading_cancels_work_on_loss(api_server: Any) -> None:
    elector = PausableElector(api_server.client, "work", "default", registry=CollectorRegistry(), **FAST)
    progress: list[bool] = []  # per step of work: had the loss been declared already?

    async def work() -> str:
        while True:
            progress.append(elector.lost.is_set())
            await anyio.sleep(0.01)
            if len(progress) == 20:
                elector.pause()

    async with elector:
        with anyio.fail_after(10), pytest.raises(LeaderElectionLost):
            await elector.run_while_leading(work)
        elector.unpause()
    assert len(progress) >= 20
    # Cancelled at its next await after the loss: only a step whose wakeup was already queued at
    # that instant can still run (and it sees the loss), none after it.
    assert not any(progress[:-1])
    with pytest.raises(LeaderElectionLost):
        await elector.wait_until_leading()


async def test_run_while_leading_returns_the_result(api_server: Any) -> None:
    elector = LeaderElector(api_server.client, "result", "default", registry=CollectorRegistry(), **FAST)

    async def work(a: int, b: int) -> int:
        assert elector.is_leader
        return a + b

    async with elector:
        with anyio.fail_after(10):
            assert await elector.run_while_leading(work, 2, 3) == 5


async def test_errors_from_the_work_propagate_unwrapped(api_server: Any) -> None:
    elector = LeaderElector(api_server.client, "boom", "default", registry=CollectorRegistry(), **FAST)

    async def work() -> None:
        raise KeyError("boom")

    async with elector:
        with anyio.fail_after(10), pytest.raises(KeyError):
            await elector.run_while_leading(work)


# -- virtual clock, in-memory Lease store ---------------------------------------------------------


class InMemoryLeases:
    """Lease create/get/replace with Kubernetes' resourceVersion rules and random latency.

    Latency is split into a request leg (before the write is applied) and a response leg (after),
    so a write can land long before its writer hears about it.
    """

    def __init__(self, rng: random.Random | None = None, max_latency: float = 0.0) -> None:
        self.leases: dict[str, dict[str, Any]] = {}
        self.version = 0
        self.rng = rng or random.Random(0)
        self.max_latency = max_latency
        self.writes: list[tuple[float, str]] = []

    async def _leg(self) -> None:
        if self.max_latency:
            await anyio.sleep(self.rng.uniform(0, self.max_latency))

    def _store(self, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.leases[name] = stored
        self.writes.append((anyio.current_time(), stored["spec"].get("holderIdentity") or ""))
        return copy.deepcopy(stored)

    async def get_opt(self, name: str) -> dict[str, Any] | None:
        await self._leg()
        found = copy.deepcopy(self.leases.get(name))
        await self._leg()
        return found

    async def create(self, obj: dict[str, Any], *, field_manager: str | None = None) -> dict[str, Any]:
        await self._leg()
        name = obj["metadata"]["name"]
        if name in self.leases:
            raise ApiError({"code": 409, "reason": "AlreadyExists", "message": f"{name} exists"})
        stored = self._store(name, obj)
        await self._leg()
        return stored

    async def replace(self, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        await self._leg()
        current = self.leases.get(name)
        if current is None:
            raise ApiError({"code": 404, "reason": "NotFound", "message": name})
        if obj["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiError({"code": 409, "reason": "Conflict", "message": "the object has been modified"})
        stored = self._store(name, obj)
        await self._leg()
        return stored


def run_virtual(fn: Callable[[], Any]) -> Any:
    return anyio.run(fn, backend="asyncio", backend_options={"loop_factory": VirtualClockLoop})


def test_virtual_clock_takeover_follows_the_lease_duration() -> None:
    """Defaults (15/10/2): a stalled leader stops believing at 10 s; the standby takes over only
    after seeing the record unchanged for 15 s."""

    async def scenario() -> None:
        store = InMemoryLeases()
        first = PausableElector(None, "l", lease_api=store, registry=CollectorRegistry(), identity="a")
        second = PausableElector(None, "l", lease_api=store, registry=CollectorRegistry(), identity="b")
        times: dict[str, float] = {}
        async with first:
            await first.wait_until_leading()
            async with second, anyio.create_task_group() as tg:
                tg.start_soon(record_time, first.lost, times, "lost")
                tg.start_soon(record_time, second.leading, times, "acquired")
                await anyio.sleep(30)
                assert first.is_leader
                assert not second.is_leader
                paused_at = anyio.current_time()
                first.pause()
                await second.wait_until_leading()
                last_renew = max(t for t, holder in store.writes if holder == "a")
                assert paused_at - 2 <= last_renew <= paused_at
                assert last_renew + 8 <= times["lost"] <= last_renew + 10  # renew deadline, from the send
                assert times["acquired"] >= last_renew + 15  # lease duration, from the observation
                assert times["lost"] < times["acquired"]
                assert store.leases["l"]["spec"]["leaseTransitions"] == 1
                assert store.leases["l"]["spec"]["holderIdentity"] == "b"
                first.unpause()
                tg.cancel_scope.cancel()

    run_virtual(scenario)


class DeadConnectionOnce:
    """An elector's view of a shared store whose first read never gets an answer (a connection that
    went silently dead), and whose later requests go through."""

    def __init__(self, store: InMemoryLeases) -> None:
        self.store = store
        self.hung = 0

    async def get_opt(self, name: str) -> dict[str, Any] | None:
        if not self.hung:
            self.hung += 1
            await anyio.sleep_forever()
        return await self.store.get_opt(name)

    async def create(self, obj: dict[str, Any], *, field_manager: str | None = None) -> dict[str, Any]:
        return await self.store.create(obj, field_manager=field_manager)

    async def replace(self, name: str, obj: dict[str, Any]) -> dict[str, Any]:
        return await self.store.replace(name, obj)


def test_virtual_clock_an_attempt_without_an_answer_gives_up_at_the_renew_deadline() -> None:
    """A standby whose request hangs takes over after a release at its next attempt, not after the
    client's read timeout: each attempt is bounded by the renew deadline (10 s by default)."""

    async def scenario() -> None:
        store = InMemoryLeases()
        first = LeaderElector(None, "l", lease_api=store, registry=CollectorRegistry(), identity="a")
        standby_view = DeadConnectionOnce(store)
        second = LeaderElector(None, "l", lease_api=standby_view, registry=CollectorRegistry(), identity="b")
        async with second:
            async with first:
                await first.wait_until_leading()
                await anyio.sleep(3)
            released_at = anyio.current_time()  # first released its lease on the way out
            with anyio.fail_after(10 + 2 * 1.5 + 1):
                await second.wait_until_leading()
            assert standby_view.hung == 1
            assert anyio.current_time() - released_at <= 10 + 2 * 1.5

    run_virtual(scenario)


def test_virtual_clock_lease_taken_by_someone_else_is_noticed_at_the_next_renew() -> None:
    async def scenario() -> None:
        store = InMemoryLeases()
        elector = LeaderElector(None, "l", lease_api=store, registry=CollectorRegistry(), identity="a")
        async with elector:
            await elector.wait_until_leading()
            lease = store.leases["l"]
            lease["spec"]["holderIdentity"] = "intruder"
            store.version += 1
            lease["metadata"]["resourceVersion"] = str(store.version)
            with anyio.fail_after(2.5):
                await elector.lost
            assert elector.lost_reason == "lease taken by intruder"
            assert not elector.is_leader
        # Shutdown must not clear someone else's hold.
        assert store.leases["l"]["spec"]["holderIdentity"] == "intruder"

    run_virtual(scenario)


def test_virtual_clock_gauge_tracks_leadership() -> None:
    async def scenario() -> None:
        registry = CollectorRegistry()
        elector = LeaderElector(None, "g", lease_api=InMemoryLeases(), registry=registry, identity="a")

        def status() -> float | None:
            return registry.get_sample_value("leader_election_master_status", {"name": "g"})

        async with elector:
            assert status() == 0.0
            await elector.wait_until_leading()
            assert status() == 1.0
        assert status() == 0.0

    run_virtual(scenario)


pause_schedule = st.lists(
    st.tuples(st.integers(min_value=0, max_value=2), st.floats(0.0, 40.0), st.floats(0.0, 25.0)),
    max_size=6,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pauses=pause_schedule, seed=st.integers(0, 2**16), latency=st.floats(0.0, 1.5))
def test_property_never_two_leaders(
    pauses: list[tuple[int, float, float]], seed: int, latency: float
) -> None:
    """Three candidates, random stalls of their lease calls and random network latency on each
    leg: at no instant do two of them believe they lead, and leadership moves on after stalls."""

    async def scenario() -> None:
        store = InMemoryLeases(random.Random(seed), max_latency=latency)
        electors = [
            PausableElector(None, "p", lease_api=store, registry=CollectorRegistry(), identity=f"c{i}")
            for i in range(3)
        ]
        monitor = LeadershipMonitor(electors)

        async def stall(index: int, start: float, length: float) -> None:
            await anyio.sleep(start)
            electors[index].pause()
            await anyio.sleep(length)
            electors[index].unpause()

        async def check_on_acquire(elector: LeaderElector) -> None:
            # A violation can only begin when someone acquires: check at exactly that instant.
            await elector.leading
            monitor.check()

        async with electors[0], electors[1], electors[2], anyio.create_task_group() as tg:
            tg.start_soon(monitor.run, 0.05)
            for elector in electors:
                tg.start_soon(check_on_acquire, elector)
            for index, start, length in pauses:
                tg.start_soon(stall, index, start, length)
            await anyio.sleep(120)
            for elector in electors:
                elector.unpause()  # a shielded stall would otherwise block shutdown
            tg.cancel_scope.cancel()
        assert monitor.violations == []
        assert monitor.believers_seen  # someone led at some point

    run_virtual(scenario)


async def test_controller_reconciles_only_while_leading_and_drains_on_loss(api_server: Any) -> None:
    """The intended wiring: ``graceful_shutdown_on(elector.lost)`` plus ``run_while_leading``.

    A reconcile may still start in the instant between the renew deadline and the controller
    noticing; it then sees ``is_leader`` false (and must not act). What must hold: no reconcile
    runs while both its elector and the rival believe they lead, and reconciles stop after the loss.
    """
    from kube_runtime.client import Api, ApiResource
    from kube_runtime.controller import Action, Controller

    configmaps = Api(api_server.client, ApiResource.builtin("ConfigMap"), "default")
    for i in range(3):
        await configmaps.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm{i}"}})
    elector = PausableElector(api_server.client, "ctl", "default", registry=CollectorRegistry(), **FAST)
    rival = PausableElector(api_server.client, "ctl", "default", registry=CollectorRegistry(), **FAST)
    rival.pause()
    reconciled: list[tuple[bool, bool]] = []  # (elector leads, rival leads) at each reconcile
    three_seen = anyio.Event()

    async def reconcile(obj: dict[str, Any], ctx: None) -> Action:
        reconciled.append((elector.is_leader, rival.is_leader))
        if len(reconciled) == 3:
            three_seen.set()
        return Action.requeue(0.05)

    controller = Controller(configmaps, registry=CollectorRegistry()).graceful_shutdown_on(elector.lost)
    async with elector, rival, anyio.create_task_group() as tg:

        async def stall_after_three() -> None:
            await three_seen.wait()
            rival.unpause()
            elector.pause()

        tg.start_soon(stall_after_three)
        with anyio.fail_after(10), pytest.raises(LeaderElectionLost):
            await elector.run_while_leading(controller.run, reconcile, None, None, grace=0.3)
        stopped_at = len(reconciled)
        with anyio.fail_after(10):
            await rival.wait_until_leading()
        await anyio.sleep(0.3)
        assert len(reconciled) == stopped_at  # the controller is gone
        elector.unpause()
    assert len(reconciled) >= 3
    assert all(leading for leading, _ in reconciled[:3])
    assert not any(mine and theirs for mine, theirs in reconciled)
