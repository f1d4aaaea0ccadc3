"""Server-side field validation: the ``fieldValidation`` query parameter, as kube-apiserver does it.

A write's body is checked for *unknown fields* (fields a custom resource's structural schema would
prune; unknown ``metadata`` fields of any kind; unknown top-level fields of the built-in kinds in
:data:`_BUILTIN_TOP_LEVEL`) and, for a JSON create/update body, *duplicate fields*. What happens
then depends on the parameter:

* ``Warn`` (the default, also when empty or absent): the write succeeds and each finding becomes
  a ``Warning: 299 - "unknown field \\"spec.foo\\""`` response header;
* ``Strict`` (what ``kubectl create/apply/replace`` send): create and update answer 400
  ``BadRequest`` ``<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding error:
  unknown field "spec.foo"``; a patch answers 422 ``Invalid`` with the patched object quoted, as the
  real server words it;
* ``Ignore``: nothing is reported.

Server-side apply ignores the parameter, as kube-apiserver does: an unknown field of a custom
resource in an apply body fails with 500 ``failed to create typed patch object (...)``.

Guarantees: the checks never mutate the object and never raise on any JSON value; field paths are
written as the real server writes them (``spec.items[0].b``, ``spec.labels.k.y``) and listed in
its order (duplicates first; see :func:`unknown_fields`). Pitfalls: built-in kinds have no schema
here, so only their ``metadata`` and (for the kinds listed) top-level fields are checked, not
``spec``; duplicates are found in JSON create/update bodies only (not YAML, protobuf or patches);
the patched object the Strict patch message quotes is serialized with sorted keys as Go does, but
without Go's HTML escaping of ``<``, ``>`` and ``&``.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from kube_runtime.testing.apiserver.crschema import Schema
from kube_runtime.testing.apiserver.crvalidate import go_quote
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.status import StatusError, bad_request

__all__ = [
    "IGNORE",
    "STRICT",
    "WARN",
    "Findings",
    "apply_unknown_field_error",
    "check_fields",
    "drop_unknown_meta",
    "duplicate_fields",
    "field_validation",
    "strict_patch_error",
    "strict_write_error",
    "unknown_fields",
    "warning_headers",
]

IGNORE, WARN, STRICT = "Ignore", "Warn", "Strict"
_VALUES = ("", IGNORE, STRICT, WARN)
_META_FIELDS = frozenset({"apiVersion", "kind", "metadata"})

# ObjectMeta as kube-apiserver decodes it: field -> the fields of a list item (None for scalars/maps).
_OBJECT_META: dict[str, frozenset[str] | None] = {
    "name": None,
    "generateName": None,
    "namespace": None,
    "selfLink": None,
    "uid": None,
    "resourceVersion": None,
    "generation": None,
    "creationTimestamp": None,
    "deletionTimestamp": None,
    "deletionGracePeriodSeconds": None,
    "labels": None,
    "annotations": None,
    "finalizers": None,
    "ownerReferences": frozenset({"apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion"}),
    "managedFields": frozenset(
        {"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"}
    ),
}

_SPEC_STATUS = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
# Top-level fields of the built-in kinds whose top level is checked (keyed by storage key).
_BUILTIN_TOP_LEVEL: dict[tuple[str, str], frozenset[str]] = {
    ("", "configmaps"): frozenset({"apiVersion", "kind", "metadata", "data", "binaryData", "immutable"}),
    ("", "secrets"): frozenset({"apiVersion", "kind", "metadata", "data", "stringData", "type", "immutable"}),
    ("", "namespaces"): _SPEC_STATUS,
    ("", "pods"): _SPEC_STATUS,
    ("", "services"): _SPEC_STATUS,
    ("", "persistentvolumeclaims"): _SPEC_STATUS,
    ("apps", "deployments"): _SPEC_STATUS,
    ("apps", "statefulsets"): _SPEC_STATUS,
    ("apps", "daemonsets"): _SPEC_STATUS,
    ("apps", "replicasets"): _SPEC_STATUS,
    ("batch", "jobs"): _SPEC_STATUS,
    ("batch", "cronjobs"): _SPEC_STATUS,
}


class Findings:
    """What a body breaks: duplicate fields and unknown fields, each in the real server's order."""

    __slots__ = ("duplicates", "unknown")

    def __init__(self, duplicates: list[str], unknown: list[str]) -> None:
        self.duplicates = duplicates
        self.unknown = unknown

    def __bool__(self) -> bool:
        return bool(self.duplicates or self.unknown)

    def messages(self) -> list[str]:
        """``duplicate field "x"`` then ``unknown field "y"``, as the real server lists them."""
        return [f"duplicate field {go_quote(p)}" for p in self.duplicates] + [
            f"unknown field {go_quote(p)}" for p in self.unknown
        ]


def field_validation(query: dict[str, str], options_kind: str) -> str:
    """The request's directive (``Ignore``, ``Warn`` or ``Strict``); raises 422 for any other value.

    ``options_kind`` (``CreateOptions``, ``UpdateOptions``, ``PatchOptions``) names the options in
    the error, as the real server does. The value is case-sensitive there too.
    """
    value = query.get("fieldValidation", "")
    if value not in _VALUES:
        supported = ", ".join(go_quote(v) for v in _VALUES)
        message = f"Unsupported value: {go_quote(value)}: supported values: {supported}"
        raise StatusError(
            422,
            "Invalid",
            f'{options_kind}.meta.k8s.io "" is invalid: fieldValidation: {message}',
            {
                "group": "meta.k8s.io",
                "kind": options_kind,
                "causes": [
                    {"reason": "FieldValueNotSupported", "message": message, "field": "fieldValidation"}
                ],
            },
        )
    return value or WARN


# Unknown fields ---------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _schema_unknown(
    value: Any, schema: Schema | None, path: str, embedded_here: bool, out: list[str]
) -> None:
    """The paths :func:`crschema.prune` would drop (metadata left to :func:`_meta_unknown`)."""
    if schema is not None and schema.preserve_unknown:
        if isinstance(value, dict):
            for key, v in value.items():
                if (embedded_here or schema.embedded) and key in _META_FIELDS:
                    continue
                sub = schema.field(key)
                if sub is not None:
                    _schema_unknown(v, sub, _join(path, key), False, out)
        elif isinstance(value, list) and schema.items is not None:
            for i, v in enumerate(value):
                _schema_unknown(v, schema.items, f"{path}[{i}]", False, out)
        return
    if isinstance(value, dict):
        if schema is None:
            return  # the parent reported this value itself
        embedded = embedded_here or schema.embedded
        for key, v in value.items():
            if embedded and key in _META_FIELDS:
                continue
            sub = schema.field(key)
            if sub is None:
                out.append(_join(path, key))
            else:
                _schema_unknown(v, sub, _join(path, key), False, out)
    elif isinstance(value, list) and schema is not None:
        for i, v in enumerate(value):
            _schema_unknown(v, schema.items, f"{path}[{i}]", False, out)


def _meta_unknown(meta: Any, out: list[str]) -> None:
    if not isinstance(meta, dict):
        return
    for key, value in meta.items():
        if key not in _OBJECT_META:
            out.append(f"metadata.{key}")
            continue
        item_fields = _OBJECT_META[key]
        if item_fields is not None and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    out.extend(f"metadata.{key}[{i}].{k}" for k in item if k not in item_fields)


def unknown_fields(rtype: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Paths of the fields of ``obj`` the server does not know (see the module docstring).

    In kube-apiserver's order: for a custom resource the unknown ``metadata`` fields, then the
    pruned paths sorted; for a built-in kind, document order (its strict JSON decoder's).
    """
    out: list[str] = []
    if rtype.schema is not None:
        _meta_unknown(obj.get("metadata"), out)
        pruned: list[str] = []
        _schema_unknown(obj, rtype.schema, "", True, pruned)
        out.extend(sorted(pruned))
        return out
    known = _BUILTIN_TOP_LEVEL.get(rtype.storage_key)
    for key, value in obj.items():
        if key == "metadata":
            _meta_unknown(value, out)
        elif known is not None and key not in known:
            out.append(key)
    return out


def drop_unknown_meta(rtype: ResourceType, obj: Any) -> None:
    """Drop what the real server's decoder drops outside a schema, whatever the directive: unknown
    ``metadata`` fields and, for the built-in kinds listed, unknown top-level fields (a custom
    resource's other unknown fields are pruned with its schema, in :mod:`crschema`)."""
    if not isinstance(obj, dict):
        return
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in _OBJECT_META]:
            del meta[key]
        for key in ("ownerReferences", "managedFields"):
            items, known = meta.get(key), _OBJECT_META[key]
            if isinstance(items, list) and known is not None:
                for item in items:
                    if isinstance(item, dict):
                        for k in [k for k in item if k not in known]:
                            del item[k]
    if rtype.schema is None:
        top = _BUILTIN_TOP_LEVEL.get(rtype.storage_key)
        if top is not None:
            for key in [k for k in obj if k not in top]:
                del obj[key]


# Duplicate fields -------------------------------------------------------------------------------


class _DupDict(dict[str, Any]):
    """A decoded JSON object that had duplicate keys (the last value wins, as in Go)."""

    duplicates: list[str]


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: set[str] = set()
    dup = _DupDict(out)
    dup.duplicates = []
    for key, _ in pairs:
        if key in seen and key not in dup.duplicates:
            dup.duplicates.append(key)
        seen.add(key)
    return dup


def _collect_duplicates(value: Any, path: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, v in value.items():
            _collect_duplicates(v, _join(path, key), out)
        if isinstance(value, _DupDict):
            out.extend(_join(path, key) for key in value.duplicates)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _collect_duplicates(v, f"{path}[{i}]", out)


def duplicate_fields(body: bytes) -> list[str]:
    """Paths of the keys a JSON body repeats (empty when it does not parse; the decoder reports that).

    Costs a second parse with the standard library, so callers skip it under ``Ignore``.
    """
    try:
        doc = json.loads(body, object_pairs_hook=_pairs)
    except ValueError:
        return []
    out: list[str] = []
    _collect_duplicates(doc, "", out)
    return out


def check_fields(rtype: ResourceType, obj: Any, body: bytes | None, directive: str) -> Findings:
    """What ``obj`` (decoded from ``body`` when that was JSON) breaks; nothing under ``Ignore``."""
    if directive == IGNORE or not isinstance(obj, dict):
        return Findings([], [])
    duplicates = duplicate_fields(body) if body else []
    return Findings(duplicates, unknown_fields(rtype, obj))


# Answers ----------------------------------------------------------------------------------------


def warning_headers(findings: Findings) -> tuple[tuple[str, str], ...]:
    """One ``Warning: 299 - "..."`` header per finding (RFC 7234 quoting, as kube-apiserver)."""
    return tuple(("Warning", f"299 - {go_quote(m)}") for m in findings.messages())


def strict_write_error(rtype: ResourceType, findings: Findings) -> StatusError:
    """The 400 a Strict create or update gets."""
    return bad_request(
        f"{rtype.kind} in version {go_quote(rtype.version)} cannot be handled as a {rtype.kind}: "
        f"strict decoding error: {', '.join(findings.messages())}"
    )


def strict_patch_error(patched: dict[str, Any], findings: Findings) -> StatusError:
    """The 422 a Strict patch gets: the patched object quoted, then the strict decoding error."""
    text = orjson.dumps(patched, option=orjson.OPT_SORT_KEYS).decode()
    message = f"Invalid value: {go_quote(text)}: strict decoding error: {', '.join(findings.messages())}"
    return StatusError(
        422,
        "Invalid",
        f' "" is invalid: patch: {message}',
        {"causes": [{"reason": "FieldValueInvalid", "message": message, "field": "patch"}]},
    )


def apply_unknown_field_error(rtype: ResourceType, applied: dict[str, Any]) -> StatusError | None:
    """The 500 server-side apply answers for a custom resource with an unknown field, else None.

    kube-apiserver names only one unknown field here (which one follows Go's map order; this
    names the first in sorted order).
    """
    if rtype.schema is None:
        return None
    out: list[str] = []
    _schema_unknown(applied, rtype.schema, "", True, out)
    if not out:
        return None
    meta = applied.get("metadata") if isinstance(applied.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    namespace, name = meta.get("namespace") or "", meta.get("name") or ""
    gvk = f"{rtype.api_version}, Kind={rtype.kind}"
    return StatusError(
        500,
        "",
        f"failed to create typed patch object ({namespace}/{name}; {gvk}): "
        f".{min(out)}: field not declared in schema",
    )
