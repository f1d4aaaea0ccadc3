"""Publishing Kubernetes Events (``events.k8s.io/v1``) with kube-rs's series deduplication.

Create **one** :class:`Recorder` per controller and share it between reconciles: it holds the
dedup cache. An event whose key (type, action, reason, reporter, regarding, related; not the note)
was published less than :data:`CACHE_TTL` ago is not created again; instead the first event is
PATCHed with ``series.count`` (2 on the first repeat) and ``series.lastObservedTime``, so a hot
reconcile loop produces one Event object with a count, not thousands of objects.

The event lives in the regarding object's namespace, or ``"default"`` for cluster-scoped objects.
RBAC needed: ``events.k8s.io`` ``events``: ``create``, ``patch``.

Differences from kube-rs, each a fix:

* ``reason``/``action`` (at most 128 characters, required) and ``note`` (at most 1 kB) are checked
  before any request, raising :class:`InvalidEvent` with the offending field, instead of being left
  to the server.
* Concurrent publishes of the same key are serialized, so they extend one series instead of racing
  into two separate events.
* An object whose name would make an invalid Event name (over 236 characters, or not a DNS
  subdomain, such as the ClusterRole ``system:controller:x``) still gets its events: the name is
  made valid instead of every publish failing with 422.
* If the series PATCH finds the event gone (404: the server's event TTL removed it), a fresh event
  is created instead of failing every repeat for the rest of the cache TTL.

The cache expiry reads ``anyio.current_time()``; ``eventTime``/``lastObservedTime`` are wall-clock
timestamps, as the API requires.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

import anyio

from kube_runtime.client import Api, Client
from kube_runtime.client.errors import ApiError, KubeError
from kube_runtime.client.json import KubeObject
from kube_runtime.client.names import dns_subdomain_from, is_dns_subdomain, is_qualified_name
from kube_runtime.client.resource import ApiResource

__all__ = [
    "CACHE_TTL",
    "MAX_ACTION_LENGTH",
    "MAX_NOTE_BYTES",
    "MAX_REASON_LENGTH",
    "EventReport",
    "EventType",
    "InvalidEvent",
    "Recorder",
    "Reporter",
    "object_reference",
]


CACHE_TTL = 6 * 60.0
"""Seconds after its last observation that a published event can still be extended as a series."""

MAX_REASON_LENGTH = 128
MAX_ACTION_LENGTH = 128
MAX_NOTE_BYTES = 1024
MAX_REPORTING_INSTANCE_LENGTH = 128

EVENTS_RESOURCE = ApiResource.builtin("Event", "events.k8s.io/v1")


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class InvalidEvent(KubeError, ValueError):
    """The event breaks a documented field limit; nothing was sent."""


@dataclass(frozen=True, slots=True)
class Reporter:
    """Who reports: ``controller`` (``reportingController``) and an optional ``instance``.

    ``reportingInstance`` is ``instance`` or, when it is ``None``, ``controller``. Use
    :meth:`with_hostname` for kube-rs's ``From<&str>`` behaviour (instance = hostname).
    """

    controller: str
    instance: str | None = None

    def __post_init__(self) -> None:
        if not is_qualified_name(self.controller):
            # The API server refuses such an Event (422 on ``reportingController``) on every
            # publish; fail once, here, instead.
            raise InvalidEvent(
                f"Reporter.controller {self.controller!r} is not a qualified name such as "
                "'example.com/my-controller' (optional DNS subdomain prefix, a name of at most "
                "63 letters, digits, '-', '_' and '.')"
            )
        if len(self.reporting_instance) > MAX_REPORTING_INSTANCE_LENGTH:
            raise InvalidEvent(
                f"reportingInstance {self.reporting_instance!r} is longer than "
                f"{MAX_REPORTING_INSTANCE_LENGTH} characters"
            )

    @classmethod
    def with_hostname(cls, controller: str) -> Reporter:
        return cls(controller, socket.gethostname()[:MAX_REPORTING_INSTANCE_LENGTH])

    @property
    def reporting_instance(self) -> str:
        return self.instance if self.instance is not None else self.controller


@dataclass(frozen=True, slots=True)
class EventReport:
    """What happened. ``secondary`` is the ``related`` object reference, if any."""

    type: EventType
    reason: str
    action: str
    note: str | None = None
    secondary: KubeObject | None = None

    def validate(self) -> None:
        """Raise :class:`InvalidEvent` naming the first field that breaks its limit."""
        if not self.reason:
            raise InvalidEvent("event reason is required")
        if len(self.reason) > MAX_REASON_LENGTH:
            raise InvalidEvent(f"event reason is {len(self.reason)} characters; at most {MAX_REASON_LENGTH}")
        if not self.action:
            raise InvalidEvent("event action is required")
        if len(self.action) > MAX_ACTION_LENGTH:
            raise InvalidEvent(f"event action is {len(self.action)} characters; at most {MAX_ACTION_LENGTH}")
        if self.note is not None:
            size = len(self.note.encode("utf-8"))
            if size > MAX_NOTE_BYTES:
                raise InvalidEvent(f"event note is {size} bytes; at most {MAX_NOTE_BYTES}")


_REF_FIELDS = ("apiVersion", "kind", "name", "namespace", "uid")


def object_reference(obj: KubeObject) -> KubeObject:
    """An ObjectReference (apiVersion, kind, name, namespace, uid) to an object dict."""
    metadata = obj.get("metadata") or {}
    ref: KubeObject = {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "name": metadata.get("name"),
    }
    if metadata.get("namespace"):
        ref["namespace"] = metadata["namespace"]
    if metadata.get("uid"):
        ref["uid"] = metadata["uid"]
    return ref


def _as_reference(obj_or_ref: KubeObject) -> KubeObject:
    return object_reference(obj_or_ref) if "metadata" in obj_or_ref else obj_or_ref


def _reference_key(ref: KubeObject | None) -> tuple[Any, ...] | None:
    # resourceVersion and fieldPath are deliberately not part of the identity (kube-rs).
    return None if ref is None else tuple(ref.get(field) for field in _REF_FIELDS)


def _micro_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(slots=True)
class _Cached:
    event: KubeObject
    last_observed: float  # anyio.current_time() of the last successful publish


_Key: TypeAlias = tuple[Any, ...]


class Recorder:
    """Publishes events for one reporter; share one instance per controller (it owns the cache).

    ``wall_clock`` supplies the wall-clock timestamps written into events (injectable for tests).
    """

    def __init__(
        self,
        client: Client,
        reporter: Reporter,
        *,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._reporter = reporter
        self._wall_clock = wall_clock
        self._cache: dict[_Key, _Cached] = {}
        self._in_flight: dict[_Key, anyio.Event] = {}
        self._last_name_nanos = 0

    @property
    def reporter(self) -> Reporter:
        return self._reporter

    def cached_events(self) -> int:
        """How many event keys the dedup cache holds (after the last GC)."""
        return len(self._cache)

    async def publish(self, event: EventReport, regarding: KubeObject) -> KubeObject:
        """Create the event, or extend its series if the same key was published within the TTL.

        ``regarding`` is an ObjectReference or the object itself. Returns the server's Event.
        Raises :class:`InvalidEvent` before any request and ``ApiError``/``TransportError`` for
        failed requests (the cache is only updated after a successful call).
        """
        event.validate()
        reference = _as_reference(regarding)
        key: _Key = (
            event.type.value,
            event.action,
            event.reason,
            self._reporter.controller,
            self._reporter.reporting_instance,
            _reference_key(reference),
            _reference_key(None if event.secondary is None else _as_reference(event.secondary)),
        )
        while (pending := self._in_flight.get(key)) is not None:
            await pending.wait()
        done = anyio.Event()
        self._in_flight[key] = done
        try:
            return await self._publish_locked(key, event, reference)
        finally:
            del self._in_flight[key]
            done.set()

    async def _publish_locked(self, key: _Key, event: EventReport, reference: KubeObject) -> KubeObject:
        now = anyio.current_time()
        self._expire(now)
        wall_now = self._wall_clock()
        namespace = reference.get("namespace") or "default"
        events = Api(self._client, EVENTS_RESOURCE, namespace)

        cached = self._cache.get(key)
        result: KubeObject | None = None
        if cached is not None:
            previous = cached.event.get("series") or {}
            body = {
                **cached.event,
                "series": {
                    "count": int(previous.get("count") or 1) + 1,
                    "lastObservedTime": _micro_time(wall_now),
                },
            }
            try:
                result = await events.patch(body["metadata"]["name"], body, patch_type="merge")
            except ApiError as exc:
                if exc.code != 404:
                    raise
                del self._cache[key]
                body = self._new_event(event, reference, namespace, wall_now)
        else:
            body = self._new_event(event, reference, namespace, wall_now)
        if result is None:
            result = await events.create(body)
        # Re-inserted, so the cache stays ordered by last observation (oldest first).
        self._cache.pop(key, None)
        self._cache[key] = _Cached(body, anyio.current_time())
        return result

    def _expire(self, now: float) -> None:
        """Drop the keys not observed for ``CACHE_TTL``: the oldest ones only, so a publish costs
        O(expired keys), not a scan of the whole cache."""
        cache = self._cache
        stale: list[_Key] = []
        for key, cached in cache.items():
            if now - cached.last_observed < CACHE_TTL:
                break
            stale.append(key)
        for key in stale:
            del cache[key]

    def _new_event(
        self, event: EventReport, reference: KubeObject, namespace: str, wall_now: datetime
    ) -> KubeObject:
        # Unique even when two events share a wall-clock nanosecond (or the clock steps back).
        nanos = max(int(wall_now.timestamp() * 1_000_000) * 1000, self._last_name_nanos + 1)
        self._last_name_nanos = nanos
        body: KubeObject = {
            "apiVersion": EVENTS_RESOURCE.api_version,
            "kind": "Event",
            "metadata": {
                "name": _event_name(reference.get("name") or self._reporter.controller, nanos),
                "namespace": namespace,
            },
            "eventTime": _micro_time(wall_now),
            "type": event.type.value,
            "reason": event.reason,
            "action": event.action,
            "regarding": reference,
            "reportingController": self._reporter.controller,
            "reportingInstance": self._reporter.reporting_instance,
        }
        if event.note is not None:
            body["note"] = event.note
        if event.secondary is not None:
            body["related"] = _as_reference(event.secondary)
        return body


def _event_name(base: str, nanos: int) -> str:
    """client-go's and kube-rs's Event name, ``<object name>.<nanoseconds in hex>``, when that is
    a valid object name; else (an object name over 236 characters, or one that is not a DNS
    subdomain, such as the ClusterRole ``system:controller:x``, which the API server refuses as an
    Event's name) the same with the object name made into a DNS subdomain that fits. The
    nanoseconds keep names unique; ``regarding`` names the object exactly either way."""
    suffix = f".{nanos:x}"
    name = base + suffix
    if is_dns_subdomain(name):
        return name
    return (dns_subdomain_from(base, 253 - len(suffix)) or "event") + suffix
