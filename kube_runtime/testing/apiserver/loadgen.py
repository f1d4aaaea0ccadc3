"""Server-side load for benchmarks: bulk creation, paced churn and paced create/delete cycles
without HTTP per write.

Creations go through the same :class:`ObjectOps` path as HTTP writes (same validation, events and
resourceVersions); churn writes, which change one annotation, are committed as bytes built from a
per-object template (same events and resourceVersions, a fraction of the server's CPU), so
watchers cannot tell either from an HTTP write. The created objects' decoded dicts are dropped
(records keep their JSON bytes), so the server's own collector has little to trace: its pauses
would otherwise show up as client-side latency. Churned objects carry the annotation
``kube-runtime.dev/emit-ns`` (CLOCK_REALTIME nanoseconds at commit) so a benchmark can measure
end-to-end latency from the server's write to the client's reconcile.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel
import orjson

from kube_runtime.testing.apiserver.ops import ObjectOps
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.status import StatusError
from kube_runtime.testing.apiserver.storage import Record

__all__ = ["EMIT_ANNOTATION", "ChurnStats", "LoadGenerator"]

EMIT_ANNOTATION = "kube-runtime.dev/emit-ns"


@dataclass
class ChurnStats:
    """Progress of one churn run."""

    requested: int
    done: int = 0
    started: float = 0.0
    finished: float | None = None

    def as_dict(self) -> dict[str, Any]:
        end = self.finished if self.finished is not None else anyio.current_time()
        elapsed = max(end - self.started, 1e-9)
        return {
            "requested": self.requested,
            "done": self.done,
            "running": self.finished is None,
            "seconds": elapsed,
            "ratePerSecond": self.done / elapsed,
        }


def _default_template(rtype: ResourceType, size: int) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": rtype.api_version, "kind": rtype.kind, "metadata": {}}
    if rtype.kind in ("ConfigMap", "Secret"):
        obj["data"] = {"payload": "x" * max(0, size)}
    else:
        obj["spec"] = {"payload": "x" * max(0, size)}
    return obj


_RV_MARK = "\u2063kube-runtime-rv\u2063"
_EMIT_MARK = "\u2063kube-runtime-emit\u2063"


class _ChurnTemplates:
    """Each churned object's JSON split around its resourceVersion and emit stamp.

    A churn write changes only those two values, so it is built by joining bytes instead of
    decoding and re-encoding the object (the server's cost per write drops several-fold, which is
    what lets one server core drive clients at their limit). A template is rebuilt whenever the
    object was changed by anything other than the churn itself.
    """

    __slots__ = ("_by_key",)

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], tuple[Record, Callable[[str], bytes]]] = {}

    def get(self, cur: Record) -> Callable[[str], bytes]:
        known = self._by_key.get(cur.key)
        if known is not None and known[0] is cur:
            return known[1]
        encode = _template(cur)
        self._by_key[cur.key] = (cur, encode)
        return encode

    def remember(self, written: Record) -> None:
        """``written`` came from the template of its key: the template still describes it."""
        known = self._by_key[written.key]
        self._by_key[written.key] = (written, known[1])


def _template(cur: Record) -> Callable[[str], bytes]:
    obj = cur.copy_obj()
    meta = obj["metadata"]
    meta["resourceVersion"] = _RV_MARK
    annotations = meta.get("annotations")
    if not isinstance(annotations, dict):
        annotations = meta["annotations"] = {}
    annotations[EMIT_ANNOTATION] = _EMIT_MARK
    raw = orjson.dumps(obj)
    rv_mark, emit_mark = orjson.dumps(_RV_MARK)[1:-1], orjson.dumps(_EMIT_MARK)[1:-1]
    if raw.count(rv_mark) != 1 or raw.count(emit_mark) != 1:
        raise ValueError(f"cannot template {cur.key}: a marker occurs in the object itself")
    rv_at, emit_at = raw.index(rv_mark), raw.index(emit_mark)
    time_ns = time.time_ns
    if rv_at < emit_at:
        a, rest = raw.split(rv_mark)
        b, c = rest.split(emit_mark)

        def encode(rv: str) -> bytes:
            return b"".join((a, rv.encode(), b, str(time_ns()).encode(), c))

    else:
        a, rest = raw.split(emit_mark)
        b, c = rest.split(rv_mark)

        def encode(rv: str) -> bytes:
            return b"".join((a, str(time_ns()).encode(), b, rv.encode(), c))

    return encode


class LoadGenerator:
    """Creates and modifies objects directly in storage at a chosen rate."""

    def __init__(self, ops: ObjectOps) -> None:
        self._ops = ops
        self.churns: list[ChurnStats] = []
        self._templates = _ChurnTemplates()  # kept across churns: each object is templated once

    async def bulk_create(
        self,
        rtype: ResourceType,
        namespace: str | None,
        count: int,
        *,
        template: dict[str, Any] | None = None,
        size: int = 1024,
        name_prefix: str = "obj-",
        labels: dict[str, str] | None = None,
    ) -> int:
        """Create ``count`` objects named ``{name_prefix}{i}``; returns how many were created."""
        base = template if template is not None else _default_template(rtype, size)
        from orjson import dumps, loads

        encoded = dumps(base)
        created = 0
        for i in range(count):
            obj = loads(encoded)
            meta = obj.setdefault("metadata", {})
            meta["name"] = f"{name_prefix}{i}"
            if labels:
                meta["labels"] = {**(meta.get("labels") or {}), **labels}
            try:
                self._ops.create(rtype, namespace, obj).drop_decoded()
                created += 1
            except StatusError as exc:
                if exc.code != 409:
                    raise
            if i % 2000 == 1999:
                await anyio.lowlevel.checkpoint()
        return created

    async def churn(
        self,
        rtype: ResourceType,
        namespace: str | None,
        count: int,
        *,
        rate: float = 0.0,
        name_prefix: str | None = None,
    ) -> ChurnStats:
        """Modify existing objects round-robin ``count`` times at ``rate`` writes/s (0: as fast as possible).

        Each write sets the emit annotation, so every write is a real change (a MODIFIED event).
        """
        stats = ChurnStats(count, started=anyio.current_time())
        self.churns.append(stats)
        coll = self._ops.collection(rtype)
        keys = [k for k in coll.sorted_keys() if (namespace is None or k[0] == namespace)]
        if name_prefix:
            keys = [k for k in keys if k[1].startswith(name_prefix)]
        if not keys:
            stats.finished = anyio.current_time()
            return stats
        storage = self._ops.storage
        templates = self._templates
        for key in keys:  # encode once per object up front, outside the paced loop
            cur = coll.objects.get(key)
            if cur is not None:
                templates.get(cur)
        stats.started = anyio.current_time()
        idx = 0
        try:
            while stats.done < count:
                if rate > 0:
                    due = int((anyio.current_time() - stats.started) * rate) + 1
                    batch = min(count - stats.done, max(0, due - stats.done))
                    if batch == 0:
                        await anyio.sleep(
                            max(0.0005, (stats.done + 1) / rate - (anyio.current_time() - stats.started))
                        )
                        continue
                else:
                    batch = min(count - stats.done, 1000)
                for _ in range(batch):
                    key = keys[idx % len(keys)]
                    idx += 1
                    cur = coll.objects.get(key)
                    if cur is not None:
                        templates.remember(storage.commit_encoded(coll, cur, templates.get(cur)))
                    stats.done += 1
                await anyio.lowlevel.checkpoint()
        finally:
            stats.finished = anyio.current_time()
        return stats

    async def lifecycle(
        self,
        rtype: ResourceType,
        namespace: str | None,
        count: int,
        *,
        rate: float,
        linger: int = 0,
        size: int = 256,
        name_prefix: str = "cycle-",
    ) -> ChurnStats:
        """Create ``count`` uniquely named objects (``{name_prefix}{i}``) at ``rate`` per second and
        delete each once ``linger`` newer ones exist (``0``: right after creating it), so at most
        ``linger`` of them live at a time; the last ``linger`` are deleted at the end. Watchers see
        an ADDED and a DELETED event per object. ``stats.done`` counts deleted objects.
        """
        stats = ChurnStats(count, started=anyio.current_time())
        self.churns.append(stats)
        encoded = orjson.dumps(_default_template(rtype, size))
        ops = self._ops
        created = 0

        def create(i: int) -> None:
            obj = orjson.loads(encoded)
            obj["metadata"]["name"] = f"{name_prefix}{i}"
            ops.create(rtype, namespace, obj).drop_decoded()

        def delete(i: int) -> None:
            ops.delete(rtype, namespace, f"{name_prefix}{i}")
            stats.done += 1

        try:
            while created < count:
                due = min(count, int((anyio.current_time() - stats.started) * rate) + 1)
                if due <= created:
                    next_due = (created + 1) / rate - (anyio.current_time() - stats.started)
                    await anyio.sleep(max(0.0005, next_due))
                    continue
                for i in range(created, due):
                    create(i)
                    if i >= linger:
                        delete(i - linger)
                created = due
                await anyio.lowlevel.checkpoint()
            for i in range(max(0, count - linger), count):
                delete(i)
        finally:
            stats.finished = anyio.current_time()
        return stats
