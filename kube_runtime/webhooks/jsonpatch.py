"""RFC 6902 JSON patch from two JSON documents: what a mutating webhook sends back.

Guarantee: applying ``diff(a, b)`` to ``a`` with any RFC 6902 implementation gives ``b``
(property-tested against an independent implementation). Only ``add``, ``remove`` and
``replace`` are emitted, with RFC 6901 pointers (``~`` as ``~0``, ``/`` as ``~1``).

Pitfalls handled: Python's ``True == 1`` and ``1 == 1.0`` are different JSON values and are
replaced, not left alone; list elements are removed from the end backwards so indices stay valid;
appended elements use explicit indices (``/-`` is fine too, but explicit indices are easier to read
in an audit log). Lists are compared position by position: inserting at the front of a list gives
one ``replace`` per shifted element, a larger patch than a minimal edit script, never a wrong one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["diff", "escape_pointer_token"]


def escape_pointer_token(token: str) -> str:
    """RFC 6901 escaping of one reference token."""
    return token.replace("~", "~0").replace("/", "~1")


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _diff(a: Any, b: Any, path: str, ops: list[dict[str, Any]]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in a:
            if key not in b:
                ops.append({"op": "remove", "path": f"{path}/{escape_pointer_token(key)}"})
        for key, value in b.items():
            child = f"{path}/{escape_pointer_token(key)}"
            if key not in a:
                ops.append({"op": "add", "path": child, "value": value})
            else:
                _diff(a[key], value, child, ops)
        return
    if isinstance(a, list) and isinstance(b, list):
        common = min(len(a), len(b))
        for i in range(common):
            _diff(a[i], b[i], f"{path}/{i}", ops)
        for i in range(len(a) - 1, common - 1, -1):
            ops.append({"op": "remove", "path": f"{path}/{i}"})
        for i in range(common, len(b)):
            ops.append({"op": "add", "path": f"{path}/{i}", "value": b[i]})
        return
    if not _same(a, b):
        ops.append({"op": "replace", "path": path, "value": b})


def diff(original: Any, changed: Any) -> list[dict[str, Any]]:
    """The operations turning ``original`` into ``changed`` (empty when they are equal JSON).

    Values in the operations are shared with ``changed``, not copied: serialize the patch before
    mutating ``changed`` again.
    """
    ops: list[dict[str, Any]] = []
    _diff(original, changed, "", ops)
    return ops
