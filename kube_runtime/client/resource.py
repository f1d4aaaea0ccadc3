"""What identifies a kind of object on the API server, and how its URLs are built.

An :class:`ApiResource` is everything the client needs to address a resource: group, version,
kind, plural and scope. Built-in kinds a controller usually touches are predefined here; anything
else (custom resources) comes from discovery (:func:`kube_runtime.client.discovery.discover`) or
is written out by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["BUILTINS", "ApiResource"]


@dataclass(frozen=True, slots=True)
class ApiResource:
    """A resource type: ``group`` is ``""`` for the core group; ``plural`` is the URL segment."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise (as in an object's apiVersion)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @classmethod
    def builtin(cls, kind: str, api_version: str | None = None) -> ApiResource:
        """A predefined built-in kind, e.g. ``ApiResource.builtin("ConfigMap")``.

        ``api_version`` disambiguates kinds that exist in several groups (``Event`` is core/v1 by
        default; pass ``"events.k8s.io/v1"`` for the newer one). Raises ``KeyError`` if unknown.
        """
        for res in BUILTINS:
            if res.kind == kind and (api_version is None or res.api_version == api_version):
                return res
        raise KeyError(f"no built-in resource for kind {kind!r} (apiVersion {api_version!r})")

    def collection_path(self, namespace: str | None = None) -> str:
        """The URL path of the collection, within ``namespace`` when the kind is namespaced."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{quote(namespace, safe='')}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, name: str, namespace: str | None = None, subresource: str | None = None) -> str:
        """The URL path of one object, optionally of one of its subresources (``status``).

        Raises ``ValueError`` for an empty name: the path would be the collection's, so a get
        would list and a delete would delete every object (kube-rs refuses it the same way)."""
        if not name:
            raise ValueError(f"a {self.kind} needs a name: an empty one would address the whole collection")
        path = f"{self.collection_path(namespace)}/{quote(name, safe='')}"
        return f"{path}/{subresource}" if subresource else path


BUILTINS: tuple[ApiResource, ...] = (
    ApiResource("", "v1", "Namespace", "namespaces", namespaced=False),
    ApiResource("", "v1", "ConfigMap", "configmaps"),
    ApiResource("", "v1", "Secret", "secrets"),
    ApiResource("", "v1", "Pod", "pods"),
    ApiResource("", "v1", "Service", "services"),
    ApiResource("", "v1", "ServiceAccount", "serviceaccounts"),
    ApiResource("", "v1", "Event", "events"),
    ApiResource("", "v1", "Node", "nodes", namespaced=False),
    ApiResource("apps", "v1", "Deployment", "deployments"),
    ApiResource("events.k8s.io", "v1", "Event", "events"),
    ApiResource("coordination.k8s.io", "v1", "Lease", "leases"),
    ApiResource("apiextensions.k8s.io", "v1", "CustomResourceDefinition", "customresourcedefinitions", False),
    ApiResource("authentication.k8s.io", "v1", "TokenReview", "tokenreviews", namespaced=False),
    ApiResource("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", False),
)
