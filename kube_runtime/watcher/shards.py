"""Server-side sharded list and watch (KEP-5866, Kubernetes 1.36 alpha, feature gate
``ShardedListAndWatch``): the alternative to label-assigned shards when the API server supports it.

A list or watch with ``shardSelector=shardRange(object.metadata.uid, '0x<start>', '0x<end>')``
returns only objects whose 64-bit FNV-1a hash of the field falls in ``start <= hash < end``
(16 lowercase hex digits each; the end may be ``0x10000000000000000``, i.e. 2^64; several ranges
are joined with ``||``). A server that applied it echoes the selector in the list's
``metadata.shardInfo.selector``; one that does not know the parameter ignores it and returns
everything, so the watcher checks the echo on every list page and, when it is missing, fails the
list with :class:`ShardSelectorUnsupported` instead of silently caching every object.

Use: ``WatcherConfig().shards(shard_range_selector(index, count))`` for replica ``index`` of
``count`` (a StatefulSet ordinal, say). Unlike the label protocol, ranges are static: objects do
not move between live replicas, and a replica's objects are nobody's while it is down.
"""

from __future__ import annotations

from typing import Any

from kube_runtime.watcher.event import WatcherError

__all__ = [
    "HASH_SPACE",
    "ShardSelectorUnsupported",
    "check_shard_info",
    "fnv1a64",
    "shard_range_selector",
    "shard_ranges",
]

#: One past the largest 64-bit hash.
HASH_SPACE = 1 << 64
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = HASH_SPACE - 1


class ShardSelectorUnsupported(WatcherError):
    """The API server answered a sharded list without ``metadata.shardInfo``: it ignored the
    ``shardSelector`` (no KEP-5866 support, or the feature gate is off) and sent every object."""


def fnv1a64(value: str) -> int:
    """The 64-bit FNV-1a hash of ``value``'s UTF-8 bytes (the hash KEP-5866 ranges are over)."""
    h = _FNV_OFFSET
    for byte in value.encode():
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return h


def _hex(value: int) -> str:
    return "0x10000000000000000" if value == HASH_SPACE else f"0x{value:016x}"


def shard_ranges(count: int) -> list[tuple[int, int]]:
    """``count`` contiguous ``[start, end)`` ranges covering the hash space, as equal as possible."""
    if count < 1:
        raise ValueError(f"need at least one shard, got {count}")
    return [(HASH_SPACE * i // count, HASH_SPACE * (i + 1) // count) for i in range(count)]


def shard_range_selector(index: int, count: int, field: str = "object.metadata.uid") -> str:
    """The ``shardSelector`` of shard ``index`` of ``count`` over ``field``."""
    if not 0 <= index < count:
        raise ValueError(f"shard index {index} is not in [0, {count})")
    start, end = shard_ranges(count)[index]
    return f"shardRange({field}, '{_hex(start)}', '{_hex(end)}')"


def check_shard_info(listing: dict[str, Any], selector: str) -> None:
    """Raise :class:`ShardSelectorUnsupported` unless ``listing`` says the server applied ``selector``."""
    info = (listing.get("metadata") or {}).get("shardInfo") or {}
    if info.get("selector") != selector:
        raise ShardSelectorUnsupported(
            f"the API server ignored shardSelector={selector!r} (no metadata.shardInfo in its list "
            "answer: it lacks KEP-5866 sharded list and watch, or its ShardedListAndWatch feature "
            "gate is off) and sent every object; use label-assigned shards (kube_runtime.sharding) instead"
        )
