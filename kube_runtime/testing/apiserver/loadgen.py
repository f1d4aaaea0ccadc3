"""Server-side load for benchmarks: bulk creation and paced churn without HTTP per write.

Writes go through the same :class:`ObjectOps` path as HTTP writes (same validation, events and
resourceVersions), so watchers cannot tell them apart. Churned objects carry the annotation
``kube-runtime.dev/emit-ns`` (CLOCK_REALTIME nanoseconds at commit) so a benchmark can measure
end-to-end latency from the server's write to the client's reconcile.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.lowlevel

from kube_runtime.testing.apiserver.ops import ObjectOps
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.status import StatusError

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


class LoadGenerator:
    """Creates and modifies objects directly in storage at a chosen rate."""

    def __init__(self, ops: ObjectOps) -> None:
        self._ops = ops
        self.churns: list[ChurnStats] = []

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
                self._ops.create(rtype, namespace, obj)
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
                    if cur is None:
                        stats.done += 1
                        continue
                    obj = cur.copy_obj()
                    annotations = obj["metadata"].setdefault("annotations", {})
                    annotations[EMIT_ANNOTATION] = str(time.time_ns())
                    storage.commit(coll, "MODIFIED", obj, cur)
                    stats.done += 1
                await anyio.lowlevel.checkpoint()
        finally:
            stats.finished = anyio.current_time()
        return stats
