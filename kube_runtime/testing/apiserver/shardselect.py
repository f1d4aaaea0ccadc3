"""KEP-5866 server-side sharded list and watch: the ``shardSelector`` query parameter.

``shardRange(<field>, '<start>', '<end>')`` keeps the objects whose 64-bit FNV-1a hash of the field
(``object.metadata.uid`` or ``object.metadata.namespace``) is in ``start <= hash < end``; the
bounds are ``0x`` and 16 lowercase hex digits, the end may be ``0x10000000000000000`` (2^64), and
several ranges joined with ``||`` keep an object in any of them. A list the selector was applied to
carries ``metadata.shardInfo.selector`` (the selector as sent). With the server's
``sharded_list_watch`` setting off, the parameter is ignored, as a server without the feature does.
A malformed selector is a 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kube_runtime.testing.apiserver.selectors import LabelSelector
from kube_runtime.testing.apiserver.status import bad_request
from kube_runtime.watcher.shards import HASH_SPACE, fnv1a64

__all__ = ["ShardSelector", "ShardedLabelSelector", "parse_shard_selector"]

_RANGE = re.compile(
    r"\s*shardRange\(\s*object\.metadata\.(uid|namespace)\s*,\s*'0x([0-9a-f]{16}|10{16})'\s*,"
    r"\s*'0x([0-9a-f]{16}|10{16})'\s*\)\s*"
)


@dataclass(frozen=True, slots=True)
class ShardSelector:
    text: str
    ranges: tuple[tuple[str, int, int], ...]  # (field, start, end)

    def matches(self, obj: dict[str, Any]) -> bool:
        metadata = obj.get("metadata") or {}
        for field, start, end in self.ranges:
            if start <= fnv1a64(str(metadata.get(field) or "")) < end:
                return True
        return False


@dataclass(frozen=True, slots=True)
class ShardedLabelSelector(LabelSelector):
    """A label selector and a shard selector, both required (the list and watch filters take it
    where they take a label selector)."""

    shard: ShardSelector | None = None

    @property
    def empty(self) -> bool:
        return not self.requirements and self.shard is None

    def matches(self, obj: dict[str, Any]) -> bool:
        return LabelSelector.matches(self, obj) and (self.shard is None or self.shard.matches(obj))


def parse_shard_selector(text: str) -> ShardSelector:
    """Parse a ``shardSelector`` value (400 Bad Request when malformed)."""
    ranges: list[tuple[str, int, int]] = []
    for part in text.split("||"):
        match = _RANGE.fullmatch(part)
        if match is None:
            raise bad_request(
                f"invalid shardSelector {text!r}: want shardRange(object.metadata.uid|namespace, "
                "'0x<16 hex digits>', '0x<16 hex digits>') joined by ||"
            )
        field, start, end = match.group(1), int(match.group(2), 16), int(match.group(3), 16)
        if start > HASH_SPACE - 1 or not start < end:
            raise bad_request(f"invalid shardSelector {text!r}: a range must have start < end <= 2^64")
        ranges.append((field, start, end))
    return ShardSelector(text, tuple(ranges))
