"""The reflector and its store: an always-consistent local cache."""

from kube_runtime.store.gc_policy import FreezeAfterSync, GcPolicy, default_gc_policy
from kube_runtime.store.indexes import IndexFn, by_label, by_namespace, by_owner_uid
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.reflector import reflector
from kube_runtime.store.shared import SharedReflector, Subscription
from kube_runtime.store.store import Store, Writer, object_key, store

__all__ = [
    "FreezeAfterSync",
    "GcPolicy",
    "IndexFn",
    "ObjectRef",
    "SharedReflector",
    "Store",
    "Subscription",
    "Writer",
    "by_label",
    "by_namespace",
    "by_owner_uid",
    "default_gc_policy",
    "object_key",
    "reflector",
    "store",
]
