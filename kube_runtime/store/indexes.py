"""Secondary indexes on a store: find objects by label value, owner uid, or any derived key.

An index maps each object to zero or more hashable values (``key_fn(obj)``); the store keeps the
reverse mapping up to date on every apply, delete and relist swap, so a lookup costs O(matches)
instead of a scan. Lookups return the current objects, like ``Store.get``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

__all__ = ["IndexFn", "by_label", "by_namespace", "by_owner_uid"]

IndexFn = Callable[[dict[str, Any]], Iterable[Hashable]]


def by_label(label: str) -> IndexFn:
    """Index objects by the value of one label (objects without it are not indexed)."""

    def values(obj: dict[str, Any]) -> Iterable[Hashable]:
        value = ((obj.get("metadata") or {}).get("labels") or {}).get(label)
        return (value,) if value is not None else ()

    return values


def by_owner_uid(obj: dict[str, Any]) -> Iterable[Hashable]:
    """Index objects by the uid of each of their owners (``metadata.ownerReferences[].uid``)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences") or ()
    return tuple(ref["uid"] for ref in refs if isinstance(ref, dict) and ref.get("uid"))


def by_namespace(obj: dict[str, Any]) -> Iterable[Hashable]:
    """Index objects by namespace (cluster-scoped objects are not indexed)."""
    namespace = (obj.get("metadata") or {}).get("namespace")
    return (namespace,) if namespace else ()


class Index:
    """value -> keys of the objects that have it, and key -> its values (to undo on change)."""

    __slots__ = ("_by_key", "_by_value", "key_fn", "name")

    def __init__(self, name: str, key_fn: IndexFn) -> None:
        self.name = name
        self.key_fn = key_fn
        self._by_value: dict[Hashable, set[str]] = {}
        self._by_key: dict[str, tuple[Hashable, ...]] = {}

    def keys_for(self, value: Hashable) -> Iterable[str]:
        return self._by_value.get(value, ())

    def values(self) -> Iterable[Hashable]:
        return self._by_value.keys()

    def put(self, key: str, obj: dict[str, Any]) -> None:
        new = tuple(dict.fromkeys(self.key_fn(obj)))
        old = self._by_key.get(key, ())
        if new == old:
            return
        for value in old:
            if value not in new:
                self._discard(value, key)
        for value in new:
            if value not in old:
                self._by_value.setdefault(value, set()).add(key)
        if new:
            self._by_key[key] = new
        else:
            self._by_key.pop(key, None)

    def remove(self, key: str) -> None:
        for value in self._by_key.pop(key, ()):
            self._discard(value, key)

    def rebuild(self, objects: dict[str, dict[str, Any]]) -> None:
        self._by_value = {}
        self._by_key = {}
        for key, obj in objects.items():
            self.put(key, obj)

    def _discard(self, value: Hashable, key: str) -> None:
        keys = self._by_value.get(value)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_value[value]
