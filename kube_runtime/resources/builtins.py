"""Models for the built-in kinds the runtime itself reads: ConfigMap, Secret, Lease, Event, and the
metadata of any kind (:class:`PartialObjectMetadata`, what metadata-only lists and watches return).

Minimal but real: the fields the runtime and typical controllers use, everything else kept as
unknown fields (so a read-modify-write round trip loses nothing). Not for CRD generation.
"""

from __future__ import annotations

from pydantic import Field

from kube_runtime.resources.meta import ObjectMeta
from kube_runtime.resources.model import KubeModel, Resource

__all__ = [
    "ConfigMap",
    "Event",
    "EventSeries",
    "Lease",
    "LeaseSpec",
    "ObjectReference",
    "PartialObjectMetadata",
    "Secret",
]


class ConfigMap(Resource, group="", version="v1", kind="ConfigMap"):
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    """Base64-encoded values."""
    immutable: bool | None = None


class Secret(Resource, group="", version="v1", kind="Secret"):
    data: dict[str, str] | None = None
    """Base64-encoded values."""
    string_data: dict[str, str] | None = None
    """Write-only plain values (the server merges them into ``data``)."""
    type: str | None = None
    immutable: bool | None = None


class LeaseSpec(KubeModel):
    holder_identity: str | None = None
    lease_duration_seconds: int | None = None
    acquire_time: str | None = None
    """RFC 3339 with microseconds (``MicroTime``)."""
    renew_time: str | None = None
    lease_transitions: int | None = None


class Lease(Resource, group="coordination.k8s.io", version="v1", kind="Lease"):
    spec: LeaseSpec = Field(default_factory=LeaseSpec)


class ObjectReference(KubeModel):
    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class EventSeries(KubeModel):
    count: int
    last_observed_time: str


class Event(Resource, group="events.k8s.io", version="v1", kind="Event"):
    """An ``events.k8s.io/v1`` Event (what :mod:`kube_runtime.events` writes)."""

    event_time: str | None = None
    """``MicroTime`` (RFC 3339 with microseconds)."""
    reporting_controller: str | None = None
    reporting_instance: str | None = None
    action: str | None = None
    reason: str | None = None
    regarding: ObjectReference | None = None
    related: ObjectReference | None = None
    note: str | None = None
    type: str | None = None
    series: EventSeries | None = None


class PartialObjectMetadata(KubeModel):
    """One object of any kind as a metadata-only list or watch returns it (``Api.list_metadata``,
    ``Api.watch_metadata``, ``metadata_watcher``): identity, labels, annotations, owners,
    finalizers; no spec or status. ``PartialObjectMetadata.model_validate(item)`` types an item.
    """

    api_version: str = "meta.k8s.io/v1"
    kind: str = "PartialObjectMetadata"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
