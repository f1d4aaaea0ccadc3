"""A controller gated on leader election, cold and warm (EnableWarmup), on the virtual clock."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.controller import Action, Controller, Reconciled
from kube_runtime.leader import LeaderElector
from kube_runtime.testing.leadership import ManualElector, lease_held
from kube_runtime.testing.server import ApiServer
from tests.controller.conftest import config_map, take_until

pytestmark = pytest.mark.anyio


def watchers(server: ApiServer) -> int:
    return int(server.stats()["watchers"])


async def _standby_then_lead(api_server: ApiServer, config_maps: Api, *, warmup: bool) -> list[float]:
    """Three objects; a standby for 30 s; then it leads. Returns the reconcile start times."""
    for name in ("a", "b", "c"):
        await config_maps.create(config_map(name))
    elector = ManualElector()
    starts: list[float] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        starts.append(anyio.current_time())
        return Action.await_change()

    controller = Controller(config_maps).with_leader_election(elector, warmup=warmup)
    async with controller.run(reconcile, None, None) as results:
        with anyio.move_on_after(30):
            item = await results.receive()
            raise AssertionError(f"reconciled while a standby: {item}")
        if warmup:
            assert len(controller.store) == 3  # synced while waiting for the Lease
            assert watchers(api_server) == 1
        else:
            assert len(controller.store) == 0  # nothing listed, nothing watched
            assert watchers(api_server) == 0
        await config_maps.patch("a", {"data": {"v": "2"}})  # a change while a standby
        elector.lead()
        items = await take_until(results, lambda items: len(items) == 3)
    assert all(isinstance(item, Reconciled) for item in items)
    return starts


async def test_a_warm_standby_syncs_its_store_and_reconciles_at_once(
    api_server: ApiServer, config_maps: Api
) -> None:
    starts = await _standby_then_lead(api_server, config_maps, warmup=True)
    assert len(starts) == 3  # one per object: the standby's queue held one entry each


async def test_a_cold_standby_watches_nothing_until_it_leads(api_server: ApiServer, config_maps: Api) -> None:
    starts = await _standby_then_lead(api_server, config_maps, warmup=False)
    assert len(starts) == 3


async def test_losing_the_lease_cancels_running_reconciles_and_ends_the_run(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    elector = ManualElector()
    elector.lead()
    cancelled = anyio.Event()
    started = anyio.Event()

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        return Action.await_change()

    controller = Controller(config_maps).with_leader_election(elector, warmup=True)
    async with controller.run(reconcile, None, None) as results:
        await started.wait()
        elector.lose()
        with anyio.fail_after(1):
            rest = [item async for item in results]  # the stream ends
    assert rest == []
    assert cancelled.is_set()


async def test_a_standby_whose_term_ends_first_never_reconciles(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    elector = ManualElector()
    reconciled = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        reconciled.append(obj)
        return Action.await_change()

    for warmup in (True, False):
        controller = Controller(config_maps).with_leader_election(elector, warmup=warmup)
        elector.lose()
        async with controller.run(reconcile, None, None) as results:
            with anyio.fail_after(5):
                items = [item async for item in results]
        assert not [item for item in items if isinstance(item, Reconciled)]
    assert reconciled == []


async def test_with_a_real_elector_the_warm_standby_takes_over(
    api_server: ApiServer, config_maps: Api
) -> None:
    await config_maps.create(config_map("a"))
    leases = {"lease_duration": 4.0, "renew_deadline": 3.0, "retry_period": 0.5}
    first = LeaderElector(api_server.client, "warm", identity="first", **leases)
    second = LeaderElector(api_server.client, "warm", identity="second", **leases)
    reconciled_by: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: str) -> Action:
        reconciled_by.append(ctx)
        return Action.await_change()

    standby = Controller(config_maps).with_leader_election(second, warmup=True)
    async with lease_held(first) as release, second, standby.run(reconcile, None, "second") as results:
        with anyio.move_on_after(10):
            await results.receive()
            raise AssertionError("the standby reconciled while the other replica led")
        assert len(standby.store) == 1
        release()
        (item,) = await take_until(results, lambda items: len(items) == 1, within=30)
    assert isinstance(item, Reconciled)
    assert reconciled_by == ["second"]


class ExpiringElector(ManualElector):
    """Its term can end by the clock before its ``lost`` signal fires, as a real elector's does in
    a process resumed after a pause (the deadline passed; the watchdog task has not run yet)."""

    def __init__(self) -> None:
        super().__init__()
        self.expired = False

    @property
    def is_leader(self) -> bool:
        return super().is_leader and not self.expired


async def test_no_reconcile_starts_once_the_term_is_over_by_the_clock(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    elector = ExpiringElector()
    elector.lead()
    started: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        started.append(obj["metadata"]["resourceVersion"])
        return Action.await_change()

    controller = Controller(config_maps).with_leader_election(elector)
    with anyio.fail_after(30):
        async with controller.run(reconcile, None, None) as results:
            await take_until(results, lambda items: len(items) == 1)
            elector.expired = True  # lost has not fired
            await config_maps.patch("a", {"data": {"v": "2"}})
            rest = [item async for item in results]  # the run stops by itself
    assert len(started) == 1
    assert not [item for item in rest if isinstance(item, Reconciled)]
