"""Predicates for :func:`kube_runtime.streams.predicate_filter`: which changes are worth passing on.

A predicate maps an object to a hashable fingerprint of the property it cares about, or ``None``
when the object has no such property (then the object always passes). The filter passes an object
when its fingerprint differs from the last one seen for the same object (name, namespace and uid).

Pitfall: a filter remembers only the fingerprint, so a change the predicate does not look at is
dropped; a finalizer controller whose predicate ignores ``metadata.deletionTimestamp`` (``labels``,
``annotations``, a custom one) never sees the delete it must clean up after. Add ``deletion``:
``combine(labels, deletion)``.

Pitfall: ``generation`` is only maintained for kinds with a spec/status split (Deployments, custom
resources with a status subresource); ConfigMaps and Pods have none, so nothing is filtered.
"""

from collections.abc import Callable, Hashable
from typing import Any, TypeAlias

__all__ = [
    "Predicate",
    "annotations",
    "combine",
    "deletion",
    "fallback",
    "finalizers",
    "generation",
    "labels",
    "resource_version",
]

Predicate: TypeAlias = Callable[[dict[str, Any]], Hashable | None]


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def generation(obj: dict[str, Any]) -> Hashable | None:
    """``metadata.generation``: changes only when the spec changes (``None`` if the kind has none)."""
    value = _meta(obj).get("generation")
    return value if isinstance(value, int) else None


def resource_version(obj: dict[str, Any]) -> Hashable | None:
    """``metadata.resourceVersion``: every write (filters only exact duplicates)."""
    value = _meta(obj).get("resourceVersion")
    return value if isinstance(value, str) and value else None


def labels(obj: dict[str, Any]) -> Hashable | None:
    """The label map (an object without labels has an empty one, so this is never ``None``)."""
    return frozenset((_meta(obj).get("labels") or {}).items())


def annotations(obj: dict[str, Any]) -> Hashable | None:
    """The annotation map (never ``None``)."""
    return frozenset((_meta(obj).get("annotations") or {}).items())


def finalizers(obj: dict[str, Any]) -> Hashable | None:
    """The finalizer list, in order (never ``None``)."""
    return tuple(_meta(obj).get("finalizers") or ())


def deletion(obj: dict[str, Any]) -> Hashable | None:
    """``metadata.deletionTimestamp`` once set, else ``None``.

    Meant for :func:`combine`: ``combine(p, deletion)`` passes whatever ``p`` passes, plus the
    update that marks the object for deletion (``None`` never decides on its own). Alone it
    filters nothing but repeated updates of an object already being deleted. kube-apiserver also
    bumps ``metadata.generation`` when it sets ``deletionTimestamp`` on an object that has one, so
    ``generation`` sees that update too; kinds without a generation and predicates that ignore it
    need this one."""
    value = _meta(obj).get("deletionTimestamp")
    return value if isinstance(value, str) and value else None


def combine(*predicates: Predicate) -> Predicate:
    """Passes when any of the properties changed; ``None`` only if every predicate gives ``None``."""
    if not predicates:
        raise ValueError("combine needs at least one predicate")

    def combined(obj: dict[str, Any]) -> Hashable | None:
        values = tuple(p(obj) for p in predicates)
        return None if all(v is None for v in values) else values

    return combined


def fallback(*predicates: Predicate) -> Predicate:
    """The first predicate's value that is not ``None`` (e.g. ``fallback(generation, resource_version)``)."""
    if not predicates:
        raise ValueError("fallback needs at least one predicate")

    def first(obj: dict[str, Any]) -> Hashable | None:
        for p in predicates:
            value = p(obj)
            if value is not None:
                return value
        return None

    return first
