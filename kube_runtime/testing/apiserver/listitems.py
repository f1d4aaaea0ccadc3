"""The items of a JSON list response, encoded as kube-apiserver encodes them.

Guarantees: the items of a built-in resource's list carry no ``kind`` and no ``apiVersion`` (the
real server's typed list encoding leaves each item's type fields empty: the list's own ``kind`` and
``apiVersion`` name them); the items of a custom resource's list keep both, as the real server's
lists of custom resources do. Every other field of an item is the stored object's, byte for byte.
Single-object responses, watch events and ``PartialObjectMetadataList`` items are not encoded here
and keep their type fields.

Cost: a stored object that starts with its ``apiVersion`` and ``kind`` (in either order; clients
send them first) is cut on bytes; any other is decoded and encoded again.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.storage import Record

__all__ = ["list_items"]


def list_items(records: Sequence[Record], rtype: ResourceType) -> bytes:
    """The comma-separated JSON items of a list of ``records`` of ``rtype`` (no brackets)."""
    if rtype.custom:
        return b",".join([r.raw for r in records])
    kind = b'"kind":' + orjson.dumps(rtype.kind)
    api_version = b'"apiVersion":' + orjson.dumps(rtype.api_version)
    prefixes = (b"{" + api_version + b"," + kind + b",", b"{" + kind + b"," + api_version + b",")
    out: list[bytes] = []
    for record in records:
        raw = record.raw
        for prefix in prefixes:
            if raw.startswith(prefix):
                out.append(b"{" + raw[len(prefix) :])
                break
        else:
            obj = dict(record.obj)
            obj.pop("kind", None)
            obj.pop("apiVersion", None)
            out.append(orjson.dumps(obj))
    return b",".join(out)
