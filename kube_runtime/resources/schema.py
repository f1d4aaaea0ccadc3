"""A structural OpenAPI v3 schema (what a CRD version needs) from a model.

pydantic's JSON Schema is the starting point; it is rewritten into the subset Kubernetes accepts:

* every ``$ref`` is inlined (``$defs`` dropped); a recursive model is a ``TypeError`` (structural
  schemas cannot recurse);
* ``Optional[X]`` (``anyOf: [X, null]``) becomes ``X`` with ``nullable: true``, and a ``None``
  default is dropped; other unions are a ``TypeError`` naming the field (use
  :data:`~kube_runtime.resources.types.IntOrString`), except the int-or-string shape itself;
* ``set[X]`` (``uniqueItems: true``, which Kubernetes forbids) becomes a list with
  ``x-kubernetes-list-type: set`` (the API server then rejects duplicates);
* ``const`` becomes a one-value ``enum``; draft 2020 ``exclusiveMinimum: n`` becomes
  ``minimum: n, exclusiveMinimum: true`` (and the same for maximum);
* ``title`` is dropped, defaults and descriptions are kept; ``Any`` and untyped objects become
  ``x-kubernetes-preserve-unknown-fields: true`` (a node without a type must say so);
* any other keyword Kubernetes does not know is a ``TypeError`` rather than a CRD the API server
  rejects later, and so are the list shapes it refuses (a ``ListType.map`` key that is not a
  required or defaulted field of object items, a ``ListType.set`` of objects) and a field that
  can only be ``None``.

The top level gets ``apiVersion``/``kind`` as strings and ``metadata`` as a bare object
(Kubernetes forbids constraining metadata beyond name in a CRD).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["object_schema", "structural_schema"]

_ALLOWED = frozenset(
    {
        "description",
        "type",
        "format",
        "default",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "multipleOf",
        "enum",
        "maxProperties",
        "minProperties",
        "required",
        "items",
        "properties",
        "additionalProperties",
        "nullable",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-list-type",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
        "anyOf",
    }
)
_DROPPED = frozenset({"title", "examples", "$defs"})


def structural_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of ``model``'s objects (any model; no top-level special cases)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs: dict[str, Any] = raw.get("$defs", {})
    return _Rewriter(defs).node(raw, model.__name__, ())


def object_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of a CRD version for the resource ``model``."""
    schema = structural_schema(model)
    properties = schema.setdefault("properties", {})
    properties["apiVersion"] = {"type": "string"}
    properties["kind"] = {"type": "string"}
    properties["metadata"] = {"type": "object"}
    required = [name for name in schema.get("required", []) if name not in ("apiVersion", "kind", "metadata")]
    if required:
        schema["required"] = required
    else:
        schema.pop("required", None)
    return schema


class _Rewriter:
    def __init__(self, defs: dict[str, Any]) -> None:
        self.defs = defs

    def node(self, schema: dict[str, Any], where: str, resolving: tuple[str, ...]) -> dict[str, Any]:
        schema = dict(schema)
        for key in _DROPPED:
            schema.pop(key, None)
        ref = schema.pop("$ref", None)
        all_of = schema.pop("allOf", None)
        if all_of is not None:  # older pydantic wraps an annotated $ref: [{"$ref": ...}]
            if len(all_of) != 1 or set(all_of[0]) != {"$ref"}:
                raise TypeError(f"{where}: allOf is not supported in a structural schema")
            ref = all_of[0]["$ref"]
        if ref is not None:
            name = ref.rsplit("/", 1)[-1]
            if name in resolving:
                raise TypeError(f"{where}: recursive model {name} cannot be a structural schema")
            target = self.node(self.defs[name], where, (*resolving, name))
            schema = {**target, **schema}  # annotations beside the $ref win (description, rules)
            return self._finish(schema, where, resolving)
        any_of = schema.pop("anyOf", None)
        if any_of is not None:
            if schema.get("x-kubernetes-int-or-string"):
                schema["anyOf"] = any_of
                return self._finish(schema, where, resolving)
            non_null = [option for option in any_of if option.get("type") != "null"]
            if len(non_null) == len(any_of) or len(non_null) != 1:
                raise TypeError(
                    f"{where}: unions are not structural; use one type, Optional[...] or IntOrString"
                )
            inner = self.node(non_null[0], where, resolving)
            if schema.get("default", 0) is None:
                schema.pop("default")
            schema = {**inner, **schema, "nullable": True}
            return self._finish(schema, where, resolving)
        return self._finish(schema, where, resolving)

    def _finish(self, schema: dict[str, Any], where: str, resolving: tuple[str, ...]) -> dict[str, Any]:
        if "const" in schema:
            schema["enum"] = [schema.pop("const")]
        for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            value = schema.get(bound)
            if value is not None and not isinstance(value, bool):
                schema[inclusive] = value
                schema[bound] = True
        if schema.pop("uniqueItems", False):  # Kubernetes forbids uniqueItems: true (quadratic)
            schema.setdefault("x-kubernetes-list-type", "set")
        if "default" in schema and schema["default"] is None:
            schema.pop("default")
        properties = schema.get("properties")
        if properties is not None:
            schema["properties"] = {
                name: self.node(sub, f"{where}.{name}", resolving) for name, sub in properties.items()
            }
            schema.setdefault("type", "object")
        items = schema.get("items")
        if isinstance(items, dict):
            schema["items"] = self.node(items, f"{where}[]", resolving)
        extra = schema.get("additionalProperties")
        if extra is True or (schema.get("type") == "object" and "properties" not in schema and not extra):
            schema.pop("additionalProperties", None)
            schema["x-kubernetes-preserve-unknown-fields"] = True
        elif isinstance(extra, dict):
            schema["additionalProperties"] = self.node(extra, f"{where}.*", resolving)
        if "type" not in schema and not (
            schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["x-kubernetes-preserve-unknown-fields"] = True  # Any
        unknown = set(schema) - _ALLOWED
        if unknown:
            raise TypeError(f"{where}: JSON Schema keywords Kubernetes does not accept: {sorted(unknown)}")
        if schema.get("type") == "null":
            raise TypeError(f"{where}: a field that can only be None has no structural schema")
        _check_list_type(schema, where)
        return schema


def _check_list_type(schema: dict[str, Any], where: str) -> None:
    """The API server's rules for ``x-kubernetes-list-type`` (a CRD breaking them is refused)."""
    kind = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys")
    if keys is not None and kind != "map":
        raise TypeError(f"{where}: list map keys need ListType.map")
    if kind is None:
        return
    items = schema.get("items")
    item_type = items.get("type") if isinstance(items, dict) else None
    if kind == "set" and item_type in ("object", "array"):
        raise TypeError(f"{where}: ListType.set needs scalar items (use ListType.map for objects)")
    if kind != "map":
        return
    if item_type != "object" or not isinstance(items, dict):
        raise TypeError(f"{where}: ListType.map needs object items")
    properties = items.get("properties") or {}
    required = set(items.get("required") or ())
    for key in keys or ():
        if key not in properties:
            raise TypeError(f"{where}: list map key {key!r} is not a field of the items")
        if key not in required and "default" not in properties[key]:
            raise TypeError(f"{where}: list map key {key!r} must be a required field or have a default")
