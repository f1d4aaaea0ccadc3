"""The priority queue and a warm standby against a real kube-apiserver (real Leases, real watches)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import Action, Controller, ControllerConfig, Reconciled
from kube_runtime.leader import LeaderElector
from kube_runtime.testing.envtest import Envtest
from kube_runtime.testing.leadership import lease_held

pytestmark = [pytest.mark.envtest, pytest.mark.anyio]

CONFIG_MAP = ApiResource.builtin("ConfigMap")
NAMESPACE = ApiResource.builtin("Namespace")


@pytest.fixture
async def client(shared_envtest: Envtest) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(shared_envtest.kubeconfig_path)) as client:
        yield client


async def namespace_with(client: Client, name: str, count: int) -> Api:
    await Api(client, NAMESPACE).create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    api: Api = Api(client, CONFIG_MAP, name)
    for i in range(count):
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:02}"}})
    return api


async def until(condition: Callable[[], bool], within: float = 30) -> None:
    """Poll ``condition`` (a state of this process) until it holds."""
    with anyio.fail_after(within):
        while not condition():  # noqa: ASYNC110 (the store offers no event per object state)
            await anyio.sleep(0.01)


async def test_a_live_change_overtakes_the_listed_backlog(client: Client) -> None:
    api = await namespace_with(client, "priority-live", 20)
    order: list[str] = []
    controller = Controller(api).with_config(ControllerConfig(concurrency=1))

    def changed() -> bool:
        obj = controller.store.get_by_key("cm-19", "priority-live")
        return obj is not None and (obj.get("data") or {}).get("v") == "live"

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        order.append(f"{obj['metadata']['name']}:{(obj.get('data') or {}).get('v', '')}")
        if len(order) == 1:  # while the first listed object reconciles, the last one changes
            await api.patch("cm-19", {"data": {"v": "live"}})
            await until(changed)  # the watch delivered it: its request is queued
        return Action.await_change()

    async with controller.run(reconcile, None, None) as results:
        with anyio.fail_after(60):
            async for item in results:
                assert isinstance(item, Reconciled)
                if len(order) == 20:
                    break
    assert order.index("cm-19:live") == 1
    assert "cm-19:" not in order  # the listed entry was raised, not run as well


async def test_a_warm_standby_syncs_while_the_leader_leads_and_takes_over(client: Client) -> None:
    api = await namespace_with(client, "warm-standby", 3)
    leases = {"lease_duration": 4.0, "renew_deadline": 3.0, "retry_period": 0.5}
    leader = LeaderElector(client, "warm-standby", "warm-standby", identity="leader", **leases)
    standby_elector = LeaderElector(client, "warm-standby", "warm-standby", identity="standby", **leases)
    reconciled: list[str] = []

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        reconciled.append(obj["metadata"]["name"])
        return Action.await_change()

    standby = Controller(api).with_leader_election(standby_elector, warmup=True)
    run = standby.run(reconcile, None, None)
    async with lease_held(leader) as release, standby_elector, run as results:
        await until(lambda: len(standby.store) == 3)  # warm: listed and watching while a standby
        assert reconciled == []
        assert not standby_elector.is_leader
        release()
        with anyio.fail_after(30):
            async for _ in results:
                if len(reconciled) == 3:
                    break
    assert sorted(reconciled) == ["cm-00", "cm-01", "cm-02"]
