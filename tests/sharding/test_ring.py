"""Sharded controllers against the embedded API server, on the virtual clock: membership (join,
graceful leave, crash), rebalancing with drains, children following their owners, assigner
failover and a network partition of one replica. Every scenario checks the two invariants: no
object reconciled by two replicas at overlapping times, and every object's last version reconciled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import pytest

from kube_runtime.client import Api
from kube_runtime.sharding import drain_label, shard_label
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.testing.server import ApiServer
from tests.sharding.harness import CONFIGMAPS, RING, Journal, Replica, labelled, until


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


class Ring:
    """Replicas of one ring on one server, started and stopped by the test."""

    def __init__(self, server: ApiServer, tg: anyio.abc.TaskGroup, **options: Any) -> None:
        self.server = server
        self.tg = tg
        self.journal = Journal()
        self.replicas: dict[str, Replica] = {}
        self.options = options

    async def join(self, identity: str) -> Replica:
        replica = Replica(str(self.server.kubeconfig_path), identity, self.journal, **self.options)
        self.replicas[identity] = replica
        await self.tg.start(replica.serve)
        return replica

    def live(self) -> list[str]:
        return [name for name, r in self.replicas.items() if not r.done.is_set()]

    def assignments(self) -> dict[str, str | None]:
        return labelled(self.server.objects(CONFIGMAPS, "default"))

    def settled(self, members: list[str]) -> bool:
        """Every object labelled for one of ``members``, none draining, its current version reconciled."""
        for obj in self.server.objects(CONFIGMAPS, "default"):
            labels = obj["metadata"].get("labels") or {}
            if labels.get(shard_label(RING)) not in members or drain_label(RING) in labels:
                return False
            if obj["metadata"]["resourceVersion"] not in self.journal.reconciled.get(
                obj["metadata"]["name"], ()
            ):
                return False
        return True

    def assigner_of(self) -> list[str]:
        return [
            name
            for name, r in self.replicas.items()
            if r.sharded.assigner is not None and not r.done.is_set()
        ]


@asynccontextmanager
async def ring(server: ApiServer, **options: Any) -> AsyncIterator[Ring]:
    async with anyio.create_task_group() as tg:
        yield Ring(server, tg, **options)
        tg.cancel_scope.cancel()


async def create(server: ApiServer, count: int, prefix: str = "cm") -> None:
    api = Api(server.client, CONFIGMAPS, "default")
    for i in range(count):
        await api.create({"metadata": {"name": f"{prefix}-{i}"}, "data": {"v": "0"}})


async def update_all(server: ApiServer, value: str) -> None:
    api = Api(server.client, CONFIGMAPS, "default")
    for obj in server.objects(CONFIGMAPS, "default"):
        await api.patch(obj["metadata"]["name"], {"data": {"v": value}})


def counter(replica: Replica, name: str) -> float:
    value = replica.registry.get_sample_value(name, {"ring": RING})
    return value or 0.0


async def test_join_rebalance_leave_and_crash(api_server: ApiServer) -> None:
    await create(api_server, 40)
    async with ring(api_server) as r:
        a = await r.join("a")
        await until(lambda: r.settled(["a"]))
        assert r.assigner_of() == ["a"]

        b = await r.join("b")
        await until(lambda: set(r.assignments().values()) == {"a", "b"} and r.settled(["a", "b"]))
        drained = counter(a, "kube_runtime_shard_drains_total")
        assert drained > 0
        assert counter(a, "kube_runtime_shard_moves_total") == drained  # every drain became a move
        assert list(r.assignments().values()).count("b") == drained
        acknowledged = a.registry.get_sample_value(
            "kube_runtime_shard_drains_acknowledged_total", {"ring": RING, "shard": "a"}
        )
        assert acknowledged == drained

        # Graceful leave: b finishes, releases its Lease, and its objects return to a at once.
        b.leave()
        await b.done.wait()
        await until(lambda: r.settled(["a"]))

        # Crash: c's objects stay with it until its Lease expires, then move without a drain.
        c = await r.join("c")
        await until(lambda: set(r.assignments().values()) == {"a", "c"} and r.settled(["a", "c"]))
        drains_before = counter(a, "kube_runtime_shard_drains_total")
        c.crash()
        await c.done.wait()
        await until(lambda: r.settled(["a"]))
        assert counter(a, "kube_runtime_shard_drains_total") == drains_before

        await update_all(api_server, "1")
        await until(lambda: r.settled(["a"]))
    assert r.journal.overlaps == []
    assert r.journal.by_replica.keys() == {"a", "b", "c"}
