"""Object metadata (``metav1.ObjectMeta``) and owner references as models.

Timestamps stay the RFC 3339 strings the server sent (no parse on read, byte-identical on write).
Unknown metadata fields are kept like everywhere else in the typed layer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

__all__ = ["ObjectMeta", "OwnerReference", "owner_reference", "wire_name"]


def wire_name(name: str) -> str:
    """The wire (JSON) name of a Python field name: lower camelCase (``owner_references`` ->
    ``ownerReferences``). Pitfall: acronyms come out as words (``cluster_ip`` -> ``clusterIp``);
    give such fields an explicit ``Field(alias="clusterIP")``."""
    camel = to_camel(name)
    return camel[:1].lower() + camel[1:]


_CONFIG = ConfigDict(extra="allow", alias_generator=wire_name, validate_by_name=True, validate_by_alias=True)


class OwnerReference(BaseModel):
    """An ``ownerReferences`` entry. ``controller: true`` marks the managing owner (at most one)."""

    model_config = _CONFIG

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(BaseModel):
    """``metadata``: identity, labels/annotations, finalizers, owners, server-set fields."""

    model_config = _CONFIG

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[OwnerReference] | None = None
    managed_fields: list[dict[str, Any]] | None = None


def owner_reference(owner: Any, *, controller: bool = True) -> OwnerReference:
    """An owner reference to ``owner`` (a typed object with ``api_version``, ``kind`` and
    ``metadata.name``/``uid``, as read from the server: a new object has no uid yet)."""
    meta: ObjectMeta = owner.metadata
    if not meta.name or not meta.uid:
        raise ValueError("the owner needs metadata.name and metadata.uid (read it from the server)")
    return OwnerReference(
        api_version=owner.api_version,
        kind=owner.kind,
        name=meta.name,
        uid=meta.uid,
        controller=controller,
        block_owner_deletion=True,
    )
