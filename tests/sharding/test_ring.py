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
from kube_runtime.client.resource import ApiResource
from kube_runtime.observe.health import HealthChecks
from kube_runtime.sharding import drain_label, shard_label
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import Apply, InitApply, WatcherConfig, watcher
from tests.sharding.harness import CONFIGMAPS, RING, Journal, Replica, labelled, until

SECRETS = ApiResource.builtin("Secret")
LEASES = ApiResource.builtin("Lease", "coordination.k8s.io/v1")


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
        checks = HealthChecks()
        checks.add_store("shard", a.sharded)  # /readyz: member Lease held and the shard's store synced
        await until(lambda: r.settled(["a"]))
        assert r.assigner_of() == ["a"]
        assert [result.ok for result in await checks.run("readyz")] == [True]

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


async def test_children_follow_their_owners(api_server: ApiServer) -> None:
    await create(api_server, 20)
    secrets = Api(api_server.client, SECRETS, "default")
    for owner in api_server.objects(CONFIGMAPS, "default"):
        meta = owner["metadata"]
        ref = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": meta["name"],
            "uid": meta["uid"],
            "controller": True,
        }
        await secrets.create({"metadata": {"name": f"{meta['name']}-child", "ownerReferences": [ref]}})
    await secrets.create({"metadata": {"name": "orphan"}})

    def children_follow() -> bool:
        owners = labelled(api_server.objects(CONFIGMAPS, "default"))
        children = labelled(api_server.objects(SECRETS, "default"))
        return children["orphan"] is not None and all(
            children[f"{name}-child"] == shard for name, shard in owners.items()
        )

    async with ring(api_server, owns=True) as r:
        await r.join("a")
        await until(lambda: r.settled(["a"]) and children_follow())
        await r.join("b")
        await until(
            lambda: (
                set(r.assignments().values()) == {"a", "b"} and r.settled(["a", "b"]) and children_follow()
            )
        )
        # A child's change reaches its owner's member only: b's owns watch is scoped to b's shard.
        owner = next(name for name, shard in r.assignments().items() if shard == "b")
        before = len(r.journal.events)
        await secrets.patch(f"{owner}-child", {"data": {"k": "dg=="}})

        def owner_reconciled() -> list[str]:
            return [
                who for _, kind, who, name in r.journal.events[before:] if kind == "end" and name == owner
            ]

        await until(lambda: bool(owner_reconciled()))
        assert set(owner_reconciled()) == {"b"}
    assert r.journal.overlaps == []


async def test_assigner_failover(api_server: ApiServer) -> None:
    await create(api_server, 20)
    async with ring(api_server) as r:
        a = await r.join("a")
        await until(lambda: r.assigner_of() == ["a"] and r.settled(["a"]))
        b = await r.join("b")
        await until(lambda: r.settled(["a", "b"]) and "b" in r.assignments().values())
        a.crash()
        await a.done.wait()
        # b takes over the ring's leader Lease once a's expires, then moves a's objects to itself.
        await until(lambda: r.assigner_of() == ["b"] and r.settled(["b"]))
        await create(api_server, 5, prefix="late")
        await until(lambda: r.settled(["b"]))
        assert b.sharded.assigner is not None
        assert b.sharded.assigner.assignments() == {"b": 25}
    assert r.journal.overlaps == []


async def test_partitioned_replica_stops_before_its_objects_move(api_server: ApiServer) -> None:
    await create(api_server, 20)
    async with ring(api_server, work=3.0) as r:
        a = await r.join("a")
        await until(lambda: r.settled(["a"]))
        b = await r.join("b")
        await until(lambda: r.settled(["a", "b"]) and "b" in r.assignments().values())
        on_b = {name for name, shard in r.assignments().items() if shard == "b"}
        await update_all(api_server, "1")  # b is reconciling (3 s each) when it is cut off
        await until(lambda: b.reconciling > 0)
        cut = anyio.current_time()
        b.transport.partitioned = True
        await until(lambda: all(r.assignments()[name] == "a" for name in on_b) and r.settled(["a"]))
        b_last = max(t for t, kind, who, name in r.journal.events if who == "b" and kind == "end")
        a_first = min(t for t, kind, who, name in r.journal.events if who == "a" and name in on_b and t > cut)
        # b stopped (its reconciles cancelled at its renew deadline) a safety margin before a started.
        assert b_last <= cut + b.sharded.renew_deadline
        assert (
            a_first - b_last >= b.sharded.lease_duration - b.sharded.renew_deadline - b.sharded.retry_period
        )
        assert not b.done.is_set()  # b is alive and campaigning for a new term
        assert not b.sharded.is_ready()  # and not ready: it holds no Lease

        # The network heals: b rejoins once the assigner gave its Lease back, and gets objects by drains.
        b.transport.partitioned = False
        await until(lambda: set(r.assignments().values()) == {"a", "b"} and r.settled(["a", "b"]))
        assert b.run is not None
        assert b.run.terms == 2
        assert a.sharded.is_member()
    assert r.journal.overlaps == []


async def test_the_assigners_own_member_lease_is_taken_over_under_another_name(api_server: ApiServer) -> None:
    """The assigner's replica loses its member Lease (its renews fail) while it keeps the ring's
    leader Lease. The assigner holds that Lease as ``a/assigner``, never as ``a``: a hold in the
    member's own name made ``a`` look alive again to the assigner (its objects stuck on a replica
    that stopped) and to ``a``'s elector (which resumed without a new term while they moved)."""
    await create(api_server, 20)
    async with ring(api_server, work=3.0) as r:
        a = await r.join("a")
        await until(lambda: r.assigner_of() == ["a"] and r.settled(["a"]))
        b = await r.join("b")
        await until(lambda: r.settled(["a", "b"]) and "b" in r.assignments().values())
        holders: list[str] = []

        async def record_holders() -> None:
            config = WatcherConfig().fields("metadata.name=a")
            async for item in watcher(Api(api_server.client, LEASES, "default"), config):
                if isinstance(item, Apply | InitApply):
                    holders.append(str(item.object["spec"].get("holderIdentity") or ""))

        r.tg.start_soon(record_holders)
        # a's elector reads its Lease before each renew; the assigner replaces it from its watch.
        a.transport.refused = lambda request: (
            request.method == "GET" and request.url.path.endswith("/leases/a")
        )
        await update_all(api_server, "1")
        await until(lambda: r.settled(["b"]))
        assert "a/assigner" in holders
        # And they stay there: a is not counted alive while the assigner holds its Lease.
        assigner = a.sharded.assigner
        assert assigner is not None
        swept = assigner.sweeps
        await until(lambda: assigner.sweeps >= swept + 5)
        assert r.settled(["b"])
        assert r.assigner_of() == ["a"]
        assert not a.sharded.is_member()

        # Its renews reach the server again: a joins for a new term once the hold is released.
        a.transport.refused = None
        await until(lambda: set(r.assignments().values()) == {"a", "b"} and r.settled(["a", "b"]))
        assert b.sharded.is_member()
    assert r.journal.overlaps == []


async def test_a_member_lease_cleared_by_hand_is_fenced_until_it_expires(api_server: ApiServer) -> None:
    """Someone clears ``holderIdentity`` of a busy member's Lease (``kubectl edit``): the member runs
    until its next renew, so its objects move only once that record expired, never while it still
    reconciles them. Its own release (``leaseDurationSeconds: 1``) still moves them at once."""
    await create(api_server, 20)
    async with ring(api_server, work=3.0) as r:
        await r.join("a")
        await until(lambda: r.assigner_of() == ["a"] and r.settled(["a"]))
        b = await r.join("b")
        await until(lambda: r.settled(["a", "b"]) and "b" in r.assignments().values())
        await update_all(api_server, "1")
        await until(lambda: b.reconciling > 0)
        leases = Api(api_server.client, LEASES, "default")
        await leases.patch("b", {"spec": {"holderIdentity": None}})
        await until(lambda: r.settled(["a", "b"]) or r.settled(["a"]))
        await update_all(api_server, "2")
        await until(lambda: r.settled(["a", "b"]) or r.settled(["a"]))
    assert r.journal.overlaps == []


async def test_a_sole_member_that_lost_its_lease_gets_it_back(api_server: ApiServer) -> None:
    """With no live member the objects of a dead one cannot move, so the assigner does not take its
    Lease over: a hold would keep the member from coming back for them (a ring of one whose member
    Lease lapsed stopped for good)."""
    await create(api_server, 10)
    async with ring(api_server) as r:
        a = await r.join("a")
        await until(lambda: r.assigner_of() == ["a"] and r.settled(["a"]))
        a.transport.refused = lambda request: (
            request.method == "GET" and request.url.path.endswith("/leases/a")
        )
        await until(lambda: not a.sharded.is_member())
        assigner = a.sharded.assigner
        assert assigner is not None
        await until(lambda: not assigner.membership.alive(anyio.current_time()))  # its Lease expired
        a.transport.refused = None
        await update_all(api_server, "1")
        await until(lambda: a.sharded.is_member() and r.settled(["a"]))
    assert r.journal.overlaps == []
