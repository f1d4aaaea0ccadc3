"""A hypothesis state machine over a sharded ring on the embedded API server (virtual clock):
random joins, graceful leaves, crashes, object creates/updates/deletes and waits.

Invariants: after every step, no object was ever reconciled by two replicas at overlapping times;
at the end (once a member is up and the ring settled), every object's last version was reconciled.

The machine owns a :class:`VirtualClockLoop`; the API server and the replicas run as tasks of one
host task on it, and each rule runs the loop until its own coroutine is done. Between rules the loop
does not run, so virtual time stands still.
"""

from __future__ import annotations

import asyncio
import random

import anyio
import anyio.abc
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from kube_runtime.client import Api
from kube_runtime.sharding import drain_label, shard_label
from kube_runtime.testing.clock import VirtualClockLoop
from kube_runtime.testing.server import ApiServer
from tests.sharding.harness import CONFIGMAPS, RING, Journal, Replica, until

NAMES = ("r0", "r1", "r2", "r3")


class _Host:
    """Runs the server and the replicas' tasks until stopped."""

    def __init__(self) -> None:
        self.server: ApiServer | None = None
        self.tg: anyio.abc.TaskGroup | None = None
        self.ready = asyncio.Event()
        self.stop = asyncio.Event()

    async def main(self) -> None:
        async with ApiServer() as server, anyio.create_task_group() as tg:
            self.server, self.tg = server, tg
            self.ready.set()
            await self.stop.wait()
            tg.cancel_scope.cancel()


class ShardedRing(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = VirtualClockLoop()
        self.host = _Host()
        self.host_task = self.loop.create_task(self.host.main())
        self.loop.run_until_complete(self.host.ready.wait())
        assert self.host.server is not None
        self.server = self.host.server
        self.api = Api(self.server.client, CONFIGMAPS, "default")
        self.journal = Journal()
        self.replicas: dict[str, Replica] = {}
        self.created = 0

    def _run(self, coro: object) -> None:
        self.loop.run_until_complete(coro)  # type: ignore[arg-type]

    def live(self) -> list[str]:
        return sorted(name for name, r in self.replicas.items() if not r.done.is_set())

    @initialize(count=st.integers(1, 8))
    def seed_objects(self, count: int) -> None:
        self._run(self._create(count))

    async def _create(self, count: int) -> None:
        for _ in range(count):
            await self.api.create({"metadata": {"name": f"o{self.created}"}, "data": {"v": "0"}})
            self.created += 1

    @precondition(lambda self: len(self.live()) < len(NAMES))
    @rule(data=st.data())
    def join(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from([n for n in NAMES if n not in self.live()]))
        replica = Replica(str(self.server.kubeconfig_path), name, self.journal)
        self.replicas[name] = replica
        assert self.host.tg is not None

        async def start() -> None:
            assert self.host.tg is not None
            await self.host.tg.start(replica.serve)

        self._run(start())

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data())
    def leave(self, data: st.DataObject) -> None:
        replica = self.replicas[data.draw(st.sampled_from(self.live()))]

        async def leave() -> None:  # cancel scopes and events are touched on the loop only
            replica.leave()
            await replica.done.wait()

        self._run(leave())

    @precondition(lambda self: bool(self.live()))
    @rule(data=st.data())
    def crash(self, data: st.DataObject) -> None:
        replica = self.replicas[data.draw(st.sampled_from(self.live()))]

        async def crash() -> None:
            replica.crash()
            await replica.done.wait()

        self._run(crash())

    @rule(count=st.integers(1, 4))
    def create(self, count: int) -> None:
        self._run(self._create(count))

    @rule(seed=st.integers(0, 2**16), share=st.floats(0.1, 1.0))
    def update(self, seed: int, share: float) -> None:
        names = [o["metadata"]["name"] for o in self.server.objects(CONFIGMAPS, "default")]
        chosen = random.Random(seed).sample(names, max(1, int(len(names) * share))) if names else []

        async def patch() -> None:
            for name in chosen:
                await self.api.patch(name, {"data": {"v": str(seed)}})

        self._run(patch())

    @rule(seed=st.integers(0, 2**16))
    def delete(self, seed: int) -> None:
        names = [o["metadata"]["name"] for o in self.server.objects(CONFIGMAPS, "default")]
        if names:
            self._run(self.api.delete(random.Random(seed).choice(names)))

    @rule(seconds=st.sampled_from([0.5, 3.0, 12.0, 40.0]))
    def wait(self, seconds: float) -> None:
        self._run(anyio.sleep(seconds))

    @invariant()
    def never_two_replicas_at_once(self) -> None:
        assert self.journal.overlaps == []

    def settled(self) -> bool:
        live = self.live()
        for obj in self.server.objects(CONFIGMAPS, "default"):
            meta = obj["metadata"]
            labels = meta.get("labels") or {}
            if labels.get(shard_label(RING)) not in live or drain_label(RING) in labels:
                return False
            if meta["resourceVersion"] not in self.journal.reconciled.get(meta["name"], ()):
                return False
        return True

    def teardown(self) -> None:
        try:
            if not self.live():
                self.join_named(next(n for n in NAMES))
            self._run(until(self.settled))
            assert self.journal.overlaps == []
        finally:
            self.host.stop.set()
            self._run(self.host_task)
            self.loop.close()

    def join_named(self, name: str) -> None:
        replica = Replica(str(self.server.kubeconfig_path), name, self.journal)
        self.replicas[name] = replica

        async def start() -> None:
            assert self.host.tg is not None
            await self.host.tg.start(replica.serve)

        self._run(start())


ShardedRing.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_sharded_ring = ShardedRing.TestCase
