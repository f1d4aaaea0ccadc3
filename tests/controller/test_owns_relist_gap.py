"""A child created and deleted while the ``owns`` watch was away still reconciles its owner.

Such a child is in no list and its delete was never sent: the relist cannot say which owner it
belonged to. kube-rs (``trigger_owners``) and client-go's informers both miss it, and the owner
keeps a state nobody reconciled (the randomized fault schedule on a real kube-apiserver found it:
a parent's Secret written while the Secret watch was broken, deleted before it relisted). Here a
relist after the first reconciles every owner at low priority; the owners' own watch stays
connected throughout, so nothing else triggers them.
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.controller import Action, Controller, QueueError, Reconciled
from kube_runtime.controller.action import LOW_PRIORITY, ReconcileReason
from kube_runtime.controller.triggers import store_requests, trigger_owners
from kube_runtime.store.store import store
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import Init, InitApply, InitDone, WatcherConfig, WatchError
from tests.controller.conftest import CONFIG_MAP, SECRET, config_map

pytestmark = pytest.mark.anyio

PARENTS = 300


def owned_secret(name: str, owner: dict[str, Any]) -> dict[str, Any]:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": owner["metadata"]["name"]}
    ref |= {"uid": owner["metadata"]["uid"], "controller": True}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "ownerReferences": [ref]}}


async def test_a_child_created_and_deleted_during_a_gap_reconciles_its_owner(api_server: ApiServer) -> None:
    ops = api_server.ops
    maps, secrets = api_server.resource_type(CONFIG_MAP), api_server.resource_type(SECRET)
    for i in range(PARENTS):
        ops.create(maps, "default", config_map(f"p-{i:03d}", v="0"))
    ops.create(maps, "default", config_map("lonely", v="0"))  # reconciled, but owns no Secret
    reconciled: dict[str, int] = {}
    reasons: dict[str, str] = {}
    watch_errors: list[Any] = []
    changed = anyio.Event()

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        name = obj["metadata"]["name"]
        reconciled[name] = reconciled.get(name, 0) + 1
        if name == "lonely":
            return Action.await_change()
        await Api(api_server.client, SECRET, "default").patch(
            name, owned_secret(name, obj), patch_type="apply", field_manager="test", force=True
        )
        return Action.await_change()

    controller = Controller(Api(api_server.client, CONFIG_MAP, "default"), WatcherConfig(page_size=50))
    controller.owns(Api(api_server.client, SECRET, "default"), WatcherConfig(page_size=50))

    async with controller.run(reconcile, None, None) as results, anyio.create_task_group() as tg:

        async def consume() -> None:
            nonlocal changed
            async for item in results:
                if isinstance(item, Reconciled):
                    reasons[item.obj_ref.name] = str(item.reason)
                elif isinstance(item, QueueError):
                    watch_errors.append(item.watcher_error)
                changed.set()
                changed = anyio.Event()

        tg.start_soon(consume)
        with anyio.fail_after(120):
            while len(reconciled) < PARENTS + 1:
                await changed.wait()
        await anyio.sleep(10)  # quiescent: each parent's own Secret event has come and gone
        before = dict(reconciled)

        owner = ops.get(maps, "default", "lonely").obj
        # The Secret watch ends; before it can resume (nothing awaits in between), a child of
        # "lonely" comes and goes and the history goes with it. The ConfigMap watch stays open.
        assert api_server.faults.close_watches(secrets.storage_key) >= 1
        ops.create(secrets, "default", owned_secret("lonely-child", owner))
        ops.delete(secrets, "default", "lonely-child")
        api_server.faults.compact()

        with anyio.fail_after(120):
            while reconciled["lonely"] == before["lonely"]:
                await changed.wait()
        await anyio.sleep(10)
        tg.cancel_scope.cancel()

    relisted = any(isinstance(e, WatchError) and e.code == 410 for e in watch_errors)
    assert relisted, "the Secret watch did not relist"
    assert reasons["lonely"] == "Secret watch relisted"
    assert all(reconciled[name] > count for name, count in before.items()), "every owner is reconciled"


async def test_trigger_owners_asks_on_relist_at_every_relist_but_the_first() -> None:
    """The trigger alone, over a scripted watch: the first listing asks nothing, each later one
    emits ``on_relist``'s requests at low priority; without ``on_relist`` (kube-rs, client-go) a
    relist that shows no change triggers nothing."""
    reader, writer = store(CONFIG_MAP)
    for name in ("a", "b"):
        writer.apply_watcher_event(InitApply({"metadata": {"name": name, "namespace": "ns", "uid": name}}))
    writer.apply_watcher_event(InitDone())
    reason = ReconcileReason.custom("Secret watch relisted")
    every = store_requests(reader, CONFIG_MAP, reason)
    events: list[Any] = [Init(), InitDone(), RuntimeError("broke"), Init(), InitDone(), Init(), InitDone()]

    async def scripted() -> Any:
        for event in events:
            yield event

    with_relist = [item async for item in trigger_owners(scripted(), CONFIG_MAP, SECRET, on_relist=every)]
    requests = [item for item in with_relist if not isinstance(item, Exception)]
    assert [(r.obj_ref.name, r.reason, r.priority) for r in requests] == [
        (name, reason, LOW_PRIORITY) for _ in range(2) for name in ("a", "b")
    ]
    without = [item async for item in trigger_owners(scripted(), CONFIG_MAP, SECRET)]
    assert all(isinstance(item, Exception) for item in without)
