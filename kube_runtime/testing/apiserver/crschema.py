"""Structural schemas of custom resources: parsing, pruning and defaulting, as kube-apiserver does them.

A CustomResourceDefinition version's ``schema.openAPIV3Schema`` is parsed once (when the CRD is
stored) into a tree of :class:`Schema` nodes. Every custom resource written through the API then goes
through :func:`coerce` (what the real server does while decoding the request body and again while
decoding from storage):

1. pruning: fields the schema does not specify are dropped, except under
   ``x-kubernetes-preserve-unknown-fields: true`` and, at the resource root and at
   ``x-kubernetes-embedded-resource: true`` nodes, ``apiVersion``, ``kind`` and ``metadata``;
2. a ``null`` map value whose schema is neither ``nullable`` nor has a ``default`` is dropped;
3. defaulting: a missing property (or a non-nullable ``null``) with a ``default`` gets a deep copy of
   it, top down, so a defaulted object then gets its own properties' defaults.

Guarantees: the functions mutate the given JSON value in place and never raise on any JSON input
(a value of the wrong type is left for validation to report). Pitfalls: ``anyOf``/``allOf``/
``oneOf``/``not`` take no part in pruning or defaulting (the real server only allows value
validations there in a structural schema), and ``metadata`` inside an embedded resource is kept
as sent (the real server also drops unknown fields inside it).
"""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["Schema", "coerce", "default", "parse_schema", "prune"]

_META_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


class Schema:
    """One node of a structural schema (only what pruning, defaulting and validation read)."""

    __slots__ = (
        "additional",
        "any_of",
        "default",
        "embedded",
        "enum",
        "exclusive_maximum",
        "exclusive_minimum",
        "format",
        "has_default",
        "int_or_string",
        "items",
        "max_items",
        "max_length",
        "max_properties",
        "maximum",
        "min_items",
        "min_length",
        "min_properties",
        "minimum",
        "multiple_of",
        "nullable",
        "pattern",
        "pattern_re",
        "preserve_unknown",
        "properties",
        "required",
        "source",
        "type",
    )

    def __init__(self, doc: dict[str, Any]) -> None:
        self.source = doc  # the document parsed (to tell whether a schema changed)
        self.type: str | None = doc.get("type") if isinstance(doc.get("type"), str) else None
        self.int_or_string = doc.get("x-kubernetes-int-or-string") is True
        self.nullable = doc.get("nullable") is True
        self.format = _str(doc.get("format"))
        self.preserve_unknown = doc.get("x-kubernetes-preserve-unknown-fields") is True
        self.embedded = doc.get("x-kubernetes-embedded-resource") is True
        self.has_default = "default" in doc
        self.default: Any = doc.get("default")
        props = doc.get("properties")
        self.properties: dict[str, Schema] = (
            {k: Schema(v) for k, v in props.items() if isinstance(v, dict)} if isinstance(props, dict) else {}
        )
        extra = doc.get("additionalProperties")
        self.additional: Schema | None = Schema(extra) if isinstance(extra, dict) else None
        items = doc.get("items")
        self.items: Schema | None = Schema(items) if isinstance(items, dict) else None
        any_of = doc.get("anyOf")
        self.any_of: list[Schema] = (
            [Schema(s) for s in any_of if isinstance(s, dict)] if isinstance(any_of, list) else []
        )
        required = doc.get("required")
        self.required: list[str] = (
            [r for r in required if isinstance(r, str)] if isinstance(required, list) else []
        )
        enum = doc.get("enum")
        self.enum: list[Any] | None = enum if isinstance(enum, list) and enum else None
        self.minimum = _number(doc.get("minimum"))
        self.maximum = _number(doc.get("maximum"))
        self.exclusive_minimum = doc.get("exclusiveMinimum") is True
        self.exclusive_maximum = doc.get("exclusiveMaximum") is True
        self.multiple_of = _number(doc.get("multipleOf"))
        self.min_length = _int(doc.get("minLength"))
        self.max_length = _int(doc.get("maxLength"))
        self.min_items = _int(doc.get("minItems"))
        self.max_items = _int(doc.get("maxItems"))
        self.min_properties = _int(doc.get("minProperties"))
        self.max_properties = _int(doc.get("maxProperties"))
        self.pattern = _str(doc.get("pattern"))
        self.pattern_re: re.Pattern[str] | None = None
        if self.pattern:
            try:
                self.pattern_re = re.compile(self.pattern)
            except re.error:  # valid for Go's RE2 (the real server took it) but not for Python
                self.pattern_re = None

    def field(self, key: str) -> Schema | None:
        """The schema of map member ``key`` (a property, else ``additionalProperties``), or None."""
        prop = self.properties.get(key)
        return prop if prop is not None else self.additional


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_schema(doc: Any) -> Schema | None:
    """The :class:`Schema` of an ``openAPIV3Schema`` document (None when there is none)."""
    return Schema(doc) if isinstance(doc, dict) else None


# Pruning -------------------------------------------------------------------------------------


def prune(value: Any, schema: Schema | None, *, root: bool = True) -> None:
    """Drop the fields ``schema`` does not specify, in place (see the module docstring)."""
    _prune(value, schema, root)


def _prune(value: Any, schema: Schema | None, embedded_here: bool) -> None:
    if schema is not None and schema.preserve_unknown:
        _prune_known(value, schema, embedded_here)
        return
    if isinstance(value, dict):
        if schema is None:
            value.clear()
            return
        embedded = embedded_here or schema.embedded
        for key in list(value):
            if embedded and key in _META_FIELDS:
                continue
            sub = schema.field(key)
            if sub is None:
                del value[key]
            else:
                _prune(value[key], sub, False)
    elif isinstance(value, list):
        item = schema.items if schema is not None else None
        for v in value:
            _prune(v, item, False)


def _prune_known(value: Any, schema: Schema, embedded_here: bool) -> None:
    """Under preserve-unknown-fields: keep unknown members, prune inside the specified ones."""
    if isinstance(value, dict):
        embedded = embedded_here or schema.embedded
        for key, v in value.items():
            if embedded and key in _META_FIELDS:
                continue
            sub = schema.field(key)
            if sub is not None:
                _prune(v, sub, False)
    elif isinstance(value, list) and schema.items is not None:
        for v in value:
            _prune_known(v, schema.items, False)


def prune_nulls(value: Any, schema: Schema | None) -> None:
    """Drop map members that are ``null`` where the schema is neither nullable nor defaulted."""
    if isinstance(value, dict):
        for key in list(value):
            sub = schema.field(key) if schema is not None else None
            v = value[key]
            if v is None and sub is not None and not sub.nullable and not sub.has_default:
                del value[key]
            else:
                prune_nulls(v, sub)
    elif isinstance(value, list):
        item = schema.items if schema is not None else None
        for v in value:
            prune_nulls(v, item)


# Defaulting ----------------------------------------------------------------------------------


def default(value: Any, schema: Schema | None) -> None:
    """Fill in the schema's defaults, in place, top down (see the module docstring)."""
    if schema is None:
        return
    if isinstance(value, dict):
        for key, prop in schema.properties.items():
            if prop.has_default and (key not in value or (value[key] is None and not prop.nullable)):
                value[key] = copy.deepcopy(prop.default)
        for key in list(value):
            prop_schema = schema.properties.get(key)
            if prop_schema is not None:
                default(value[key], prop_schema)
            elif schema.additional is not None:
                extra = schema.additional
                if value[key] is None and extra.has_default and not extra.nullable:
                    value[key] = copy.deepcopy(extra.default)
                default(value[key], extra)
    elif isinstance(value, list) and schema.items is not None:
        item = schema.items
        for i, v in enumerate(value):
            if v is None and item.has_default and not item.nullable:
                value[i] = copy.deepcopy(item.default)
            default(value[i], item)


def coerce(obj: dict[str, Any], schema: Schema | None) -> None:
    """Prune, drop non-nullable nulls, then default a whole custom resource, in place."""
    prune(obj, schema)
    prune_nulls(obj, schema)
    default(obj, schema)
