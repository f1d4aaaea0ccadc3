"""Finding the :class:`ApiResource` of a kind the code does not know in advance (custom resources).

:func:`discover` reads the group-version's ``APIResourceList`` (``/api/v1`` for the core group,
``/apis/GROUP/VERSION`` otherwise) and picks the top-level resource (not a subresource such as
``pods/status``) whose ``kind`` matches. With ``version=""``, the group's preferred version is
looked up first (``/api`` or ``/apis/GROUP``).

Results are cached per client and group-version for the client's lifetime: kinds rarely change
under a running controller. A CRD installed after the first lookup of its group-version is found by
calling :func:`invalidate` (or passing ``refresh=True``). Failed lookups are not cached.
"""

from __future__ import annotations

import weakref
from typing import Any

from kube_runtime.client.client import Client
from kube_runtime.client.errors import KubeError
from kube_runtime.client.resource import ApiResource

__all__ = ["KindNotFound", "discover", "invalidate"]


class KindNotFound(KubeError, LookupError):
    """The group-version is served but has no resource of that kind."""


_cache: weakref.WeakKeyDictionary[Client, dict[tuple[str, str], list[dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


async def discover(
    client: Client, group: str, version: str, kind: str, *, refresh: bool = False
) -> ApiResource:
    """The resource for ``kind`` in ``group``/``version``. Raises :class:`ApiError` (404 when the
    group-version is not served) or :class:`KindNotFound`."""
    if not version:
        version = await _preferred_version(client, group)
    per_client = _cache.setdefault(client, {})
    resources = None if refresh else per_client.get((group, version))
    if resources is None:
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        listing = await client.request("discovery", "GET", path)
        resources = [r for r in listing.get("resources") or () if isinstance(r, dict)]
        per_client[(group, version)] = resources
    for entry in resources:
        name = str(entry.get("name") or "")
        if entry.get("kind") == kind and name and "/" not in name:
            return ApiResource(group, version, kind, name, bool(entry.get("namespaced")))
    raise KindNotFound(f"no resource of kind {kind!r} in {group or 'core'}/{version}")


def invalidate(client: Client) -> None:
    """Forget everything discovered through ``client``."""
    _cache.pop(client, None)


async def _preferred_version(client: Client, group: str) -> str:
    if not group:
        versions = (await client.request("discovery", "GET", "/api")).get("versions") or []
        if not versions:
            raise KindNotFound("the server lists no core API versions")
        return str(versions[0])
    info = await client.request("discovery", "GET", f"/apis/{group}")
    preferred = info.get("preferredVersion") or {}
    version = preferred.get("version") if isinstance(preferred, dict) else None
    if not version:
        listed = info.get("versions") or []
        version = listed[0].get("version") if listed and isinstance(listed[0], dict) else None
    if not version:
        raise KindNotFound(f"API group {group!r} lists no versions")
    return str(version)
