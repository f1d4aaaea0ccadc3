"""kube-apiserver's handling of Secrets that a controller sees: ``stringData`` merged into ``data``
(base64-encoded, over ``data``'s entry of the same key) and not stored; ``data`` values that are not
base64 refused with 400, as kube-apiserver's decoding refuses them; ``type`` immutable; a
``kubernetes.io/tls`` Secret needs ``tls.crt`` and ``tls.key``; keys and ``immutable`` as for
ConfigMaps (:mod:`~kube_runtime.testing.apiserver.datakeys`).

Pitfall: ``type`` is not defaulted to ``Opaque`` (the server does no defaulting, see
docs/embedded-apiserver.md).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from kube_runtime.testing.apiserver.datakeys import data_causes
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.status import bad_request, invalid

__all__ = ["SECRETS", "prepare_secret"]

#: The storage key of Secrets.
SECRETS = ("", "secrets")
_TLS = "kubernetes.io/tls"


def prepare_secret(rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
    """Check ``obj`` (a Secret being written over ``old``) and merge its ``stringData`` in place."""
    name = str(obj["metadata"].get("name") or "")
    data = obj.get("data")
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(value, str) or not _is_base64(value):
                why = f"illegal base64 data for key {key!r}"
                raise bad_request(f'Secret in version "v1" cannot be handled as a Secret: {why}')
    string_data = obj.pop("stringData", None)
    if isinstance(string_data, dict) and string_data:
        merged = dict(data) if isinstance(data, dict) else {}
        for key, value in string_data.items():
            if isinstance(value, str):
                merged[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = merged
    causes = data_causes(obj, old, secret=True)
    if old is not None and old.get("type") != obj.get("type") and (old.get("type") or obj.get("type")):
        causes.append(
            ("type", "FieldValueInvalid", f'Invalid value: "{obj.get("type") or ""}": field is immutable')
        )
    if obj.get("type") == _TLS:
        stored = obj.get("data")
        present: dict[str, Any] = stored if isinstance(stored, dict) else {}
        for key in ("tls.crt", "tls.key"):
            if key not in present:
                causes.append((f"data[{key}]", "FieldValueRequired", "Required value"))
    if causes:
        raise invalid(rtype, name, causes)


def _is_base64(value: str) -> bool:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True
