"""ObjectRef: the identity of one object, used as the key of stores, schedulers and runners."""

from __future__ import annotations

from typing import Any

from kube_runtime.client.head import ObjectHead
from kube_runtime.client.resource import ApiResource

__all__ = ["ObjectRef"]


class ObjectRef:
    """Identifies one object by kind, group, version, name and namespace.

    Equality and hashing use exactly those five fields; ``uid`` and ``resource_version`` are
    carried along for callers (events, owner references) but ignored for identity, so two refs to
    the same name are equal across a delete and re-create. A ref with a namespace never equals the
    same ref without one. ``str(ref)`` is kube-rs's display form: ``Pod.v1./name.namespace``,
    ``Deployment.v1.apps/name.ns``, ``Node.v1./name``.
    """

    __slots__ = ("_hash", "_key", "group", "kind", "name", "namespace", "resource_version", "uid", "version")

    def __init__(
        self,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        group: str = "",
        version: str = "v1",
        uid: str | None = None,
        resource_version: str | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self.version = version
        self.name = name
        self.namespace = namespace or None
        self.uid = uid
        self.resource_version = resource_version
        self._key = (kind, group, version, name, self.namespace)
        self._hash = hash(self._key)

    @classmethod
    def for_resource(cls, resource: ApiResource, name: str, namespace: str | None = None) -> ObjectRef:
        return cls(resource.kind, name, namespace, group=resource.group, version=resource.version)

    @classmethod
    def from_obj(cls, obj: dict[str, Any], resource: ApiResource | None = None) -> ObjectRef:
        """The ref of a decoded object. Kind and version come from ``resource`` when given (objects
        in list responses may omit them), otherwise from the object's ``kind``/``apiVersion``.

        Raises ``ValueError`` when ``metadata.name`` is missing.
        """
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if not name:
            raise ValueError(".metadata.name missing")
        if resource is not None:
            kind, group, version = resource.kind, resource.group, resource.version
        else:
            kind = obj.get("kind", "")
            group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        return cls(
            kind,
            name,
            meta.get("namespace"),
            group=group,
            version=version,
            uid=meta.get("uid"),
            resource_version=meta.get("resourceVersion"),
        )

    @classmethod
    def from_head(cls, head: ObjectHead, resource: ApiResource | None = None) -> ObjectRef:
        """:meth:`from_obj` from an object's decoded head (same result for the same object).
        Raises ``ValueError`` when ``metadata.name`` is missing."""
        meta = head.metadata
        name = meta.name
        if not name:
            raise ValueError(".metadata.name missing")
        if resource is not None:
            kind, group, version = resource.kind, resource.group, resource.version
        else:
            kind = head.kind or ""
            group, _, version = (head.apiVersion or "").rpartition("/")
        return cls(
            kind,
            name,
            meta.namespace,
            group=group,
            version=version,
            uid=meta.uid,
            resource_version=meta.resourceVersion,
        )

    @classmethod
    def from_owner_ref(
        cls, namespace: str | None, owner_ref: dict[str, Any], resource: ApiResource
    ) -> ObjectRef | None:
        """The owner named by an ``ownerReferences`` entry, if it is of ``resource``'s kind: the
        same kind and API group, any version (as controller-runtime matches owners; a reference
        written for another served version of a CRD names the same object). The ref has
        ``resource``'s version.

        ``namespace`` is the child's: owners of namespaced children live in the same namespace;
        for a cluster-scoped owner kind it is dropped.
        """
        if owner_ref.get("kind") != resource.kind:
            return None
        api_version = owner_ref.get("apiVersion")
        if not isinstance(api_version, str) or api_version.rpartition("/")[0] != resource.group:
            return None
        return cls(
            resource.kind,
            owner_ref["name"],
            namespace if resource.namespaced else None,
            group=resource.group,
            version=resource.version,
            uid=owner_ref.get("uid"),
        )

    def within(self, namespace: str | None) -> ObjectRef:
        """The same ref in another namespace (``None`` for cluster scope)."""
        return ObjectRef(
            self.kind,
            self.name,
            namespace,
            group=self.group,
            version=self.version,
            uid=self.uid,
            resource_version=self.resource_version,
        )

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def to_object_reference(self) -> dict[str, Any]:
        """A core/v1 ``ObjectReference`` dict (for events' ``regarding`` and owner references)."""
        ref: dict[str, Any] = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        if self.namespace:
            ref["namespace"] = self.namespace
        if self.uid:
            ref["uid"] = self.uid
        if self.resource_version:
            ref["resourceVersion"] = self.resource_version
        return ref

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObjectRef):
            return NotImplemented
        return self._key == other._key

    def __hash__(self) -> int:
        return self._hash

    def __lt__(self, other: ObjectRef) -> bool:
        return (self.kind, self.group, self.version, self.namespace or "", self.name) < (
            other.kind,
            other.group,
            other.version,
            other.namespace or "",
            other.name,
        )

    def __str__(self) -> str:
        ns = f".{self.namespace}" if self.namespace else ""
        return f"{self.kind}.{self.version}.{self.group}/{self.name}{ns}"

    def __repr__(self) -> str:
        return f"ObjectRef({str(self)!r})"
