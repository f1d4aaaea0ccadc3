"""Consistent hashing with virtual nodes: which member of a ring an object belongs to.

Each member owns :data:`DEFAULT_TOKENS` points ("tokens") on a 64-bit circle, the BLAKE2b hashes
of ``<member>#<i>``; an object belongs to the member owning the first token at or after the hash
of the object's key, wrapping around. Guarantees:

* Deterministic: every replica computes the same placement from the same member set, whatever
  order the members were added in (ties between equal tokens go to the smaller member name).
* Stable: when a member joins, only the objects that land on its new tokens move (about 1/N of
  them, all to the new member); when one leaves, only its own objects move. Nothing else changes.
* Balanced within the spread of virtual nodes: with 100 tokens per member and 100 members the
  busiest member holds about 1.33 times the mean and the least loaded about 0.78 (10 million
  keys, ``benches/bench_sharding.py``); more tokens narrow the spread as ``1/sqrt(tokens)``.

The key of an object is ``<group>/<kind>/<namespace>/<name>`` (:func:`ring_key`); an object
with a controller owner reference is keyed by that owner (:func:`placement_key`), so a parent and
its children land on the same member. Cost: one hash and a binary search per placement; building
the ring costs ``members * tokens`` hashes.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["DEFAULT_TOKENS", "HashRing", "placement_key", "ring_key"]

DEFAULT_TOKENS = 100


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """An immutable ring over a set of member names (empty: :meth:`place` returns ``None``)."""

    __slots__ = ("_members", "_owners", "_points")

    def __init__(self, members: Iterable[str], tokens: int = DEFAULT_TOKENS) -> None:
        if tokens < 1:
            raise ValueError(f"tokens must be at least 1, got {tokens}")
        self._members = frozenset(members)
        pairs = sorted((_hash(f"{member}#{i}"), member) for member in self._members for i in range(tokens))
        self._points = [point for point, _ in pairs]
        self._owners = [owner for _, owner in pairs]

    @property
    def members(self) -> frozenset[str]:
        return self._members

    def place(self, key: str) -> str | None:
        """The member that owns ``key``."""
        if not self._points:
            return None
        index = bisect.bisect_left(self._points, _hash(key))
        return self._owners[index if index < len(self._owners) else 0]

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"HashRing({sorted(self._members)!r})"


def ring_key(group: str, kind: str, namespace: str | None, name: str) -> str:
    """The hash key of an object (the protocol's group, kind, namespace and name, joined)."""
    return f"{group}/{kind}/{namespace or ''}/{name}"


def _group_of(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def placement_key(obj: Mapping[str, Any], group: str, kind: str) -> str:
    """The key that places ``obj`` (of ``group``/``kind``): its controller owner's key if it has one.

    The owner's key uses the owner reference's apiVersion group and kind, the object's own
    namespace (owners of namespaced objects live in the same namespace) and the owner's name.
    """
    metadata = obj.get("metadata") or {}
    namespace = metadata.get("namespace")
    for ref in metadata.get("ownerReferences") or ():
        if ref.get("controller"):
            return ring_key(
                _group_of(str(ref.get("apiVersion", ""))), str(ref["kind"]), namespace, ref["name"]
            )
    return ring_key(group, kind, namespace, str(metadata.get("name", "")))
