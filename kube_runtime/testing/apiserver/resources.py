"""The resource types the embedded server serves: built-in kinds plus every established CRD.

A :class:`ResourceType` is the server-side description of one served resource at one version
(URL segment, kind, scope, subresources, and the per-type rules the real registry strategies
apply, such as whether ``metadata.generation`` is tracked). Objects are stored per
``(group, plural)``, shared by every served version of that resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kube_runtime.testing.apiserver.crschema import Schema, parse_schema

__all__ = ["BUILTIN_TYPES", "CORE_EVENTS", "ResourceType", "ScalePaths", "crd_resource_types"]

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, slots=True)
class ScalePaths:
    """Where a resource with a ``scale`` subresource keeps what ``autoscaling/v1`` Scale shows.

    Paths are the CRD's dotted JSON paths (``.spec.replicas``). ``label_selector`` is the path of a
    selector *string* (CRDs); ``selector_from_spec`` means the built-in rule instead: the object's
    ``spec.selector`` (a LabelSelector) formatted as a string, as for Deployments.
    """

    spec_replicas: str = ".spec.replicas"
    status_replicas: str = ".status.replicas"
    label_selector: str | None = None
    selector_from_spec: bool = False


_BUILTIN_SCALE = ScalePaths(selector_from_spec=True)


@dataclass(frozen=True, slots=True)
class ResourceType:
    """One served resource at one version. ``storage_key`` is shared across versions."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    tracks_generation: bool = False
    # metadata.annotations changes bump generation too (kube-apiserver's apps/v1 Deployment strategy)
    generation_counts_annotations: bool = False
    allow_unconditional_update: bool = True
    custom: bool = False
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS
    selectable_fields: tuple[str, ...] = field(default=())
    scale: ScalePaths | None = None
    # A custom resource version's structural schema and its additionalPrinterColumns (raw dicts);
    # left out of equality and hashing.
    schema: Schema | None = field(default=None, compare=False)
    printer_columns: tuple[dict[str, Any], ...] = field(default=(), compare=False)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def storage_key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified_plural(self) -> str:
        """``configmaps`` or ``deployments.apps``: the resource as error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _t(group: str, version: str, kind: str, plural: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, **kw)


# Stored once, also served as events.k8s.io/v1 (see events.py).
CORE_EVENTS = _t("", "v1", "Event", "events", short_names=("ev",))

BUILTIN_TYPES: tuple[ResourceType, ...] = (
    _t("", "v1", "Namespace", "namespaces", False, short_names=("ns",), has_status=True),
    _t("", "v1", "ConfigMap", "configmaps", short_names=("cm",)),
    _t("", "v1", "Secret", "secrets"),
    _t("", "v1", "Pod", "pods", short_names=("po",), has_status=True, categories=("all",)),
    _t("", "v1", "Service", "services", short_names=("svc",), has_status=True, categories=("all",)),
    _t("", "v1", "ServiceAccount", "serviceaccounts", short_names=("sa",)),
    CORE_EVENTS,
    _t("", "v1", "Node", "nodes", False, short_names=("no",), has_status=True),
    _t(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        short_names=("deploy",),
        has_status=True,
        tracks_generation=True,
        generation_counts_annotations=True,
        categories=("all",),
        scale=_BUILTIN_SCALE,
    ),
    _t(
        "apps",
        "v1",
        "ReplicaSet",
        "replicasets",
        short_names=("rs",),
        has_status=True,
        tracks_generation=True,
        categories=("all",),
        scale=_BUILTIN_SCALE,
    ),
    _t(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        short_names=("sts",),
        has_status=True,
        tracks_generation=True,
        categories=("all",),
        scale=_BUILTIN_SCALE,
    ),
    _t("events.k8s.io", "v1", "Event", "events", short_names=("ev",)),
    _t("coordination.k8s.io", "v1", "Lease", "leases"),
    _t(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        False,
        tracks_generation=True,
    ),
    _t(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        False,
        tracks_generation=True,
    ),
    _t(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        short_names=("crd", "crds"),
        has_status=True,
        tracks_generation=True,
    ),
)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def crd_resource_types(crd: dict[str, Any]) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version).

    Raises ``ValueError`` with a field path when the definition lacks what serving needs.
    """
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        raise ValueError("spec: Required value")
    group = spec.get("group")
    names = spec.get("names")
    scope = spec.get("scope")
    versions = spec.get("versions")
    if not isinstance(group, str) or not group:
        raise ValueError("spec.group: Required value")
    if not isinstance(names, dict) or not isinstance(names.get("plural"), str) or not names.get("kind"):
        raise ValueError("spec.names: Required value: plural and kind are required")
    if scope not in ("Namespaced", "Cluster"):
        raise ValueError(
            f'spec.scope: Unsupported value: "{scope}": supported values: "Cluster", "Namespaced"'
        )
    if not isinstance(versions, list) or not versions:
        raise ValueError("spec.versions: Required value")
    plural = str(names["plural"])
    kind = str(names["kind"])
    singular = str(names.get("singular") or kind.lower())
    short_names = tuple(str(s) for s in names.get("shortNames") or ())
    categories = tuple(str(s) for s in names.get("categories") or ())
    out: list[ResourceType] = []
    for v in versions:
        if not isinstance(v, dict) or not isinstance(v.get("name"), str):
            raise ValueError("spec.versions[].name: Required value")
        if not v.get("served", True):
            continue
        subresources = v.get("subresources") or spec.get("subresources") or {}
        selectable = tuple(
            str(f.get("jsonPath", "")).lstrip(".")
            for f in v.get("selectableFields") or ()
            if isinstance(f, dict)
        )
        out.append(
            ResourceType(
                group,
                v["name"],
                kind,
                plural,
                singular,
                scope == "Namespaced",
                short_names=short_names,
                has_status=isinstance(subresources, dict) and "status" in subresources,
                tracks_generation=True,
                allow_unconditional_update=False,
                custom=True,
                categories=categories,
                selectable_fields=selectable,
                scale=_crd_scale(subresources),
                schema=parse_schema(_dict(v.get("schema")).get("openAPIV3Schema")),
                printer_columns=tuple(
                    c for c in v.get("additionalPrinterColumns") or () if isinstance(c, dict)
                ),
            )
        )
    return out


def _crd_scale(subresources: Any) -> ScalePaths | None:
    """The scale paths of a CRD version's ``subresources.scale`` (None when it has none)."""
    scale = subresources.get("scale") if isinstance(subresources, dict) else None
    if not isinstance(scale, dict):
        return None
    selector = scale.get("labelSelectorPath")
    return ScalePaths(
        str(scale.get("specReplicasPath") or ".spec.replicas"),
        str(scale.get("statusReplicasPath") or ".status.replicas"),
        str(selector) if selector else None,
    )
