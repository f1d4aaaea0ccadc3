"""Predicates for :func:`kube_runtime.streams.predicate_filter`: which changes are worth passing on.

A predicate maps an object to a hashable fingerprint of the property it cares about, or ``None``
when the object has no such property (then the object always passes). The filter passes an object
when its fingerprint differs from the last one seen for the same object (name, namespace and uid).

Pitfall: a filter remembers only the fingerprint, so a change the predicate does not look at is
dropped; a finalizer controller whose predicate ignores ``metadata.deletionTimestamp`` (``labels``,
``annotations``, a custom one) never sees the delete it must clean up after. Add ``deletion``:
``combine(labels, deletion)``.

Every predicate here also has a form that reads an object's head (:func:`head_form`), and so do
:func:`combine` and :func:`fallback` of them: a filter over watcher events decides from the
metadata the watch decoded, without decoding the object. Other predicates get the decoded object.

Pitfall: ``generation`` is only maintained for kinds with a spec/status split (Deployments, custom
resources with a status subresource); ConfigMaps and Pods have none, so nothing is filtered.
"""

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeAlias

import anyio

from kube_runtime.client.errors import ObjectDecodeError
from kube_runtime.client.head import HeadMeta, LazyObject
from kube_runtime.client.json import KubeObject

__all__ = [
    "DEFAULT_PREDICATE_TTL",
    "Predicate",
    "PredicateFailed",
    "PredicateMemory",
    "annotations",
    "combine",
    "deletion",
    "fallback",
    "finalizers",
    "generation",
    "head_form",
    "labels",
    "resource_version",
]

Predicate: TypeAlias = Callable[[dict[str, Any]], Hashable | None]
#: A predicate over an object's head (its decoded metadata fields).
HeadPredicate: TypeAlias = Callable[[HeadMeta], Hashable | None]

_head_forms: weakref.WeakKeyDictionary[Predicate, HeadPredicate] = weakref.WeakKeyDictionary()


def head_form(predicate: Predicate) -> HeadPredicate | None:
    """The form of ``predicate`` that reads a :class:`~kube_runtime.client.head.HeadMeta` and gives
    the same fingerprint as ``predicate`` does on the decoded object: for this module's predicates
    and their :func:`combine`/:func:`fallback`; ``None`` for any other predicate."""
    return _head_forms.get(predicate)


def _with_head_form(head: HeadPredicate) -> Callable[[Predicate], Predicate]:
    def register(predicate: Predicate) -> Predicate:
        _head_forms[predicate] = head
        return predicate

    return register


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


@_with_head_form(lambda meta: meta.generation)
def generation(obj: dict[str, Any]) -> Hashable | None:
    """``metadata.generation``: changes only when the spec changes (``None`` if the kind has none)."""
    value = _meta(obj).get("generation")
    return value if isinstance(value, int) else None


@_with_head_form(lambda meta: meta.resourceVersion or None)
def resource_version(obj: dict[str, Any]) -> Hashable | None:
    """``metadata.resourceVersion``: every write (filters only exact duplicates)."""
    value = _meta(obj).get("resourceVersion")
    return value if isinstance(value, str) and value else None


@_with_head_form(lambda meta: frozenset((meta.labels or {}).items()))
def labels(obj: dict[str, Any]) -> Hashable | None:
    """The label map (an object without labels has an empty one, so this is never ``None``)."""
    return frozenset((_meta(obj).get("labels") or {}).items())


@_with_head_form(lambda meta: frozenset((meta.annotations or {}).items()))
def annotations(obj: dict[str, Any]) -> Hashable | None:
    """The annotation map (never ``None``)."""
    return frozenset((_meta(obj).get("annotations") or {}).items())


@_with_head_form(lambda meta: tuple(meta.finalizers or ()))
def finalizers(obj: dict[str, Any]) -> Hashable | None:
    """The finalizer list, in order (never ``None``)."""
    return tuple(_meta(obj).get("finalizers") or ())


@_with_head_form(lambda meta: meta.deletionTimestamp or None)
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

    heads = [head_form(p) for p in predicates]
    if all(h is not None for h in heads):
        forms = [h for h in heads if h is not None]

        def combined_head(meta: HeadMeta) -> Hashable | None:
            values = tuple(h(meta) for h in forms)
            return None if all(v is None for v in values) else values

        _head_forms[combined] = combined_head
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

    heads = [head_form(p) for p in predicates]
    if all(h is not None for h in heads):
        forms = [h for h in heads if h is not None]

        def first_head(meta: HeadMeta) -> Hashable | None:
            for h in forms:
                value = h(meta)
                if value is not None:
                    return value
            return None

        _head_forms[first] = first_head
    return first


#: How long the predicate filter remembers an object it has not seen since (kube-rs default, #1838).
DEFAULT_PREDICATE_TTL = 3600.0


class PredicateFailed(Exception):
    """A predicate raised on an object (a user bug, such as reading a label the object lacks).

    :func:`~kube_runtime.streams.predicate_filter` yields it in place of the object, as an error
    value (a controller reports it as a ``QueueError``), and goes on with the next item: the
    watch, the store behind it and later objects are not affected. ``error`` is what the
    predicate raised (also the ``__cause__``); the object's memory is left as it was, so its next
    change is decided afresh."""

    def __init__(self, error: Exception, obj: object) -> None:
        super().__init__(f"predicate raised on {_describe(obj)}: {type(error).__name__}: {error}")
        self.error = error
        self.__cause__ = error


def _describe(obj: object) -> str:
    meta: Any = getattr(obj, "meta", None)
    try:
        if meta is not None:  # a lazy object: its head
            head = meta.metadata
            namespace, name = head.namespace, head.name
        else:
            fields = (obj.get("metadata") or {}) if isinstance(obj, dict) else {}
            namespace, name = fields.get("namespace"), fields.get("name")
    except Exception:  # an unreadable head: the error message must still be built
        return "an object"
    return f"{namespace}/{name}" if namespace else str(name)


class PredicateMemory:
    """The memory behind :func:`~kube_runtime.streams.predicate_filter`, for filters that must see
    every event themselves (the controller's ``owns``/``watches`` triggers remember what each
    related object maps to even when its change is filtered out). Same guarantees as
    ``predicate_filter``; also importable from :mod:`kube_runtime.streams`.

    Holds (namespace, name, uid) -> [fingerprint hash, last seen]."""

    __slots__ = ("_entries", "_head", "_last_sweep", "_predicate", "_ttl")

    def __init__(self, predicate: Predicate, *, ttl: float = DEFAULT_PREDICATE_TTL) -> None:
        self._predicate = predicate
        self._head = head_form(predicate)
        self._ttl = ttl
        self._entries: dict[tuple[Any, Any, Any], list[Any]] = {}
        self._last_sweep: float | None = None

    @staticmethod
    def _key(obj: KubeObject) -> tuple[Any, Any, Any]:
        meta = obj.get("metadata") or {}
        return (meta.get("namespace"), meta.get("name"), meta.get("uid"))

    def changed(self, obj: KubeObject) -> bool:
        """Whether ``obj`` passes (its fingerprint changed, is ``None``, or it is new or
        forgotten); remembers its fingerprint."""
        return self._remember(self._key(obj), self._predicate(obj))

    def _remember(self, key: tuple[Any, Any, Any], value: Hashable | None) -> bool:
        if value is None:
            return True
        now = anyio.current_time()
        self._maybe_sweep(now)
        fingerprint = hash(value)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = [fingerprint, now]
            return True
        passes: bool = entry[0] != fingerprint or now - entry[1] > self._ttl
        entry[0] = fingerprint
        entry[1] = now
        return passes

    def forget(self, obj: KubeObject) -> None:
        """Forget ``obj`` (it was deleted): its next appearance passes."""
        self._entries.pop(self._key(obj), None)

    def changed_lazy(self, obj: LazyObject) -> bool:
        """:meth:`changed` for a lazy object: decided from its head when the predicate has a
        :func:`~kube_runtime.predicates.head_form`, else from the decoded object."""
        head = self._head
        if head is None:
            return self.changed(obj.object)
        try:
            meta = obj.meta.metadata
        except ObjectDecodeError:
            return self.changed(obj.object)
        return self._remember((meta.namespace, meta.name, meta.uid), head(meta))

    def passes(self, obj: KubeObject | LazyObject) -> bool:
        """:meth:`changed` or :meth:`changed_lazy`, whichever ``obj`` needs."""
        return self.changed_lazy(obj) if isinstance(obj, LazyObject) else self.changed(obj)

    def forget_any(self, obj: KubeObject | LazyObject) -> None:
        """:meth:`forget` or :meth:`forget_lazy`, whichever ``obj`` needs."""
        if isinstance(obj, LazyObject):
            self.forget_lazy(obj)
        else:
            self.forget(obj)

    def forget_lazy(self, obj: LazyObject) -> None:
        """:meth:`forget` for a lazy object (keyed by its head)."""
        try:
            meta = obj.meta.metadata
        except ObjectDecodeError:
            self.forget(obj.object)
            return
        self._entries.pop((meta.namespace, meta.name, meta.uid), None)

    def _maybe_sweep(self, now: float) -> None:
        if self._last_sweep is None:
            self._last_sweep = now
        elif now - self._last_sweep >= self._ttl:
            self._last_sweep = now
            horizon = now - self._ttl
            self._entries = {k: e for k, e in self._entries.items() if e[1] >= horizon}

    def __len__(self) -> int:
        return len(self._entries)
