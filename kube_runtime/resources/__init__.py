"""Typed resources: Kubernetes objects as pydantic models, CRDs generated from them.

kube-rs's ``#[derive(CustomResource)]`` for Python. A model declares a kind and its schema::

    class Widget(CustomResource, group="example.com", version="v1", kind="Widget"):
        spec: WidgetSpec
        status: WidgetStatus | None = None

and everything else follows: :func:`crd` (and ``python -m kube_runtime crd module:Widget``) writes
its CustomResourceDefinition with a structural schema; :class:`TypedApi` reads and writes model
instances; :class:`TypedController` hands the reconciler model instances; :class:`TypedStore`
reads a store as models; :func:`apply_status` and :func:`set_condition` write status without
rewriting an unchanged object. The dict path (``Api``, ``Controller``, stores of dicts) is
unchanged and pays nothing for any of this. See ``docs/typed-resources.md``.

Layering: this package sits above the controller layer (it wraps client, store, watcher and
controller through their public APIs) and below nothing; ``kube_runtime.observe`` does not need it.
"""

from kube_runtime.resources.api import ObjectList, TypedApi, TypedWatchEvent
from kube_runtime.resources.builtins import ConfigMap, Event, Lease, LeaseSpec, PartialObjectMetadata, Secret
from kube_runtime.resources.controller import TypedController, TypedErrorPolicy, TypedReconciler
from kube_runtime.resources.crd import crd, to_yaml
from kube_runtime.resources.errors import FieldError, InvalidObject, decoder
from kube_runtime.resources.install import install_crd
from kube_runtime.resources.meta import ObjectMeta, OwnerReference, owner_reference
from kube_runtime.resources.model import (
    CrdSettings,
    CustomResource,
    KubeModel,
    PrinterColumn,
    Resource,
    to_dict,
)
from kube_runtime.resources.schema import object_schema, structural_schema
from kube_runtime.resources.status import (
    Condition,
    Conditions,
    apply_status,
    find_condition,
    now,
    set_condition,
)
from kube_runtime.resources.store import TypedStore, TypedWatcherItem, typed_events, typed_watcher
from kube_runtime.resources.types import (
    QUANTITY_PATTERN,
    IntOrString,
    ListType,
    PreserveUnknownFields,
    Quantity,
    Rule,
)

__all__ = [
    "QUANTITY_PATTERN",
    "Condition",
    "Conditions",
    "ConfigMap",
    "CrdSettings",
    "CustomResource",
    "Event",
    "FieldError",
    "IntOrString",
    "InvalidObject",
    "KubeModel",
    "Lease",
    "LeaseSpec",
    "ListType",
    "ObjectList",
    "ObjectMeta",
    "OwnerReference",
    "PartialObjectMetadata",
    "PreserveUnknownFields",
    "PrinterColumn",
    "Quantity",
    "Resource",
    "Rule",
    "Secret",
    "TypedApi",
    "TypedController",
    "TypedErrorPolicy",
    "TypedReconciler",
    "TypedStore",
    "TypedWatchEvent",
    "TypedWatcherItem",
    "apply_status",
    "crd",
    "decoder",
    "find_condition",
    "install_crd",
    "now",
    "object_schema",
    "owner_reference",
    "set_condition",
    "structural_schema",
    "to_dict",
    "to_yaml",
    "typed_events",
    "typed_watcher",
]
