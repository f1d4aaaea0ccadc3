"""Labelled counter, gauge and histogram families updated from one event loop without locks,
exposed through prometheus_client's public custom-collector interface. The controller's work-queue
metrics and the reconcile metrics are recorded into them.

prometheus_client's ``Counter``, ``Gauge`` and ``Histogram`` take a lock per update and walk a
histogram's buckets in Python, which costs several times the update itself on the reconcile path.
:class:`LoopCounter`, :class:`LoopGauge` and :class:`LoopHistogram` are collectors
(``collect()``/``describe()``, registered with ``registry.register``) whose children keep their
state in plain attributes: a counter or gauge child one float, a histogram child one count per
bucket (found by bisection) and the sum. A scrape builds ``CounterMetricFamily``/
``GaugeMetricFamily``/``HistogramMetricFamily`` values from them with exactly the exposition of the
stock classes: the same names (a counter's ``_total`` suffix is added, not doubled), label order,
``le`` spelling, ``_created`` series and sample order.

Guarantees: an update is a few attribute writes and never awaits, so it is atomic with respect to
the other tasks of its event loop; a scrape from another thread reads each value atomically and a
histogram's ``_count`` always equals its ``+Inf`` bucket (both are the total of one copy of the
bucket counts). Registering a family whose series already exist in the registry raises
prometheus_client's ``DuplicateTimeseries`` (a ``ValueError``) naming them.

Pitfalls:

* single writer: a child must be updated from one thread at a time (the event loop that owns it).
  ``value += amount`` is a read and a write, so two threads incrementing the same child can lose
  increments. Use prometheus_client's own classes for metrics updated from several threads.
* ``_created`` series follow the documented ``PROMETHEUS_DISABLE_CREATED_SERIES`` environment
  variable, read once at import like prometheus_client reads it; prometheus_client's
  ``disable_created_metrics()`` switch does not reach these families.
* the values are per process. Under prometheus_client's multiprocess mode
  (``PROMETHEUS_MULTIPROC_DIR`` set) a scrape reads the shared files, not the registries, so
  :func:`counter_family` and :func:`histogram_family` build the stock classes there instead.
* exemplars are not kept; histogram buckets must be non-negative (this is for durations and
  sizes) and label names are the classic ``[a-zA-Z_][a-zA-Z0-9_]*``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from abc import ABC, abstractmethod
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from typing import Final, Generic, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    Sample,
)
from prometheus_client.utils import floatToGoString

__all__ = [
    "CounterFamily",
    "GaugeFamily",
    "HistogramFamily",
    "LoopCounter",
    "LoopCounterChild",
    "LoopGauge",
    "LoopGaugeChild",
    "LoopHistogram",
    "LoopHistogramChild",
    "counter_family",
    "gauge_family",
    "histogram_family",
    "in_multiprocess_mode",
]

#: Whether counters and histograms expose ``_created`` series (prometheus_client's documented
#: switch, parsed as it parses it).
_CREATED_SERIES: Final = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in (
    "true",
    "1",
    "t",
)

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_INF = float("inf")

ChildT = TypeVar("ChildT")


def in_multiprocess_mode() -> bool:
    """Whether prometheus_client's multiprocess mode is on: its documented environment variable
    (``PROMETHEUS_MULTIPROC_DIR``, or the older lower-case spelling) names a directory."""
    legacy = os.environ.get("prometheus_multiproc_dir")  # noqa: SIM112 (prometheus_client reads it too)
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or legacy)


class _LabelledFamily(ABC, Generic[ChildT]):
    """What the families share: label handling, children, registration."""

    _reserved: tuple[str, ...] = ()

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        if not self.labelnames:
            raise ValueError(f"{type(self).__name__} {name!r} needs at least one label name")
        for label in self.labelnames:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__") or label in self._reserved:
                raise ValueError(f"{type(self).__name__} {name!r}: invalid label name {label!r}")
        self._children: dict[tuple[str, ...], ChildT] = {}
        self._lock = threading.Lock()  # guards adding and removing children, never updates
        self.describe()  # validates the metric name
        if registry is not None:
            registry.register(self)

    def labels(self, *labelvalues: object, **by_name: object) -> ChildT:
        """The child of these label values (``str()`` of each), created at zero on first use.
        Wrong label names or counts raise ``ValueError``."""
        if by_name:
            if labelvalues or sorted(by_name) != sorted(self.labelnames):
                raise ValueError(f"{self.name}: expected the labels {self.labelnames}, got {sorted(by_name)}")
            labelvalues = tuple(by_name[label] for label in self.labelnames)
        key = tuple(map(str, labelvalues))
        child = self._children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise ValueError(f"{self.name}: expected {len(self.labelnames)} label values, got {key}")
            with self._lock:
                child = self._children.get(key)
                if child is None:
                    child = self._children[key] = self._new_child()
        return child

    def remove(self, *labelvalues: object) -> None:
        """Drop the series of these label values (nothing happens if it does not exist)."""
        key = tuple(map(str, labelvalues))
        if len(key) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected {len(self.labelnames)} label values, got {key}")
        with self._lock:
            self._children.pop(key, None)

    def clear(self) -> None:
        """Drop every series."""
        with self._lock:
            self._children = {}

    def describe(self) -> Iterable[Metric]:
        """The family without samples: what the registry reads to reserve its series names."""
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        """The family with one set of samples per child, in the order the children were made."""
        with self._lock:
            children = list(self._children.items())
        family = self._family()
        for labelvalues, child in children:
            self._add(family, labelvalues, child)
        return [family]

    def _series_labels(self, labelvalues: tuple[str, ...]) -> dict[str, str]:
        return dict(zip(self.labelnames, labelvalues, strict=True))

    @abstractmethod
    def _new_child(self) -> ChildT: ...

    @abstractmethod
    def _family(self) -> Metric: ...

    @abstractmethod
    def _add(self, family: Metric, labelvalues: tuple[str, ...], child: ChildT) -> None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class LoopCounterChild:
    """One counter series (see the module docs for the single-writer rule)."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1.0) -> None:
        """Add ``amount``, which must not be negative."""
        if amount < 0:
            raise ValueError(f"a counter only goes up, not by {amount!r}")
        self.value += amount

    def reset(self) -> None:
        """Back to zero, with a new ``_created`` time."""
        self.value = 0.0
        self.created = time.time()


class LoopCounter(_LabelledFamily[LoopCounterChild]):
    """A labelled counter family (``name`` with or without the ``_total`` suffix, as
    prometheus_client's ``Counter`` takes it), registered in ``registry`` (``None``: not
    registered)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        name = name.removesuffix("_total")
        if name.endswith("_total"):
            raise ValueError(f"counter {name!r}: the name ends in _total twice")
        super().__init__(name, documentation, labelnames, registry=registry)

    def _new_child(self) -> LoopCounterChild:
        return LoopCounterChild()

    def _family(self) -> Metric:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def _add(self, family: Metric, labelvalues: tuple[str, ...], child: LoopCounterChild) -> None:
        assert isinstance(family, CounterMetricFamily)
        family.add_metric(labelvalues, child.value, created=child.created if _CREATED_SERIES else None)


class LoopGaugeChild:
    """One gauge series (see the module docs for the single-writer rule)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def set(self, value: float) -> None:
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self.value -= amount


class LoopGauge(_LabelledFamily[LoopGaugeChild]):
    """A labelled gauge family, registered in ``registry`` (``None``: not registered)."""

    def _new_child(self) -> LoopGaugeChild:
        return LoopGaugeChild()

    def _family(self) -> Metric:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def _add(self, family: Metric, labelvalues: tuple[str, ...], child: LoopGaugeChild) -> None:
        assert isinstance(family, GaugeMetricFamily)
        family.add_metric(labelvalues, child.value)


class LoopHistogramChild:
    """One histogram series (see the module docs for the single-writer rule)."""

    __slots__ = ("_bounds", "counts", "created", "sum")

    def __init__(self, bounds: list[float]) -> None:
        self._bounds = bounds
        self.counts = [0.0] * len(bounds)  # per bucket, not cumulative
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        """Count ``amount`` in the first bucket whose bound is at least ``amount``; a NaN only
        moves the sum (as in prometheus_client)."""
        self.sum += amount
        if amount == amount:  # not NaN
            self.counts[bisect_left(self._bounds, amount)] += 1


class LoopHistogram(_LabelledFamily[LoopHistogramChild]):
    """A labelled histogram family with ``buckets`` (sorted, non-negative upper bounds; ``+Inf``
    is added if missing), registered in ``registry`` (``None``: not registered)."""

    _reserved = ("le",)

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        *,
        buckets: Sequence[float] = Histogram.DEFAULT_BUCKETS,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        bounds = [float(bound) for bound in buckets]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(f"histogram {name!r}: buckets must be strictly increasing, got {buckets}")
        if not bounds or bounds[0] < 0:
            raise ValueError(f"histogram {name!r}: buckets must be non-negative, got {buckets}")
        if bounds[-1] != _INF:
            bounds.append(_INF)
        self.bounds: Final = bounds
        self._le = [floatToGoString(bound) for bound in bounds]  # type: ignore[no-untyped-call]
        super().__init__(name, documentation, labelnames, registry=registry)

    def _new_child(self) -> LoopHistogramChild:
        return LoopHistogramChild(self.bounds)

    def _family(self) -> Metric:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def _add(self, family: Metric, labelvalues: tuple[str, ...], child: LoopHistogramChild) -> None:
        assert isinstance(family, HistogramMetricFamily)
        counts = list(child.counts)  # one copy, so the buckets and the count agree
        buckets: list[tuple[str, float]] = []
        total = 0.0
        for le, count in zip(self._le, counts, strict=True):
            total += count
            buckets.append((le, total))
        family.add_metric(labelvalues, buckets, child.sum)
        if _CREATED_SERIES:
            labels = self._series_labels(labelvalues)
            family.samples.append(Sample(f"{self.name}_created", labels, child.created))


#: A counter family: ours, or prometheus_client's under multiprocess mode.
CounterFamily = LoopCounter | Counter
#: A gauge family: ours, or prometheus_client's under multiprocess mode.
GaugeFamily = LoopGauge | Gauge
#: A histogram family: ours, or prometheus_client's under multiprocess mode.
HistogramFamily = LoopHistogram | Histogram


def counter_family(
    name: str, documentation: str, labelnames: Sequence[str], *, registry: CollectorRegistry
) -> CounterFamily:
    """A :class:`LoopCounter`, or prometheus_client's ``Counter`` under multiprocess mode (whose
    values must go through its shared files to be scraped)."""
    if in_multiprocess_mode():
        return Counter(name, documentation, labelnames, registry=registry)
    return LoopCounter(name, documentation, labelnames, registry=registry)


def gauge_family(
    name: str, documentation: str, labelnames: Sequence[str], *, registry: CollectorRegistry
) -> GaugeFamily:
    """A :class:`LoopGauge`, or prometheus_client's ``Gauge`` under multiprocess mode (its default
    ``all`` mode: one series per process)."""
    if in_multiprocess_mode():
        return Gauge(name, documentation, labelnames, registry=registry)
    return LoopGauge(name, documentation, labelnames, registry=registry)


def histogram_family(
    name: str,
    documentation: str,
    labelnames: Sequence[str],
    *,
    buckets: Sequence[float],
    registry: CollectorRegistry,
) -> HistogramFamily:
    """A :class:`LoopHistogram`, or prometheus_client's ``Histogram`` under multiprocess mode."""
    if in_multiprocess_mode():
        return Histogram(name, documentation, labelnames, buckets=buckets, registry=registry)
    return LoopHistogram(name, documentation, labelnames, buckets=buckets, registry=registry)
