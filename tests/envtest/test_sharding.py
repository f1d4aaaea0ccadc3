"""Sharded controllers against a real kube-apiserver: the membership, drain, partition and crash
scenario of tests/sharding/test_ring.py, on the real clock with short Leases.

The real server's label-selector watches send DELETED when an object's shard label stops matching
and ADDED when it starts to, merge patches with ``null`` remove labels, and Lease replaces are
guarded by resourceVersion: the protocol relies on all three.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api, Client
from kube_runtime.sharding import drain_label, shard_label
from kube_runtime.testing.envtest import Envtest
from kube_runtime.watcher import WatcherConfig, watcher
from kube_runtime.watcher.event import InitialListFailed
from kube_runtime.watcher.shards import ShardSelectorUnsupported, shard_range_selector
from tests.sharding.harness import CONFIGMAPS, RING, Journal, Replica

pytestmark = [pytest.mark.envtest, pytest.mark.anyio]

LEASES = {"lease_duration": 6.0, "renew_deadline": 3.0, "retry_period": 1.0}
WAIT = 120.0


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    with anyio.fail_after(WAIT):
        while not await check():  # noqa: ASYNC110 (polls the API server)
            await anyio.sleep(0.2)


async def test_join_drain_partition_and_crash(shared_envtest: Envtest) -> None:
    kubeconfig = str(shared_envtest.kubeconfig_path)
    journal = Journal()
    async with Client.from_kubeconfig(kubeconfig) as client, anyio.create_task_group() as tg:
        api = Api(client, CONFIGMAPS, "default")
        for i in range(20):
            await api.create({"metadata": {"name": f"shard-{i}"}, "data": {"v": "0"}})

        async def objects() -> list[dict[str, Any]]:
            return [o for o in (await api.list())["items"] if o["metadata"]["name"].startswith("shard-")]

        async def assignments() -> dict[str, str | None]:
            return {
                o["metadata"]["name"]: (o["metadata"].get("labels") or {}).get(shard_label(RING))
                for o in await objects()
            }

        def settled(members: set[str]) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                for obj in await objects():
                    labels = obj["metadata"].get("labels") or {}
                    if labels.get(shard_label(RING)) not in members or drain_label(RING) in labels:
                        return False
                    if obj["metadata"]["resourceVersion"] not in journal.reconciled.get(
                        obj["metadata"]["name"], ()
                    ):
                        return False
                return set((await assignments()).values()) == members

            return check

        async def join(identity: str) -> Replica:
            replica = Replica(kubeconfig, identity, journal, work=0.8, **LEASES)
            await tg.start(replica.serve)
            return replica

        a = await join("a")
        await until(settled({"a"}))
        b = await join("b")
        await until(settled({"a", "b"}))  # b got its share by drains
        on_b = {name for name, shard in (await assignments()).items() if shard == "b"}

        # Partition b while it reconciles: it stops at its renew deadline; a starts after b's Lease expired.
        for obj in await objects():
            await api.patch(obj["metadata"]["name"], {"data": {"v": "1"}})
        with anyio.fail_after(WAIT):
            while b.reconciling == 0:  # noqa: ASYNC110 (the replica's counter has no event)
                await anyio.sleep(0.05)
        cut = anyio.current_time()
        b.transport.partitioned = True
        await until(settled({"a"}))
        b_last = max(t for t, kind, who, _ in journal.events if who == "b" and kind == "end")
        a_first = min(t for t, kind, who, name in journal.events if who == "a" and name in on_b and t > cut)
        assert b_last < a_first

        # Healed, b rejoins; then a crashes and everything ends up on b, last versions reconciled.
        b.transport.partitioned = False
        await until(settled({"a", "b"}))
        a.crash()
        await a.done.wait()
        await until(settled({"b"}))
        for obj in await objects():
            await api.patch(obj["metadata"]["name"], {"data": {"v": "2"}})
        await until(settled({"b"}))
        tg.cancel_scope.cancel()
    assert journal.overlaps == []


async def test_shard_selector_on_a_server_without_it_is_a_clear_error(shared_envtest: Envtest) -> None:
    """kube-apiserver 1.34 predates KEP-5866: it ignores shardSelector and sends every object, with
    no shardInfo; the watcher refuses that list instead of caching everything."""
    async with Client.from_kubeconfig(str(shared_envtest.kubeconfig_path)) as client:
        api = Api(client, CONFIGMAPS, "default")
        await api.create({"metadata": {"name": "unsharded"}})
        selector = shard_range_selector(0, 2)
        assert "shardInfo" not in (await api.list(shard_selector=selector))["metadata"]
        async with watcher(api, WatcherConfig().shards(selector)) as stream:
            with anyio.fail_after(WAIT):
                async for item in stream:
                    if isinstance(item, Exception):
                        break
        assert isinstance(item, InitialListFailed)
        assert isinstance(item.__cause__, ShardSelectorUnsupported)
