"""prometheus_client's ``Counter`` and ``Histogram`` with lock-free children, for per-reconcile
updates made on the event loop.

prometheus_client takes a lock per update and walks histogram buckets in Python, which costs
several times the update itself on the reconcile path. These subclasses keep each child's state
in plain attributes (a histogram child: one count per bucket, found by bisection, and the sum)
and produce exactly the samples of their base class (names, labels, ``le`` spelling, ``_created``,
sample order), so the exposition is byte-for-byte the same and ``labels()``, registration,
``describe``, ``remove`` and ``clear`` are prometheus_client's own.

Guarantees: an update is a few attribute writes; a scrape from another thread reads each value
atomically (the GIL), and a histogram's ``_count`` and ``+Inf`` bucket always agree (both are the
total of the bucket counts). Pitfalls: each child must be updated from one thread at a time (the
event loop that owns it): two threads incrementing the same child can lose increments. Under
prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) the values must live in its
shared files, so these classes behave exactly like their base classes there. Exemplars are not
kept (the OpenMetrics exposition would show none).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client import Counter, Histogram, values
from prometheus_client.metrics import _use_created
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = ["SingleWriterCounter", "SingleWriterHistogram"]

#: False under prometheus_client's multiprocess mode: values then go through its shared files.
_IN_PROCESS = values.ValueClass is values.MutexValue


class SingleWriterCounter(Counter):
    """A ``Counter`` whose children count in a plain float (see the module docs)."""

    _total: float

    def _metric_init(self) -> None:
        if not _IN_PROCESS:
            super()._metric_init()
            return
        self._total = 0.0
        self._created = time.time()

    def inc(self, amount: float = 1, exemplar: dict[str, str] | None = None) -> None:
        """Increment by ``amount`` (non-negative). Exemplars are not kept."""
        if not _IN_PROCESS:
            super().inc(amount, exemplar)
            return
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        try:
            self._total += amount
        except AttributeError:  # a labelled parent: the base class explains
            self._raise_if_not_observable()  # type: ignore[no-untyped-call]
            raise

    def reset(self) -> None:
        if not _IN_PROCESS:
            super().reset()
            return
        self._total = 0.0
        self._created = time.time()

    def _child_samples(self) -> Iterable[Sample]:
        if not _IN_PROCESS:
            return super()._child_samples()
        total = Sample("_total", {}, self._total, None, None)
        if _use_created:
            return (total, Sample("_created", {}, self._created, None, None))
        return (total,)


class SingleWriterHistogram(Histogram):
    """A ``Histogram`` whose children keep one plain count per bucket (see the module docs)."""

    _counts: list[float]
    _sum_value: float
    _bounds: list[float]
    _le: list[str]

    def _metric_init(self) -> None:
        if not _IN_PROCESS:
            super()._metric_init()
            return
        self._created = time.time()
        self._bounds = list(self._upper_bounds)
        self._le = [floatToGoString(bound) for bound in self._bounds]  # type: ignore[no-untyped-call]
        self._counts = [0.0] * len(self._bounds)
        self._sum_value = 0.0

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        """Record ``amount`` in the first bucket whose bound is at least ``amount`` (a NaN only
        moves the sum, as in the base class). Exemplars are not kept."""
        if not _IN_PROCESS:
            super().observe(amount, exemplar)
            return
        try:
            self._sum_value += amount
        except AttributeError:
            self._raise_if_not_observable()  # type: ignore[no-untyped-call]
            raise
        if amount == amount:  # not NaN
            self._counts[bisect_left(self._bounds, amount)] += 1

    def _child_samples(self) -> Iterable[Sample]:
        if not _IN_PROCESS:
            return super()._child_samples()
        counts = list(self._counts)  # one consistent-enough snapshot: each count read once
        samples: list[Sample] = []
        acc = 0.0
        for le, count in zip(self._le, counts, strict=True):
            acc += count
            samples.append(Sample("_bucket", {"le": le}, acc, None, None))
        samples.append(Sample("_count", {}, acc, None, None))
        if self._bounds[0] >= 0:
            samples.append(Sample("_sum", {}, self._sum_value, None, None))
        if _use_created:
            samples.append(Sample("_created", {}, self._created, None, None))
        return tuple(samples)
