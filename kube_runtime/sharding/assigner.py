"""The assigner: labels every object of a ring for a live member, and moves objects when members
come and go. It runs in the one replica that holds the ring's leader Lease.

Inputs: a watch of the ring's member Leases (:class:`~kube_runtime.sharding.membership.Membership`)
and a metadata-only watch of every sharded kind (all namespaces). Each object is placed on the
:class:`~kube_runtime.sharding.hashring.HashRing` of the live members by its placement key (owned
children by their controller owner), and :func:`~kube_runtime.sharding.placement.decide` says what
to write. Objects of the ring's main kinds move off a live member by the drain handshake; owned
children (never reconciled themselves) move by relabelling at once.

Moving objects off a dead member: before it relabels them, the assigner takes the member's Lease
over (a replace guarded by the resourceVersion it last saw, so it fails if the member renewed in
the meantime) under its own holder name ``<identity>/assigner`` and keeps it renewed until no object
is labelled for that member, then releases it. While it holds the Lease, the member cannot start a
new term, so it cannot start reconciling an object that is being moved away from it (this holds for
the assigner's own replica too: the hold never names a member). A member's Lease that was deleted,
or whose holder was cleared by anyone but the member (a release leaves ``leaseDurationSeconds`` at
1), counts as fencing until its last record would have expired.

Work is event driven: watch events mark objects dirty, membership changes mark all of them, and a
sweep runs after each wake-up and at least every ``retry_period``. Label writes are JSON merge
patches; a failed write is retried at the next sweep. Watch events older than what the assigner
already saw (by resourceVersion, compared as integers when both are) are ignored, so the response
of its own write is not undone by a late event.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, Client
from kube_runtime.client.errors import ApiError, TransportError
from kube_runtime.client.resource import ApiResource
from kube_runtime.leader import LEASE_RESOURCE
from kube_runtime.sharding.hashring import DEFAULT_TOKENS, HashRing, placement_key
from kube_runtime.sharding.labels import drain_label, ring_selector, shard_label
from kube_runtime.sharding.membership import Membership
from kube_runtime.sharding.metrics import shard_metrics
from kube_runtime.sharding.placement import MemberState, assign_patch, decide, drain_patch
from kube_runtime.watcher.config import WatcherConfig
from kube_runtime.watcher.event import Delete, Init, InitApply, InitDone
from kube_runtime.watcher.watcher import metadata_watcher, watcher

__all__ = ["Assigner", "ShardedKind"]

log = logging.getLogger(__name__)

_WRITE_CONCURRENCY = 16
#: The ``leaseDurationSeconds`` a member's own release writes (client-go's convention): a Lease
#: cleared with a longer duration was cleared by someone else.
_RELEASED_DURATION = 1


@dataclass(frozen=True, slots=True)
class ShardedKind:
    """A kind of the ring: ``drains`` for main kinds (moved by the handshake), not for children."""

    resource: ApiResource
    drains: bool


_Id = tuple[int, str, str]  # (kind index, namespace, name)


class _Entry:
    __slots__ = ("draining", "key", "last_shard", "shard", "version", "waiting_since")

    def __init__(self, key: str, shard: str | None, draining: bool, version: str) -> None:
        self.key = key
        self.shard = shard
        self.draining = draining
        self.version = version
        self.last_shard = shard
        self.waiting_since: float | None = None


def _older(version: str, than: str) -> bool:
    if version.isdigit() and than.isdigit():
        return int(version) < int(than)
    return False


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Assigner:
    """One assigner term: ``await assigner.run()`` until cancelled (by the loss of the ring's
    leader Lease). Holds no state across terms: a new term lists everything again."""

    def __init__(
        self,
        client: Client,
        *,
        ring: str,
        lease_namespace: str,
        kinds: Sequence[ShardedKind],
        identity: str,
        lease_duration: float,
        renew_deadline: float,
        retry_period: float,
        tokens: int = DEFAULT_TOKENS,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.ring = ring
        self.identity = identity
        #: The holder this assigner writes into a dead member's Lease it takes over: never a
        #: member's own name (a slash is not allowed in one), so the assigner's own replica, whose
        #: member Lease it may take over, cannot mistake the hold for its own record.
        self.holder = f"{identity}/assigner"
        self._client = client
        self._lease_namespace = lease_namespace
        self._kinds = list(kinds)
        self._lease_duration = lease_duration
        self._renew_deadline = renew_deadline
        self._retry_period = retry_period
        self._tokens = tokens
        self._shard_label = shard_label(ring)
        self._drain_label = drain_label(ring)
        self._metrics = shard_metrics(registry)
        self._leases = Api(client, LEASE_RESOURCE, lease_namespace)
        self.membership = Membership(lease_duration)
        self.hash_ring = HashRing((), tokens)
        self._objects: dict[_Id, _Entry] = {}
        self._by_shard: dict[str | None, set[_Id]] = {}
        self._dirty: set[_Id] = set()
        self._holds: dict[str, float] = {}
        self._exported: set[str] = set()
        self._leases_synced = False
        self._kinds_synced = [False] * len(self._kinds)
        self._wake = anyio.Event()
        self.sweeps = 0

    # -- public state (tests, metrics) ---------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True once the Leases and every kind were listed."""
        return self._leases_synced and all(self._kinds_synced)

    def assignments(self) -> dict[str, int]:
        """Objects per member label (``""``: unassigned), as last seen."""
        return {shard or "": len(ids) for shard, ids in self._by_shard.items() if ids}

    # -- the term ----------------------------------------------------------------------------------

    async def run(self) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._watch_leases, name=f"kube_runtime.sharding.assigner[{self.ring}]/leases")
            for index, kind in enumerate(self._kinds):
                tg.start_soon(
                    self._watch_kind, index, kind, name=f"kube_runtime.sharding.assigner[{self.ring}]/{kind}"
                )
            await self._work()

    async def _watch_leases(self) -> None:
        config = WatcherConfig().labels(ring_selector(self.ring))
        buffer: list[Mapping[str, Any]] = []
        async for item in watcher(self._leases, config).default_backoff():
            now = anyio.current_time()
            if isinstance(item, Exception):
                continue
            if isinstance(item, Init):
                buffer = []
            elif isinstance(item, InitApply):
                buffer.append(item.object)
            elif isinstance(item, InitDone):
                self.membership.reset(buffer, now)
                buffer = []
                self._leases_synced = True
            elif isinstance(item, Delete):
                self.membership.forget(str(item.object["metadata"]["name"]), now)
            else:
                self.membership.observe(item.object, now)
            self._wake.set()

    async def _watch_kind(self, index: int, kind: ShardedKind) -> None:
        api = Api.all(self._client, kind.resource)
        buffer: dict[_Id, Mapping[str, Any]] = {}
        async for item in metadata_watcher(api, WatcherConfig()).default_backoff():
            if isinstance(item, Exception):
                continue
            if isinstance(item, Init):
                buffer = {}
            elif isinstance(item, InitApply):
                buffer[self._id(index, item.object)] = item.object
            elif isinstance(item, InitDone):
                for gone in [i for i in self._objects if i[0] == index and i not in buffer]:
                    self._remove(gone)
                for ident, obj in buffer.items():
                    self._upsert(ident, kind, obj, relist=True)
                buffer = {}
                self._kinds_synced[index] = True
            elif isinstance(item, Delete):
                self._remove(self._id(index, item.object))
            else:
                self._upsert(self._id(index, item.object), kind, item.object)
            self._wake.set()

    @staticmethod
    def _id(index: int, obj: Mapping[str, Any]) -> _Id:
        metadata = obj.get("metadata") or {}
        return (index, str(metadata.get("namespace") or ""), str(metadata.get("name", "")))

    def _upsert(self, ident: _Id, kind: ShardedKind, obj: Mapping[str, Any], *, relist: bool = False) -> None:
        metadata = obj.get("metadata") or {}
        labels = metadata.get("labels") or {}
        version = str(metadata.get("resourceVersion", ""))
        entry = self._objects.get(ident)
        if entry is not None and not relist and _older(version, entry.version):
            return
        shard = labels.get(self._shard_label) or None
        key = placement_key(obj, kind.resource.group, kind.resource.kind)
        if entry is None:
            entry = self._objects[ident] = _Entry(key, shard, self._drain_label in labels, version)
        else:
            self._by_shard.get(entry.shard, set()).discard(ident)
            entry.key, entry.shard, entry.version = key, shard, version
            entry.draining = self._drain_label in labels
            if shard is not None:
                entry.last_shard = shard
        self._by_shard.setdefault(shard, set()).add(ident)
        self._dirty.add(ident)

    def _remove(self, ident: _Id) -> None:
        entry = self._objects.pop(ident, None)
        if entry is not None:
            self._by_shard.get(entry.shard, set()).discard(ident)
        self._dirty.discard(ident)

    # -- sweeps ------------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            self._wake = anyio.Event()
            await self._sweep()
            now = anyio.current_time()
            wake_at = now + self._retry_period
            change = self.membership.next_change(now)
            if change is not None:
                wake_at = min(wake_at, change)
            with anyio.move_on_after(max(0.0, wake_at - now)):
                await self._wake.wait()

    async def _sweep(self) -> None:
        if not self._leases_synced:
            return
        self.sweeps += 1
        now = anyio.current_time()
        alive = self.membership.alive(now)
        if alive != self.hash_ring.members:
            log.info("ring %s: members %s", self.ring, sorted(alive))
            self.hash_ring = HashRing(alive, self._tokens)
            self._dirty.update(self._objects)
        self._metrics.members.labels(ring=self.ring).set(len(alive))
        states: dict[str, MemberState] = {}
        for shard, ids in self._by_shard.items():
            if shard is None or shard in alive:
                continue
            if ids:
                # With no live member the objects cannot move: their member's Lease is not taken
                # over (a hold would keep it from coming back for them, with nowhere else to go).
                states[shard] = await self._dead_member_state(shard, now) if alive else MemberState.FENCING
                self._dirty.update(ids)
        self._dirty.update(self._by_shard.get(None, ()))
        for member in alive:
            states[member] = MemberState.ALIVE
        await self._write(states, now)
        await self._release_idle_holds(everything=not alive)
        self._export(now, alive)

    async def _dead_member_state(self, member: str, now: float) -> MemberState:
        record = self.membership.record(member)
        if record is None:
            fenced = self.membership.fenced_until(member)
            return MemberState.FENCING if fenced is not None and now < fenced else MemberState.MOVABLE
        if record.holder == self.holder and self._holds.get(member, -math.inf) > now:
            if self._holds[member] - now < self._renew_deadline - self._retry_period:
                await self._hold(member, record.lease)
            return MemberState.MOVABLE
        if record.holder and record.held_by(record.holder, now):
            return MemberState.FENCING  # the member's record has not expired yet, or another hold
        if not record.holder and record.duration > _RELEASED_DURATION and now < record.expires_at():
            # Cleared by someone else than the member (whose release also sets the duration to
            # 1 s, as client-go's does): the member may still run until its next renew, so its
            # objects wait until that record expires, as for an expired one.
            return MemberState.FENCING
        return MemberState.MOVABLE if await self._hold(member, record.lease) else MemberState.FENCING

    async def _hold(self, member: str, lease: Mapping[str, Any]) -> bool:
        """Take over (or renew) ``member``'s Lease; True if this assigner now holds it."""
        started = anyio.current_time()
        spec = dict(lease.get("spec") or {})
        renewing = spec.get("holderIdentity") == self.holder
        now = _micro_time()
        spec.update(
            holderIdentity=self.holder,
            leaseDurationSeconds=math.ceil(self._lease_duration),
            renewTime=now,
            acquireTime=spec.get("acquireTime") if renewing else now,
            leaseTransitions=int(spec.get("leaseTransitions") or 0) + (0 if renewing else 1),
        )
        try:
            written = await self._leases.replace(member, {**lease, "spec": spec})
        except (ApiError, TransportError) as exc:
            log.info("ring %s: cannot hold the Lease of %s yet: %s", self.ring, member, exc)
            return False
        self.membership.observe(written, anyio.current_time())
        self._holds[member] = started + self._renew_deadline
        if not renewing:
            log.info("ring %s: holding the Lease of dead member %s while its objects move", self.ring, member)
        return True

    async def _release_idle_holds(self, *, everything: bool = False) -> None:
        """Release the Leases held for members with no object left (``everything``: all of them,
        when no live member could take their objects)."""
        for member in [m for m in self._holds if everything or not self._by_shard.get(m)]:
            del self._holds[member]
            record = self.membership.record(member)
            if record is None or record.holder != self.holder:
                continue
            spec = {
                **(record.lease.get("spec") or {}),
                "holderIdentity": "",
                "leaseDurationSeconds": _RELEASED_DURATION,
            }
            try:
                written = await self._leases.replace(member, {**record.lease, "spec": spec})
            except (ApiError, TransportError) as exc:
                log.info("ring %s: releasing the Lease of %s failed: %s", self.ring, member, exc)
                continue
            self.membership.observe(written, anyio.current_time())

    async def _write(self, states: Mapping[str, MemberState], now: float) -> None:
        todo, self._dirty = self._dirty, set()
        limiter = anyio.CapacityLimiter(_WRITE_CONCURRENCY)
        async with anyio.create_task_group() as tg:
            for ident in todo:
                entry = self._objects.get(ident)
                if entry is None:
                    continue
                state = states.get(entry.shard) if entry.shard is not None else None
                waiting = entry.shard is None or state is not MemberState.ALIVE
                if waiting and entry.waiting_since is None:
                    entry.waiting_since = now
                elif not waiting:
                    entry.waiting_since = None
                verdict = decide(entry.shard, entry.draining, self.hash_ring.place(entry.key), state)
                if verdict is None:
                    continue
                action, member = verdict
                if action == "drain" and not self._kinds[ident[0]].drains:
                    action, member = "assign", self.hash_ring.place(entry.key) or member
                tg.start_soon(self._patch, ident, entry, action, member, limiter)

    async def _patch(
        self, ident: _Id, entry: _Entry, action: str, member: str, limiter: anyio.CapacityLimiter
    ) -> None:
        index, namespace, name = ident
        previous = entry.last_shard  # the watch may update the entry while the write is in flight
        api = Api(self._client, self._kinds[index].resource, namespace or None)
        if action == "drain":
            patch = drain_patch(self._drain_label)
        else:
            patch = assign_patch(self._shard_label, self._drain_label, member)
        async with limiter:
            try:
                written = await api.patch(name, patch)
            except ApiError as exc:
                if exc.code != 404:
                    log.warning("ring %s: labelling %s/%s failed: %s", self.ring, namespace, name, exc)
                    self._dirty.add(ident)
                return
            except TransportError as exc:
                log.warning("ring %s: labelling %s/%s failed: %s", self.ring, namespace, name, exc)
                self._dirty.add(ident)
                return
        if action == "drain":
            self._metrics.drains.labels(ring=self.ring).inc()
        elif previous is not None and previous != member:
            self._metrics.moves.labels(ring=self.ring).inc()
        if self._objects.get(ident) is entry:
            self._upsert(ident, self._kinds[index], written)
            self._dirty.discard(ident)

    def _export(self, now: float, alive: frozenset[str]) -> None:
        shards = {shard or "": len(ids) for shard, ids in self._by_shard.items()}
        for shard in self._exported - set(shards):
            self._metrics.objects.remove(self.ring, shard)
        for shard, count in shards.items():
            self._metrics.objects.labels(ring=self.ring, shard=shard).set(count)
        self._exported = set(shards)
        waiting = [
            self._objects[i].waiting_since
            for shard, ids in self._by_shard.items()
            if shard is None or shard not in alive
            for i in ids
        ]
        oldest = min((w for w in waiting if w is not None), default=None)
        self._metrics.assigner_lag.labels(ring=self.ring).set(0.0 if oldest is None else now - oldest)
