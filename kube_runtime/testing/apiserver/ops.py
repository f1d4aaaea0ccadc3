"""Object operations with kube-apiserver semantics, independent of HTTP.

Used by the HTTP app, the garbage collector and the in-process load generator. Every method runs
synchronously on the event loop (so each is atomic) and raises :class:`StatusError` on failure.

Rules implemented (the registry strategies of the real server): generateName, uid,
creationTimestamp, generation (bumped by spec changes, not by status or metadata, except that a
Deployment's annotations count as spec), optimistic concurrency on resourceVersion, status
subresource isolation, no-op writes that change nothing (no new resourceVersion, no event),
finalizers (deletionTimestamp first, removal when the last finalizer goes), Orphan/Foreground
propagation finalizers, namespace lifecycle (creating in a missing or terminating namespace
fails), CRD establishment.
"""

from __future__ import annotations

import datetime
import secrets
import uuid
from typing import Any

import orjson

from kube_runtime.testing.apiserver.crd import (
    admit_custom_resource,
    established_status,
    prepare_crd,
    serve_crd,
)
from kube_runtime.testing.apiserver.datakeys import data_causes
from kube_runtime.testing.apiserver.discovery import Registry
from kube_runtime.testing.apiserver.managed_fields import ApplyConflict, record_update, server_side_apply
from kube_runtime.testing.apiserver.names import LABEL_MSG, SUBDOMAIN_MSG, is_label, is_subdomain
from kube_runtime.testing.apiserver.objectmeta import meta_causes
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.secrets import SECRETS, prepare_secret
from kube_runtime.testing.apiserver.status import (
    StatusError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    invalid,
    not_found,
)
from kube_runtime.testing.apiserver.storage import ADDED, DELETED, MODIFIED, Collection, Record, Storage

__all__ = ["NAMESPACES", "ObjectOps", "now_rfc3339"]

NAMESPACES = ("", "namespaces")
CRDS = ("apiextensions.k8s.io", "customresourcedefinitions")
_CONFIG_MAPS = ("", "configmaps")
_CONFLICT = "the object has been modified; please apply your changes to the latest version and try again"
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_view(rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    """What bumps ``metadata.generation`` when it changes: all but metadata and status, plus the
    annotations (absent equals empty) for kinds whose strategy counts them (apps/v1 Deployment)."""
    view = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    if rtype.generation_counts_annotations:
        view[".annotations"] = (obj.get("metadata") or {}).get("annotations") or {}
    return view


class ObjectOps:
    """Create, update, patch and delete objects in a :class:`Storage`, with server rules."""

    def __init__(self, storage: Storage, registry: Registry) -> None:
        self.storage = storage
        self.registry = registry

    # Helpers ---------------------------------------------------------------------------------

    def collection(self, rtype: ResourceType) -> Collection:
        return self.storage.collection(rtype.storage_key)

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Record:
        record = self.collection(rtype).get(namespace or "", name)
        if record is None:
            raise not_found(rtype, name)
        return record

    def _check_body(self, rtype: ResourceType, obj: Any) -> dict[str, Any]:
        if not isinstance(obj, dict):
            raise bad_request("the body of the request must be a JSON object")
        # Like kube-apiserver's decoder, the URL supplies the kind and apiVersion a body leaves out
        # (the official Python client and client-go's typed clients send bodies without them).
        api_version = obj.get("apiVersion") or rtype.api_version
        kind = obj.get("kind") or rtype.kind
        obj["kind"] = kind
        same_group = isinstance(api_version, str) and api_version.split("/")[0] == rtype.group
        if api_version and api_version != rtype.api_version and not same_group:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rtype.api_version})"
            )
        if kind != rtype.kind:
            raise bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({rtype.kind})"
            )
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = meta = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        obj["apiVersion"] = rtype.api_version
        return meta

    def _check_namespace(self, rtype: ResourceType, namespace: str | None, meta: dict[str, Any]) -> str:
        if not rtype.namespaced:
            meta.pop("namespace", None)
            return ""
        if not namespace:
            raise bad_request(
                "the namespace of the object must be set on the request for a namespaced resource"
            )
        if meta.get("namespace") not in (None, "", namespace):
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace
        return namespace

    def _require_live_namespace(self, rtype: ResourceType, namespace: str, name: str) -> None:
        if not rtype.namespaced:
            return
        ns = self.storage.collection(NAMESPACES).get("", namespace)
        ns_type = self.registry.lookup("", "v1", "namespaces")
        assert ns_type is not None
        if ns is None:
            raise not_found(ns_type, namespace)
        if (ns.obj.get("metadata") or {}).get("deletionTimestamp"):
            raise forbidden(
                rtype,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _validate_meta(self, rtype: ResourceType, meta: dict[str, Any], name: str) -> None:
        causes: list[tuple[str, str, str]] = []
        valid = is_label(name) if rtype.storage_key == NAMESPACES else is_subdomain(name)
        if not valid:
            msg = LABEL_MSG if rtype.storage_key == NAMESPACES else SUBDOMAIN_MSG
            causes.append(("metadata.name", "FieldValueInvalid", f'Invalid value: "{name}": {msg}'))
        for field in ("labels", "annotations"):
            value = meta.get(field)
            if value is not None and (
                not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
            ):
                causes.append(
                    (f"metadata.{field}", "FieldValueInvalid", "Invalid value: must be a map of strings")
                )
        finalizers = meta.get("finalizers")
        if finalizers is not None and (
            not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)
        ):
            causes.append(
                ("metadata.finalizers", "FieldValueInvalid", "Invalid value: must be a list of strings")
            )
        causes += meta_causes(meta)
        if causes:
            raise invalid(rtype, name, causes)

    def _prepare_kind_rules(self, rtype: ResourceType, obj: dict[str, Any], old: Record | None) -> None:
        """Per-kind defaults and validation (namespaces, pods, CRDs)."""
        key = rtype.storage_key
        name = obj["metadata"]["name"]
        if key == NAMESPACES:
            spec = (
                obj.setdefault("spec", {}) if isinstance(obj.get("spec"), dict) or "spec" not in obj else {}
            )
            if old is None:
                spec.setdefault("finalizers", ["kubernetes"])
                obj["status"] = {"phase": "Active"}
            labels = obj["metadata"].setdefault("labels", {})
            if isinstance(labels, dict):
                labels["kubernetes.io/metadata.name"] = name
        elif key == ("", "pods") and old is None:
            status = obj.get("status")
            if not isinstance(status, dict):
                status = {}
            status.setdefault("phase", "Pending")
            obj["status"] = status
        elif key == CRDS:
            prepare_crd(rtype, obj)
        elif key == SECRETS:
            prepare_secret(rtype, obj, None if old is None else old.obj)
        elif key == _CONFIG_MAPS:
            causes = data_causes(obj, None if old is None else old.obj)
            if causes:
                raise invalid(rtype, name, causes)

    def _after_commit(self, rtype: ResourceType, record: Record, deleted: bool) -> None:
        if rtype.storage_key == CRDS:
            name = record.key[1]
            if deleted:
                self.registry.remove_crd(name)
            else:
                serve_crd(self.storage, self.registry, record.obj)

    # Create ----------------------------------------------------------------------------------

    def create(
        self,
        rtype: ResourceType,
        namespace: str | None,
        obj: Any,
        *,
        manager: str | None = None,
        managed_fields: list[dict[str, Any]] | None = None,
        dry_run: bool = False,
    ) -> Record:
        meta = self._check_body(rtype, obj)
        ns = self._check_namespace(rtype, namespace, meta)
        if meta.get("resourceVersion"):
            raise bad_request("resourceVersion should not be set on objects to be created")
        coll = self.collection(rtype)
        name = meta.get("name")
        if not name:
            generate = meta.get("generateName")
            if not generate:
                raise invalid(
                    rtype,
                    "",
                    [
                        (
                            "metadata.name",
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
            for _ in range(8):
                name = str(generate) + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
                if coll.get(ns, name) is None:
                    break
            meta["name"] = name
        if not isinstance(name, str):
            raise bad_request("metadata.name must be a string")
        self._validate_meta(rtype, meta, name)
        self._require_live_namespace(rtype, ns, name)
        if coll.get(ns, name) is not None:
            raise already_exists(rtype, name)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rtype.tracks_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if rtype.has_status and rtype.storage_key not in (NAMESPACES, ("", "pods")):
            obj.pop("status", None)
        self._prepare_kind_rules(rtype, obj, None)
        if rtype.storage_key == CRDS:
            obj["status"] = established_status(obj, now_rfc3339())
        admit_custom_resource(rtype, obj, None, None)
        if managed_fields is not None:
            meta["managedFields"] = managed_fields
        elif manager:
            meta.pop("managedFields", None)
            record_update(None, obj, manager, rtype.api_version, builtin=not rtype.custom)
        if dry_run:
            return Record((ns, name), obj, orjson.dumps(obj), self.storage.rv)
        record = self.storage.commit(coll, ADDED, obj, None)
        self._after_commit(rtype, record, False)
        return record

    # Update ----------------------------------------------------------------------------------

    def update(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        obj: Any,
        *,
        subresource: str | None = None,
        manager: str | None = None,
        managed_fields: list[dict[str, Any]] | None = None,
        require_rv: bool = True,
        dry_run: bool = False,
    ) -> Record:
        """PUT semantics (also the last step of every patch)."""
        meta = self._check_body(rtype, obj)
        ns = self._check_namespace(rtype, namespace, meta)
        body_name = meta.get("name")
        if body_name and body_name != name:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        coll = self.collection(rtype)
        cur = coll.get(ns, name)
        if cur is None:
            raise not_found(rtype, name)
        rv = meta.get("resourceVersion")
        if rv:
            if str(rv) != cur.obj["metadata"]["resourceVersion"]:
                raise conflict(rtype, name, _CONFLICT)
        elif require_rv and not rtype.allow_unconditional_update:
            raise invalid(
                rtype,
                name,
                [
                    (
                        "metadata.resourceVersion",
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        old = cur.obj
        old_meta = old["metadata"]
        _check_uid(rtype, name, meta.get("uid"), old_meta.get("uid"), put=require_rv)
        if subresource == "status":
            new = cur.copy_obj()
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            new_meta = new["metadata"]
            if "managedFields" in meta:
                new_meta["managedFields"] = meta["managedFields"]
        else:
            new = obj
            new_meta = meta
            for field in ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"):
                if field in old_meta:
                    new_meta[field] = old_meta[field]
                else:
                    new_meta.pop(field, None)
            if rtype.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            self._validate_meta(rtype, new_meta, name)
            if old_meta.get("deletionTimestamp"):
                added = set(new_meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
                if added:
                    raise invalid(
                        rtype,
                        name,
                        [
                            (
                                "metadata.finalizers",
                                "FieldValueForbidden",
                                "Forbidden: no new finalizers can be added if the object is being deleted, "
                                f"found new finalizers {sorted(added)!r}",
                            )
                        ],
                    )
            self._prepare_kind_rules(rtype, new, cur)
            if rtype.storage_key == CRDS:
                new["status"] = old.get("status")
        admit_custom_resource(rtype, new, old, subresource)
        if "generation" in old_meta:
            new_meta["generation"] = old_meta["generation"]
            if subresource in (None, "scale") and _spec_view(rtype, new) != _spec_view(rtype, old):
                new_meta["generation"] = old_meta["generation"] + 1
        else:
            new_meta.pop("generation", None)
        new_meta["resourceVersion"] = old_meta["resourceVersion"]
        if managed_fields is not None:
            new_meta["managedFields"] = managed_fields
        elif manager:
            record_update(
                old, new, manager, rtype.api_version, builtin=not rtype.custom, subresource=subresource
            )
        elif "managedFields" in old_meta:
            new_meta["managedFields"] = old_meta["managedFields"]
        else:
            new_meta.pop("managedFields", None)
        return self._commit_update(rtype, coll, cur, new, dry_run=dry_run)

    def _commit_update(
        self, rtype: ResourceType, coll: Collection, cur: Record, new: dict[str, Any], *, dry_run: bool
    ) -> Record:
        new_meta = new["metadata"]
        if new == cur.obj:
            return cur
        if dry_run:
            return Record(cur.key, new, orjson.dumps(new), cur.rv)
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers"):
            # The stored object is deleted, not overwritten: the DELETED event carries its last stored
            # state (finalizers included) at a new resourceVersion; the writer gets ``new`` back.
            record = self.storage.commit(coll, DELETED, cur.copy_obj(), cur)
            self._after_commit(rtype, record, True)
            new_meta["resourceVersion"] = str(record.rv)
            return Record(cur.key, new, orjson.dumps(new), record.rv)
        record = self.storage.commit(coll, MODIFIED, new, cur)
        self._after_commit(rtype, record, False)
        return record

    # Apply -----------------------------------------------------------------------------------

    def apply(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        applied: Any,
        *,
        manager: str,
        force: bool,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Record, bool]:
        """Server-side apply; returns the record and whether it was created (never through a
        subresource: an apply to ``/status`` of a missing object is 404, as on kube-apiserver)."""
        if not isinstance(applied, dict):
            raise bad_request("the body of an apply request must be an object")
        if subresource is not None and self.collection(rtype).get(namespace or "", name) is None:
            raise not_found(rtype, name)
        _check_apply_body(applied)
        meta = self._check_body(rtype, applied)
        if meta.get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        self._check_namespace(rtype, namespace, meta)
        coll = self.collection(rtype)
        cur = coll.get(namespace or "", name)
        builtin = not rtype.custom
        rv = meta.pop("resourceVersion", None)
        if rv and (cur is None or str(rv) != cur.obj["metadata"]["resourceVersion"]):
            raise conflict(rtype, name, _CONFLICT)
        try:
            merged = server_side_apply(
                cur.obj if cur else None,
                applied,
                manager,
                rtype.api_version,
                force=force,
                builtin=builtin,
                subresource=subresource,
            )
        except ApplyConflict as exc:
            n = len(exc.conflicts)
            lines = "\n".join(f'- conflict with "{m}": {f}' for m, f in exc.conflicts)
            raise StatusError(
                409,
                "Conflict",
                f"Apply failed with {n} conflict{'s' if n != 1 else ''}: " + lines.replace("\n", ", "),
                {
                    "name": name,
                    **({"group": rtype.group} if rtype.group else {}),
                    "kind": rtype.plural,
                    "causes": [
                        {"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": f}
                        for m, f in exc.conflicts
                    ],
                },
            ) from None
        managed = merged["metadata"].pop("managedFields", None) or []
        if cur is None:
            record = self.create(rtype, namespace, merged, managed_fields=managed, dry_run=dry_run)
            return record, True
        merged["metadata"]["resourceVersion"] = cur.obj["metadata"]["resourceVersion"]
        if subresource == "status":
            merged.setdefault("metadata", {})
        record = self.update(
            rtype,
            namespace,
            name,
            merged,
            subresource=subresource,
            managed_fields=managed,
            require_rv=False,
            dry_run=dry_run,
        )
        return record, False

    # Delete ----------------------------------------------------------------------------------

    def delete(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[Record, bool]:
        """Delete or start deleting; returns the record and whether it is gone."""
        coll = self.collection(rtype)
        cur = coll.get(namespace or "", name)
        if cur is None:
            raise not_found(rtype, name)
        meta = cur.obj["metadata"]
        if preconditions:
            uid = preconditions.get("uid")
            if uid and uid != meta.get("uid"):
                raise conflict(
                    rtype,
                    name,
                    f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta.get('uid')}",
                )
            rv = preconditions.get("resourceVersion")
            if rv and str(rv) != meta.get("resourceVersion"):
                raise conflict(
                    rtype,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {rv}, "
                    "ResourceVersion in object meta: "
                    f"{meta.get('resourceVersion')}",
                )
        if propagation not in (None, "", "Background", "Foreground", "Orphan"):
            raise invalid(
                rtype,
                name,
                [
                    (
                        "propagationPolicy",
                        "FieldValueNotSupported",
                        f'Unsupported value: "{propagation}": supported values: '
                        '"Foreground", "Background", "Orphan"',
                    )
                ],
            )
        finalizers = list(meta.get("finalizers") or ())
        if propagation == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif propagation == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        is_namespace = rtype.storage_key == NAMESPACES
        if finalizers or is_namespace:
            if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or ()):
                return cur, False
            new = cur.copy_obj()
            new_meta = new["metadata"]
            if not meta.get("deletionTimestamp") and new_meta.get("generation"):
                # kube-apiserver's BeforeDelete bumps the generation when it sets deletionTimestamp,
                # so controllers comparing observedGeneration see the deletion as a new generation.
                new_meta["generation"] += 1
            new_meta.setdefault("deletionTimestamp", now_rfc3339())
            new_meta.setdefault("deletionGracePeriodSeconds", 0)
            if finalizers:
                new_meta["finalizers"] = finalizers
            if is_namespace:
                new.setdefault("status", {})["phase"] = "Terminating"
            if dry_run:
                return cur, False
            record = self.storage.commit(coll, MODIFIED, new, cur)
            return record, False
        if dry_run:
            return cur, True
        final = cur.copy_obj()
        record = self.storage.commit(coll, DELETED, final, cur)
        self._after_commit(rtype, record, True)
        return record, True

    def finish_namespace(self, name: str) -> None:
        """Remove a terminating namespace once it is empty (the namespace controller's last step)."""
        coll = self.storage.collection(NAMESPACES)
        cur = coll.get("", name)
        if cur is None or not cur.obj["metadata"].get("deletionTimestamp"):
            return
        final = cur.copy_obj()
        if final["metadata"].get("finalizers"):
            return
        final.setdefault("spec", {})["finalizers"] = []
        self.storage.commit(coll, DELETED, final, cur)


def _check_apply_body(applied: dict[str, Any]) -> None:
    """What kube-apiserver requires of an apply body and not of others: its own ``apiVersion`` and
    ``kind`` (the URL does not supply them), and no ``managedFields`` (an object read back and
    applied as it came is refused, as on a cluster)."""
    api_version, kind = applied.get("apiVersion") or "", applied.get("kind") or ""
    if not api_version or not kind:
        group_version = api_version if "/" in str(api_version) else f"/{api_version}"
        raise bad_request(f"invalid object type: {group_version}, Kind={kind}")
    meta = applied.get("metadata")
    if isinstance(meta, dict) and meta.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")


def _check_uid(rtype: ResourceType, name: str, uid: Any, stored: Any, *, put: bool) -> None:
    """A body's ``metadata.uid`` names the object it was meant for: in a PUT it is a precondition
    (409 when the object of that name is another one, recreated since), in a patch an immutable
    field (422)."""
    if not uid or uid == stored:
        return
    if put:
        why = f"Precondition failed: UID in precondition: {uid}, UID in object meta: {stored}"
        raise StatusError(409, "Conflict", why, conflict(rtype, name, why).details)
    raise invalid(
        rtype, name, [("metadata.uid", "FieldValueInvalid", f'Invalid value: "{uid}": field is immutable')]
    )
