"""Watch and store metrics: the signals for a watch that silently stopped delivering.

:func:`observe_watch` wraps a watcher's event stream (``Init``/``InitApply``/``InitDone``/
``Apply``/``Delete`` and error values) and records, per ``watch`` label:

* ``kube_runtime_watch_events_total{watch,type}``, ``type`` in ``init``, ``init_apply``,
  ``init_done``, ``apply``, ``delete``;
* ``kube_runtime_watch_errors_total{watch,code}``: ``code`` is the HTTP status behind the error
  (``410``, ``403``, ...), or ``timeout``, ``transport``, ``decode``, ``no_resource_version``,
  ``other``;
* ``kube_runtime_watch_idle_timeouts_total{watch,phase}``: watches the watcher gave up on
  (:class:`~kube_runtime.client.errors.WatchTimeout`): ``phase="idle"``, the open watch sent
  nothing, bookmarks included, for its idle timeout (several missed bookmarks once the cadence
  is learned; a load balancer that dropped the connection looks like this); ``phase="headers"``,
  the watch request got no response headers within that bound, or its connection (TCP connect and
  TLS handshake) none within the client's ``connect_timeout`` (a black-holed path; a refused or
  reset connection is ``code="transport"``, not a timeout). Each is also an error
  (``code="timeout"``) and is logged at WARNING with the watch, phase, bound and request path;
* ``kube_runtime_watch_relists_total{watch}``: every ``Init`` after the first (full re-lists,
  e.g. after a 410, or a paged list listed again in one request because a page's ``continue``
  token expired, which is not an error);
* ``kube_runtime_watch_restarts_total{watch}``: recoveries, i.e. the first event after one or
  more errors (the watcher backed off and re-established its list or watch);
* ``kube_runtime_watch_last_event_timestamp_seconds{watch}``: Unix time of the last event, or, when
  the watcher was given a :class:`~kube_runtime.watcher.progress.WatchProgress` (pass the same
  object as ``progress=``), of the last list page or watch event *including bookmarks*, read from it
  at scrape time. Errors never stamp it (an ``ERROR`` line such as a 410 Gone neither), so a watch
  that only gets errors goes stale. Alert on
  ``time() - kube_runtime_watch_last_event_timestamp_seconds > N`` with N several bookmark
  intervals; without a progress object a quiet but healthy watch looks stale, so give one wherever
  the watcher is yours (the Controller does, see ``Controller.instrument_watches``).

The ``watch`` label names one watch and should be stable across restarts and readable; a
Controller's watches are named ``<controller>/<Kind>`` (``configmapgen/ConfigMap``). Use one
``observe_watch`` per ``watch`` value at a time: two streams sharing a label add up their counters
and fight over the timestamp.

It also logs: errors with status 401/403 at WARNING (RBAC or expired credentials never fix
themselves), watch timeouts at WARNING (a watch the server or network stopped serving), other
errors at DEBUG (the watcher retries them), relists at INFO, recoveries at
INFO. The work per event is a few counter increments.

:func:`track_store` publishes ``kube_runtime_store_objects{store}`` and
``kube_runtime_store_ready{store}`` read at scrape time (nothing on the event path), once per
distinct store object, so ``sum(kube_runtime_store_objects)`` counts a shared cache once.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import Any, Protocol, TypeVar

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from kube_runtime.client.errors import ApiError, TransportError, WatchDecodeError, WatchTimeout
from kube_runtime.metric_families import PerRegistry
from kube_runtime.streams import WatchStream
from kube_runtime.watcher.event import Apply, Delete, Init, InitApply, InitDone, NoResourceVersion
from kube_runtime.watcher.progress import WatchProgress

__all__ = ["ReadableStore", "StoreCollector", "WatchMetrics", "observe_watch", "track_store", "watch_metrics"]

log = structlog.get_logger(__name__)
T = TypeVar("T")


class WatchMetrics:
    """The watch metric families of one registry. Get it with :func:`watch_metrics`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events_total = Counter(
            "kube_runtime_watch_events_total", "Watcher events by type", ["watch", "type"], registry=registry
        )
        self.errors_total = Counter(
            "kube_runtime_watch_errors_total",
            "Watcher errors by status code",
            ["watch", "code"],
            registry=registry,
        )
        self.relists_total = Counter(
            "kube_runtime_watch_relists_total",
            "Full re-lists after the initial list",
            ["watch"],
            registry=registry,
        )
        self.restarts_total = Counter(
            "kube_runtime_watch_restarts_total",
            "Recoveries of a watch after errors",
            ["watch"],
            registry=registry,
        )
        self.idle_timeouts_total = Counter(
            "kube_runtime_watch_idle_timeouts_total",
            "Watches given up for silence (phase=idle) or for response headers that never came",
            ["watch", "phase"],
            registry=registry,
        )
        self.last_event = Gauge(
            "kube_runtime_watch_last_event_timestamp_seconds",
            "Unix time of the last event or bookmark received on a watch",
            ["watch"],
            registry=registry,
        )


_watch_metrics: PerRegistry[WatchMetrics] = PerRegistry(WatchMetrics)


def watch_metrics(registry: CollectorRegistry | None = None) -> WatchMetrics:
    """The watch metric families registered in ``registry`` (default ``REGISTRY``)."""
    return _watch_metrics(registry)


_TIMEOUT_PHASES = ("idle", "headers")
_EVENT_TYPES: dict[type, str] = {
    Init: "init",
    InitApply: "init_apply",
    InitDone: "init_done",
    Apply: "apply",
    Delete: "delete",
}


def _error_code(error: BaseException) -> str:
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, ApiError) and seen.code:
            return str(seen.code)
        if isinstance(seen, WatchTimeout):
            return "timeout"
        if isinstance(seen, TransportError):
            return "transport"
        if isinstance(seen, WatchDecodeError):
            return "decode"
        if isinstance(seen, NoResourceVersion):
            return "no_resource_version"
        seen = seen.__cause__
    return "other"


def _timeout_of(error: BaseException) -> WatchTimeout | None:
    seen: BaseException | None = error
    for _ in range(5):
        if seen is None or isinstance(seen, WatchTimeout):
            return seen
        seen = seen.__cause__
    return None


def observe_watch(
    events: AsyncIterable[T],
    watch: str,
    *,
    registry: CollectorRegistry | None = None,
    progress: WatchProgress | None = None,
) -> WatchStream[T]:
    """Pass a watcher's ``events`` through unchanged, recording the watch metrics for ``watch``.

    Returns a :class:`~kube_runtime.streams.WatchStream`, so the stream helpers chain on directly
    (``observe_watch(watcher(api), "pods").default_backoff().reflect(writer)``); put it right on
    the watcher, before the backoff, so it sees every error. The watch's zero-valued series exist
    as soon as this is called. Starts no task; owns ``events`` (closing this closes it). Items
    that are neither events nor exceptions are passed through uncounted. ``progress``: the object
    given to the watcher that produces ``events``; the last-event timestamp then follows it
    (bookmarks included) instead of the items, at no cost per event. Its clock must be Unix time
    (``WatchProgress()``'s default).
    """
    m = watch_metrics(registry)
    m.errors_total.labels(watch, "410")  # a zero series so increase() sees the first 410
    m.relists_total.labels(watch)
    m.restarts_total.labels(watch)
    for phase in _TIMEOUT_PHASES:
        m.idle_timeouts_total.labels(watch, phase)
    return WatchStream(_observe_watch(events, watch, m, progress))


def _read_progress(progress: WatchProgress) -> Callable[[], float]:
    def last_seen() -> float:
        seen = progress.last_seen
        return 0.0 if seen is None else seen

    return last_seen


async def _observe_watch(
    events: AsyncIterable[T], watch: str, m: WatchMetrics, progress: WatchProgress | None
) -> AsyncIterator[T]:
    by_type = {cls: m.events_total.labels(watch, name) for cls, name in _EVENT_TYPES.items()}
    relists = m.relists_total.labels(watch)
    restarts = m.restarts_total.labels(watch)
    last_event = m.last_event.labels(watch)
    stamp_items = progress is None
    if progress is not None:
        last_event.set_function(_read_progress(progress))  # read at scrape time
    seen_init = False
    failing = 0
    iterator = aiter(events)
    try:
        async for item in iterator:
            if isinstance(item, BaseException):
                code = _error_code(item)
                m.errors_total.labels(watch, code).inc()
                failing += 1
                if code == "timeout":
                    timeout = _timeout_of(item)
                    assert timeout is not None
                    m.idle_timeouts_total.labels(watch, timeout.phase).inc()
                    log.warning(
                        "watch timed out, reconnecting",
                        watch=watch,
                        phase=timeout.phase,
                        timeout_seconds=timeout.seconds,
                        path=timeout.url,
                        error=str(item),
                    )
                elif code in ("401", "403"):
                    log.warning("watch not permitted", watch=watch, code=code, error=str(item))
                else:
                    log.debug("watch error, backing off", watch=watch, code=code, error=str(item))
                yield item
                continue
            counter = by_type.get(type(item))
            if counter is not None:
                counter.inc()
                if stamp_items:
                    last_event.set(time.time())
                if failing:
                    restarts.inc()
                    log.info("watch recovered", watch=watch, errors=failing)
                    failing = 0
                if type(item) is Init:
                    if seen_init:
                        relists.inc()
                        log.info("watch relisting", watch=watch)
                    seen_init = True
            yield item
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


class ReadableStore(Protocol):
    """What the store collector reads: the object count and whether the first list completed."""

    def __len__(self) -> int: ...

    def is_ready(self) -> bool: ...


class StoreCollector(Collector):
    """Publishes ``kube_runtime_store_objects`` and ``kube_runtime_store_ready`` for tracked
    stores, reading them at scrape time. Stores are held weakly: a store that is gone disappears
    from the metrics instead of leaking a series."""

    def __init__(self) -> None:
        self._stores: dict[str, weakref.ReferenceType[Any] | Any] = {}
        self._lock = threading.Lock()

    def track(self, name: str, store: ReadableStore, *, rename: bool = True) -> str:
        """Publish ``store`` under ``store=name`` and return the name it is published under.

        Each distinct store (by identity) is published once: tracking a store that is already
        tracked under another name moves it to ``name`` with ``rename=True`` (an explicit name),
        and keeps the existing name with ``rename=False`` (the first registration names it).
        Another store already under ``name`` is replaced.
        """
        try:
            entry: Any = weakref.ref(store)
        except TypeError:  # a store without __weakref__: hold it strongly
            entry = lambda s=store: s  # noqa: E731
        with self._lock:
            for existing, ref in list(self._stores.items()):
                if ref() is store:
                    if existing == name or not rename:
                        return existing
                    del self._stores[existing]
                    break
            self._stores[name] = entry
            return name

    def untrack(self, name: str) -> None:
        with self._lock:
            self._stores.pop(name, None)

    def stores(self) -> dict[str, ReadableStore]:
        """The live tracked stores by name."""
        with self._lock:
            items = list(self._stores.items())
        live: dict[str, ReadableStore] = {}
        for name, ref in items:
            store = ref()
            if store is None:
                self.untrack(name)
            else:
                live[name] = store
        return live

    def collect(self) -> Iterator[GaugeMetricFamily]:
        objects = GaugeMetricFamily(
            "kube_runtime_store_objects", "Objects in a reflector store", labels=["store"]
        )
        ready = GaugeMetricFamily(
            "kube_runtime_store_ready", "1 once a store's first list completed, else 0", labels=["store"]
        )
        for name, store in self.stores().items():
            objects.add_metric([name], float(len(store)))
            ready.add_metric([name], 1.0 if store.is_ready() else 0.0)
        yield objects
        yield ready

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())


def _registered_store_collector(registry: CollectorRegistry) -> StoreCollector:
    collector = StoreCollector()
    registry.register(collector)
    return collector


_store_collectors: PerRegistry[StoreCollector] = PerRegistry(_registered_store_collector)


def store_collector(registry: CollectorRegistry | None = None) -> StoreCollector:
    """The store collector registered in ``registry`` (default ``REGISTRY``)."""
    return _store_collectors(registry)


def track_store(
    name: str, store: ReadableStore, *, registry: CollectorRegistry | None = None, rename: bool = True
) -> str:
    """Publish ``store``'s object count and readiness under ``store=name``; returns the name used.

    A store is published once however often it is tracked (see :meth:`StoreCollector.track`), so
    controllers sharing one cache do not count its objects twice.
    """
    return store_collector(registry).track(name, store, rename=rename)
