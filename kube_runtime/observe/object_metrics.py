"""Per-object gauges whose series go away with the object.

A gauge labelled by object name grows one series per object ever seen unless the series of
deleted objects are removed (kubelet once leaked millions of series this way). ``ObjectGauge``
removes them two ways:

* explicitly: ``gauge.remove(ref)`` when the reconciler sees the object is gone or being
  deleted (the controller-runtime pattern);
* automatically: given the controller's ``store``, every scrape drops series whose object is no
  longer in it (once the store is ready). This also cleans up objects deleted while the
  controller was down, which the explicit path never sees.

Example (one series per MarkdownView with its Available condition)::

    available = ObjectGauge("markdownview_available", "Available condition", store=store)
    available.set(obj, 1.0 if is_available(obj) else 0.0)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kube_runtime.client.resource import ApiResource
from kube_runtime.store.object_ref import ObjectRef

__all__ = ["ObjectGauge"]


class _LookupStore(Protocol):
    def is_ready(self) -> bool: ...

    def __contains__(self, ref: object) -> bool: ...


def _identity(obj: dict[str, Any] | ObjectRef) -> tuple[str, str]:
    if isinstance(obj, ObjectRef):
        return obj.name, obj.namespace or ""
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        raise ValueError(".metadata.name missing")
    return str(name), str(meta.get("namespace") or "")


class ObjectGauge(Collector):
    """A gauge with ``name``/``namespace`` labels (plus ``extra_labels``) for one object kind.

    ``set``/``remove`` accept a decoded object or an ``ObjectRef``. ``store`` (a reflector
    ``Store``, read with ``store.get(ObjectRef)`` at scrape time) enables automatic removal. The
    lookup ref comes from the ``ObjectRef`` passed, or from the object with ``resource``'s kind
    (pass it: list items often carry no ``kind``); an object whose kind is unknown is never
    pruned automatically. Thread-safe; ``set`` is a dict write.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        *,
        extra_labels: Sequence[str] = (),
        store: _LookupStore | None = None,
        resource: ApiResource | None = None,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.extra_labels = tuple(extra_labels)
        self.store = store
        self.resource = resource
        self._values: dict[tuple[str, str], dict[tuple[str, ...], float]] = {}
        self._refs: dict[tuple[str, str], ObjectRef] = {}
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def set(self, obj: dict[str, Any] | ObjectRef, value: float, **extra: str) -> None:
        """Set the object's series (one per distinct ``extra`` label values) to ``value``."""
        key = _identity(obj)
        extra_values = tuple(str(extra[label]) for label in self.extra_labels)
        if len(extra) != len(self.extra_labels):
            raise ValueError(f"expected extra labels {self.extra_labels}, got {tuple(extra)}")
        with self._lock:
            self._values.setdefault(key, {})[extra_values] = float(value)
            if key not in self._refs:
                self._refs[key] = (
                    obj if isinstance(obj, ObjectRef) else ObjectRef.from_obj(obj, self.resource)
                )

    def remove(self, obj: dict[str, Any] | ObjectRef) -> bool:
        """Drop every series of the object. Returns whether any existed."""
        key = _identity(obj)
        with self._lock:
            self._refs.pop(key, None)
            return self._values.pop(key, None) is not None

    def value(self, obj: dict[str, Any] | ObjectRef, **extra: str) -> float | None:
        """The current value of one series, if set (for tests and debugging)."""
        extra_values = tuple(str(extra[label]) for label in self.extra_labels)
        with self._lock:
            return self._values.get(_identity(obj), {}).get(extra_values)

    def __len__(self) -> int:
        """Number of objects with at least one series."""
        return len(self._values)

    def prune(self) -> int:
        """Remove the series of objects missing from ``store`` (no-op until it is ready).
        Returns how many objects were dropped. Runs on every scrape."""
        store = self.store
        if store is None or not store.is_ready():
            return 0
        with self._lock:
            refs = list(self._refs.items())
        # Membership, not get(): a compact store answers it without decoding the object.
        gone = [key for key, ref in refs if ref.kind and ref not in store]
        with self._lock:
            for key in gone:
                self._values.pop(key, None)
                self._refs.pop(key, None)
        return len(gone)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self.prune()
        family = GaugeMetricFamily(
            self.name, self.documentation, labels=["name", "namespace", *self.extra_labels]
        )
        with self._lock:
            snapshot: list[tuple[tuple[str, str], Mapping[tuple[str, ...], float]]] = [
                (key, dict(series)) for key, series in self._values.items()
            ]
        for (obj_name, namespace), series in snapshot:
            for extra_values, value in series.items():
                family.add_metric([obj_name, namespace, *extra_values], value)
        yield family

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            self.name, self.documentation, labels=["name", "namespace", *self.extra_labels]
        )
