"""The data of ConfigMaps and Secrets as kube-apiserver checks it: key names (``[-._a-zA-Z0-9]+``, at
most 253 characters), the total size of the values (at most 1 MiB; ``binaryData`` and a Secret's
``data`` counted decoded) and the ``immutable`` field (once true, ``data``, ``binaryData`` and
``immutable`` itself cannot change; the object can only be deleted).

Guarantee: the same field paths and reasons as kube-apiserver (``FieldValueInvalid`` for keys,
``FieldValueForbidden`` for changes to an immutable object).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["MAX_DATA_BYTES", "data_causes"]

#: kube-apiserver's ``MaxSecretSize``, the limit of a ConfigMap's or a Secret's data.
MAX_DATA_BYTES = 1024 * 1024

Cause = tuple[str, str, str]

_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
_IMMUTABLE_MSG = "Forbidden: field is immutable when `immutable` is set"


def data_causes(obj: dict[str, Any], old: dict[str, Any] | None, *, secret: bool = False) -> list[Cause]:
    """What kube-apiserver refuses in ``obj``'s data (written over ``old``, if any); ``secret``:
    ``data`` holds base64 values (a Secret)."""
    causes: list[Cause] = []
    size = _data_size(obj, secret)
    if size > MAX_DATA_BYTES:
        field = "data" if secret else "[]"  # a ConfigMap's: the whole object, as kube-apiserver prints it
        causes.append((field, "FieldValueTooLong", f"Too long: may not be more than {MAX_DATA_BYTES} bytes"))
    for field in ("data", "binaryData"):
        entries = obj.get(field)
        if not isinstance(entries, dict):
            continue
        for key in entries:
            if len(key) > 253 or not _KEY.fullmatch(key):
                causes.append((f"{field}[{key}]", "FieldValueInvalid", f'Invalid value: "{key}": {_KEY_MSG}'))
    if old is not None and old.get("immutable") is True:
        if obj.get("immutable") is not True:
            causes.append(("immutable", "FieldValueForbidden", _IMMUTABLE_MSG))
        for field in ("data", "binaryData"):
            if (obj.get(field) or {}) != (old.get(field) or {}):
                causes.append((field, "FieldValueForbidden", _IMMUTABLE_MSG))
    return causes


def _data_size(obj: dict[str, Any], secret: bool) -> int:
    """What kube-apiserver counts against :data:`MAX_DATA_BYTES`: the values (``binaryData`` and a
    Secret's ``data`` decoded from base64), not the keys."""
    total = 0
    for field in ("data", "binaryData"):
        entries = obj.get(field)
        if not isinstance(entries, dict):
            continue
        encoded = secret or field == "binaryData"
        for value in entries.values():
            if isinstance(value, str):
                total += _decoded_length(value) if encoded else len(value.encode())
    return total


def _decoded_length(value: str) -> int:
    return len(value) * 3 // 4 - value[-2:].count("=")
