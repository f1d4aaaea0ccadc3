"""The data of ConfigMaps and Secrets as kube-apiserver checks it: key names (``[-._a-zA-Z0-9]+``, at
most 253 characters) and the ``immutable`` field (once true, ``data``, ``binaryData`` and
``immutable`` itself cannot change; the object can only be deleted).

Guarantee: the same field paths and reasons as kube-apiserver (``FieldValueInvalid`` for keys,
``FieldValueForbidden`` for changes to an immutable object).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["data_causes"]

Cause = tuple[str, str, str]

_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_KEY_MSG = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or "
    "'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"
)
_IMMUTABLE_MSG = "Forbidden: field is immutable when `immutable` is set"


def data_causes(obj: dict[str, Any], old: dict[str, Any] | None) -> list[Cause]:
    """What kube-apiserver refuses in ``obj``'s data (written over ``old``, if any)."""
    causes: list[Cause] = []
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
