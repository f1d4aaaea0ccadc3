"""CustomResourceDefinitions and the custom resources they define: the per-write server rules.

* :func:`prepare_crd` checks a CRD before it is stored (what serving needs, the name rule) and
  fills in the defaults the real server's v1 defaulting gives; :func:`established_status` is the
  status a CRD gets as soon as it is created (the embedded server establishes names at once).
* :func:`admit_custom_resource` is what kube-apiserver does to a custom resource on every create,
  update, patch and apply: prune unknown fields, drop non-nullable nulls, apply ``default`` values
  (:mod:`crschema`), then validate against the version's ``openAPIV3Schema`` (:mod:`crvalidate`)
  and answer 422 ``Invalid`` with the real causes and message.

Guarantees: objects of a type without a schema (built-in kinds, a CRD version without
``openAPIV3Schema``) are left untouched; on the status subresource only ``status`` is validated,
against the schema's ``status`` property, with field paths and messages as the real server words
them (``status.replicas`` / ``replicas in body must be ...``). Pitfall: the caller must have
applied the subresource rules first (status copied from the old object on a main-resource write,
everything but status on a status write), as the real registry strategies do before validating.
"""

from __future__ import annotations

from typing import Any

from kube_runtime.testing.apiserver.crschema import coerce
from kube_runtime.testing.apiserver.crvalidate import go_value, no_old, validate
from kube_runtime.testing.apiserver.discovery import Registry
from kube_runtime.testing.apiserver.resources import ResourceType, crd_resource_types
from kube_runtime.testing.apiserver.status import invalid
from kube_runtime.testing.apiserver.storage import Storage

__all__ = ["admit_custom_resource", "established_status", "prepare_crd", "serve_crd"]


def prepare_crd(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """Check a CustomResourceDefinition and default its versions; raises 422 Invalid."""
    name = obj["metadata"]["name"]
    try:
        types = crd_resource_types(obj)
    except ValueError as exc:
        field, _, msg = str(exc).partition(": ")
        raise invalid(rtype, name, [(field, "FieldValueInvalid", msg)]) from None
    spec = obj["spec"]
    expected = f"{spec['names']['plural']}.{spec['group']}"
    if name != expected:
        raise invalid(
            rtype,
            name,
            [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                )
            ],
        )
    for v in spec.get("versions") or ():
        if isinstance(v, dict):
            v.setdefault("served", True)
            v.setdefault("storage", len(types) == 1)
    if not types:
        raise invalid(
            rtype, name, [("spec.versions", "FieldValueInvalid", "must have at least one served version")]
        )


def established_status(obj: dict[str, Any], now: str) -> dict[str, Any]:
    """The status of a just-created CRD: names accepted and established at ``now``."""
    spec = obj["spec"]
    names = dict(spec["names"])
    names.setdefault("singular", str(names["kind"]).lower())
    names.setdefault("listKind", f"{names['kind']}List")
    stored = [v["name"] for v in spec.get("versions") or () if isinstance(v, dict) and v.get("storage")]
    return {
        "acceptedNames": names,
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "storedVersions": stored or [spec["versions"][0]["name"]],
    }


def serve_crd(storage: Storage, registry: Registry, crd: dict[str, Any]) -> None:
    """Serve a stored CRD's versions, and prune and default its stored objects with the new schemas.

    kube-apiserver prunes and defaults custom resources as it decodes them from etcd, so after a
    schema change reads show the new defaults (and lose fields the schema dropped) at the same
    resourceVersion, with no watch event; the embedded server rewrites the stored objects once
    instead. An object is coerced with the schema of the version it was written at (the first
    served one when that version is no longer served).
    """
    types = crd_resource_types(crd)
    before = {t.version: _source(t) for t in registry.crd_types(crd["metadata"]["name"])}
    registry.set_crd(crd["metadata"]["name"], types)
    if not types or not before or all(before.get(t.version) == _source(t) for t in types):
        return  # a new CRD has no objects yet; an unchanged schema changes no object
    by_version = {t.api_version: t for t in types}

    def recoerce(obj: dict[str, Any]) -> None:
        rtype = by_version.get(obj.get("apiVersion") or "", types[0])
        if rtype.schema is not None:
            coerce(obj, rtype.schema)

    storage.rewrite_current(storage.collection(types[0].storage_key), recoerce)


def _source(rtype: ResourceType) -> Any:
    return rtype.schema.source if rtype.schema is not None else None


def admit_custom_resource(
    rtype: ResourceType, new: dict[str, Any], old: dict[str, Any] | None, subresource: str | None
) -> None:
    """Prune, default and validate a custom resource about to be stored; raises 422 Invalid.

    ``old`` is the stored object on an update (validation then ratchets against it), None on a
    create. Does nothing for a type without a structural schema.
    """
    schema = rtype.schema
    if schema is None:
        return
    coerce(new, schema)
    if subresource == "status":
        status_schema = schema.properties.get("status")
        if status_schema is None or "status" not in new:
            return
        old_status = old.get("status", no_old()) if old is not None else no_old()
        causes = validate(new["status"], status_schema, prefix="status", old=old_status)
    else:
        causes = validate(new, schema, old=old if old is not None else no_old())
    causes.extend(_embedded_causes(new, schema))
    if causes:
        raise invalid(rtype, new["metadata"]["name"], causes)


def _embedded_causes(value: Any, schema: Any, path: str = "") -> list[tuple[str, str, str]]:
    """apiVersion and kind of ``x-kubernetes-embedded-resource`` objects (below the root)."""
    out: list[tuple[str, str, str]] = []
    if schema is None:
        return out
    if isinstance(value, dict):
        if schema.embedded and path:
            for key in ("apiVersion", "kind"):
                if key not in value:
                    out.append((f"{path}.{key}", "FieldValueRequired", "Required value"))
                elif not isinstance(value[key], str):
                    message = f"Invalid value: {go_value(value[key])}: must be a string"
                    out.append((f"{path}.{key}", "FieldValueInvalid", message))
                elif not value[key]:
                    out.append((f"{path}.{key}", "FieldValueInvalid", 'Invalid value: "": must not be empty'))
        for key, v in value.items():
            sub = schema.properties.get(key)
            if sub is not None:
                out.extend(_embedded_causes(v, sub, f"{path}.{key}" if path else key))
            elif schema.additional is not None:
                out.extend(_embedded_causes(v, schema.additional, f"{path}[{key}]"))
    elif isinstance(value, list) and schema.items is not None:
        for i, v in enumerate(value):
            out.extend(_embedded_causes(v, schema.items, f"{path}[{i}]"))
    return out
