"""The registry of served resources and the discovery documents built from it.

Serves the classic discovery documents (``/api``, ``/api/v1``, ``/apis``, ``/apis/G``,
``/apis/G/V``). Clients that ask for aggregated discovery (``apidiscovery.k8s.io``) get the classic
document with a plain ``application/json`` content type, which client-go and kubectl accept as
"aggregated discovery not supported" and fall back from.
"""

from __future__ import annotations

import re
from typing import Any

from kube_runtime.testing.apiserver.resources import BUILTIN_TYPES, ResourceType

__all__ = ["Registry", "version_priority"]

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key giving Kubernetes version priority (GA > beta > alpha, higher numbers first)."""
    m = _VERSION_RE.match(version)
    if m is None:
        return (3, 0, 0, version)
    major = int(m.group(1))
    stage = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    minor = int(m.group(3) or 0)
    return (stage, -major, -minor, version)


class Registry:
    """Which (group, version, plural) are served, and by which :class:`ResourceType`."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}  # CRD name -> served types
        for rtype in BUILTIN_TYPES:
            self.add(rtype)

    def add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._types.get((group, version, plural))

    def by_storage_key(self, key: tuple[str, str]) -> ResourceType | None:
        """The preferred served version of the resource stored under ``key``."""
        found = [t for t in self._types.values() if t.storage_key == key]
        if not found:
            return None
        return min(found, key=lambda t: version_priority(t.version))

    def find_kind(self, group: str, kind: str) -> ResourceType | None:
        found = [t for t in self._types.values() if t.group == group and t.kind == kind]
        return min(found, key=lambda t: version_priority(t.version)) if found else None

    def set_crd(self, crd_name: str, types: list[ResourceType]) -> None:
        """Serve ``types`` for the CRD named ``crd_name`` (replacing what it served before)."""
        self.remove_crd(crd_name)
        self._crd_types[crd_name] = types
        for t in types:
            self.add(t)

    def crd_types(self, crd_name: str) -> list[ResourceType]:
        """What the CRD named ``crd_name`` serves now (empty when it serves nothing)."""
        return list(self._crd_types.get(crd_name, ()))

    def remove_crd(self, crd_name: str) -> None:
        for t in self._crd_types.pop(crd_name, []):
            self._types.pop((t.group, t.version, t.plural), None)

    def group_versions(self) -> dict[str, list[str]]:
        """Non-core groups with their versions, highest priority first."""
        out: dict[str, set[str]] = {}
        for group, version, _ in self._types:
            if group:
                out.setdefault(group, set()).add(version)
        return {g: sorted(vs, key=version_priority) for g, vs in sorted(out.items())}

    # Documents -------------------------------------------------------------------------------

    def core_versions(self, server_address: str) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        }

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}

    def group_list(self) -> dict[str, Any]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [self._group_doc(g, vs) for g, vs in self.group_versions().items()],
        }

    def group(self, group: str) -> dict[str, Any] | None:
        versions = self.group_versions().get(group)
        if not versions:
            return None
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(group, versions)}

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        types = sorted(
            (t for (g, v, _), t in self._types.items() if g == group and v == version), key=lambda t: t.plural
        )
        if not types:
            return None
        resources: list[dict[str, Any]] = []
        for t in types:
            entry: dict[str, Any] = {
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": list(t.verbs),
            }
            if t.short_names:
                entry["shortNames"] = list(t.short_names)
            if t.categories:
                entry["categories"] = list(t.categories)
            resources.append(entry)
            if t.has_status:
                resources.append(
                    {
                        "name": f"{t.plural}/status",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": t.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if t.scale is not None:
                resources.append(
                    {
                        "name": f"{t.plural}/scale",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    # OpenAPI ----------------------------------------------------------------------------------
    #
    # kubectl apply/create validate through the server ("fieldValidation=Strict") when the
    # OpenAPI v3 document of the group-version shows a PATCH operation for the kind that accepts
    # that query parameter; without a document they refuse to run without --validate=false.
    # The documents served here contain just that (paths with GVK extensions, no schemas).

    def openapi_v3_root(self) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        gvs = {(g, v) for g, v, _ in self._types}
        for group, version in sorted(gvs):
            rel = f"api/{version}" if not group else f"apis/{group}/{version}"
            paths[rel] = {"serverRelativeURL": f"/openapi/v3/{rel}?hash={self._gv_hash(group, version)}"}
        return {"paths": paths}

    def _gv_hash(self, group: str, version: str) -> str:
        import hashlib

        names = sorted(
            f"{t.plural}:{t.kind}:{t.namespaced}"
            for (g, v, _), t in self._types.items()
            if (g, v) == (group, version)
        )
        return hashlib.sha256("|".join(names).encode()).hexdigest()[:32].upper()

    def openapi_v3_group_version(self, group: str, version: str) -> dict[str, Any] | None:
        types = [t for (g, v, _), t in self._types.items() if (g, v) == (group, version)]
        if not types:
            return None
        base = f"/apis/{group}/{version}" if group else f"/api/{version}"
        params = [
            {"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
            for n in ("dryRun", "fieldManager", "fieldValidation", "force")
        ]
        paths: dict[str, Any] = {}
        for t in types:
            gvk = {"group": group, "version": version, "kind": t.kind}
            item = (
                f"{base}/namespaces/{{namespace}}/{t.plural}/{{name}}"
                if t.namespaced
                else f"{base}/{t.plural}/{{name}}"
            )
            collection = item.rsplit("/", 1)[0]
            op = {
                "x-kubernetes-group-version-kind": gvk,
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
            }
            paths[collection] = {
                "post": {**op, "x-kubernetes-action": "post"},
                "get": {**op, "x-kubernetes-action": "list"},
            }
            paths[item] = {
                "get": {**op, "x-kubernetes-action": "get"},
                "put": {**op, "x-kubernetes-action": "put"},
                "patch": {
                    **op,
                    "x-kubernetes-action": "patch",
                    "requestBody": {
                        "content": {
                            ct: {"schema": {"type": "object"}}
                            for ct in (
                                "application/apply-patch+yaml",
                                "application/json-patch+json",
                                "application/merge-patch+json",
                                *(() if t.custom else ("application/strategic-merge-patch+json",)),
                            )
                        }
                    },
                },
                "delete": {**op, "x-kubernetes-action": "delete"},
            }
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths,
            "components": {"schemas": {}},
        }
