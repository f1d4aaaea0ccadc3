"""Typed verbs for one resource kind, in one namespace or across all: kube-rs's ``Api<K>``.

Objects are plain dicts. Request/response verbs raise :class:`ApiError` (non-2xx),
:class:`TransportError` (no answer; :class:`RequestTimeout`, one of them, when the call missed its
overall deadline) or :class:`AuthenticationError`. Each takes ``request_timeout``, the seconds the
whole call may take (``None``: the client's ``ClientConfig.request_timeout``, 90 s by default;
``math.inf``: no bound); watches have no such deadline, only their ``idle_timeout``. Watches are async context
managers: entering opens the stream (and raises like a request if it cannot start); inside, the
stream yields :class:`WatchEvent`, :class:`ApiError` (a server ``ERROR`` event) and
:class:`WatchDecodeError` (a bad line) as values, and raises :class:`TransportError` if the
connection breaks. The caller decides what to do with errors; nothing here retries a watch.

Metadata verbs ask for ``PartialObjectMetadata`` (``Accept: application/json;as=...;g=meta.k8s.io;
v=v1, application/json``). A server that ignores the request and answers with full objects is
handled: the objects are cut down to ``apiVersion``/``kind``/``metadata`` so callers always get the
same shape (``list_metadata_raw`` does it on the bytes, without decoding the objects).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import httpx

from kube_runtime.client.client import Client, Params, ResponseStream
from kube_runtime.client.errors import ApiError
from kube_runtime.client.head import RawList
from kube_runtime.client.lines import LineSplitter, WatchEvent, WatchItem, decode_event
from kube_runtime.client.resource import ApiResource

__all__ = ["Api", "PatchType", "WatchEventStream"]

PatchType = Literal["merge", "json", "strategic", "apply"]

_PATCH_CONTENT_TYPES: dict[str, str] = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}
_META_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
_META_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"


class WatchEventStream:
    """The items of one open watch: ``async for item in stream``.

    Each network chunk is split into lines at once, but each line is decoded only when its item is
    asked for, so at most one decoded-but-unconsumed event exists at a time (decoding a whole chunk
    ahead keeps dozens of fresh objects alive and makes the cyclic GC trace them).
    """

    __slots__ = ("_body", "_lines", "_metadata_only", "_position", "_splitter")

    def __init__(self, body: ResponseStream, *, metadata_only: bool = False) -> None:
        self._body = body
        self._splitter = LineSplitter()
        self._lines: list[bytes] = []
        self._position = 0
        content_type = body.headers.get("content-type", "")
        self._metadata_only = metadata_only and "as=PartialObjectMetadata" not in content_type

    def __aiter__(self) -> WatchEventStream:
        return self

    @property
    def idle_timeout(self) -> float | None:
        """Seconds a read may wait for bytes before the iteration ends (``None``: forever)."""
        return self._body.idle_timeout

    @property
    def idle_timed_out(self) -> bool:
        """Whether the iteration ended because no bytes arrived within ``idle_timeout``."""
        return self._body.idle_timed_out

    @property
    def url(self) -> str:
        """The watch request's path (no query string)."""
        return self._body.url

    def set_idle_timeout(self, seconds: float) -> None:
        """Change ``idle_timeout`` for the reads to come (see :meth:`ResponseStream.set_idle_timeout`)."""
        self._body.set_idle_timeout(seconds)

    async def __anext__(self) -> WatchItem:
        while self._position >= len(self._lines):
            try:
                chunk = await self._body.__anext__()
            except StopAsyncIteration:
                rest = self._splitter.finish()
                if rest is None:
                    raise
                self._lines = [rest]
            else:
                self._lines = self._splitter.feed(chunk)
            self._position = 0
        item = decode_event(self._lines[self._position])
        self._position += 1
        if self._metadata_only and type(item) is WatchEvent:
            item.object = _partial_metadata(item.object)
        return item


class Api:
    """Verbs for ``resource`` in ``namespace`` (``None``: all namespaces, or a cluster-scoped kind)."""

    __slots__ = ("client", "namespace", "resource")

    def __init__(self, client: Client, resource: ApiResource, namespace: str | None = None) -> None:
        self.client = client
        self.resource = resource
        self.namespace = namespace if resource.namespaced else None

    @classmethod
    def all(cls, client: Client, resource: ApiResource) -> Api:
        """Across all namespaces (or a cluster-scoped kind)."""
        return cls(client, resource, None)

    @classmethod
    def default_namespaced(cls, client: Client, resource: ApiResource) -> Api:
        """In the client's default namespace (the kubeconfig context's or the pod's)."""
        return cls(client, resource, client.default_namespace)

    def __repr__(self) -> str:
        return f"Api({self.resource.kind}, namespace={self.namespace!r})"

    # -- paths ----------------------------------------------------------------------------------------

    def _collection(self, namespace: str | None = None) -> str:
        return self.resource.collection_path(namespace or self.namespace)

    def _object(self, name: str, subresource: str | None = None, namespace: str | None = None) -> str:
        return self.resource.object_path(name, namespace or self.namespace, subresource)

    def _namespace_for(self, obj: dict[str, Any]) -> str | None:
        """Where a write of ``obj`` goes: this Api's namespace, else the object's (an all-namespaces
        Api). The Api's wins, as in kube-rs: a body naming another namespace gets the server's 400
        instead of landing in that namespace."""
        return self.namespace or _namespace_of(obj)

    # -- reads ----------------------------------------------------------------------------------------

    async def get(self, name: str, *, request_timeout: float | None = None) -> dict[str, Any]:
        """The object; raises :class:`ApiError` 404 if absent."""
        return await self.client.request("get", "GET", self._object(name), request_timeout=request_timeout)

    async def get_opt(self, name: str, *, request_timeout: float | None = None) -> dict[str, Any] | None:
        """The object, or ``None`` if absent."""
        try:
            return await self.get(name, request_timeout=request_timeout)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def get_status(self, name: str, *, request_timeout: float | None = None) -> dict[str, Any]:
        """The object through its ``status`` subresource."""
        return await self.client.request(
            "get_status", "GET", self._object(name, "status"), request_timeout=request_timeout
        )

    async def list(
        self,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        shard_selector: str | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """One page of the list: the raw List with ``items``, ``metadata.resourceVersion`` and, when
        more pages remain, ``metadata.continue`` (pass it back as ``continue_token``).
        ``shard_selector`` is KEP-5866's ``shardSelector`` (see :mod:`kube_runtime.watcher.shards`)."""
        params = _list_params(
            label_selector, field_selector, limit, continue_token, resource_version, resource_version_match
        )
        params = {**params, "shardSelector": shard_selector}
        return await self.client.request(
            "list", "GET", self._collection(), params=params, request_timeout=request_timeout
        )

    async def list_raw(
        self,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        shard_selector: str | None = None,
        request_timeout: float | None = None,
    ) -> RawList:
        """Like :meth:`list`, but the items are left as raw JSON slices (:class:`RawList`;
        ``RawList.objects()`` gives each as a :class:`~kube_runtime.client.head.LazyObject` with its
        ``kind`` and ``apiVersion``). The watcher lists through it. Raises
        :class:`~kube_runtime.client.errors.ObjectDecodeError` for a body that is not a List."""
        params = _list_params(
            label_selector, field_selector, limit, continue_token, resource_version, resource_version_match
        )
        params = {**params, "shardSelector": shard_selector}
        response = await self.client.send(
            "list", "GET", self._collection(), params=params, request_timeout=request_timeout
        )
        return RawList.decode(response.content)

    async def list_metadata(
        self,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        shard_selector: str | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Like :meth:`list`, but a ``PartialObjectMetadataList`` (items carry metadata only)."""
        params = _list_params(
            label_selector, field_selector, limit, continue_token, resource_version, resource_version_match
        )
        response = await self._list_metadata_response(params, shard_selector, request_timeout)
        listing = self.client.decode(response, "list_metadata")
        if not _is_partial(response):
            listing = _partial_metadata_list(listing)
        return listing

    async def list_metadata_raw(
        self,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        resource_version: str | None = None,
        resource_version_match: str | None = None,
        shard_selector: str | None = None,
        request_timeout: float | None = None,
    ) -> RawList:
        """:meth:`list_metadata` with the items left as raw JSON slices, as :meth:`list_raw` leaves
        them; ``metadata_watcher`` lists through it.

        Guarantee: ``[o.object for o in page.objects()]`` equals the ``items`` of
        :meth:`list_metadata` for the same answer, ``kind``/``apiVersion`` included
        (``PartialObjectMetadata``/``meta.k8s.io/v1``: the server's, or written into the bytes of
        items without a ``kind``). A server that ignored the metadata-only request and sent full
        objects is cut down on bytes (:meth:`RawList.partial_metadata`), never decoding the items.
        Raises :class:`~kube_runtime.client.errors.ObjectDecodeError` for a body that is not a
        List; a malformed item raises it from ``page.objects()``, as with :meth:`list_raw`."""
        params = _list_params(
            label_selector, field_selector, limit, continue_token, resource_version, resource_version_match
        )
        response = await self._list_metadata_response(params, shard_selector, request_timeout)
        listing = RawList.decode(response.content)
        return listing if _is_partial(response) else listing.partial_metadata()

    async def _list_metadata_response(
        self,
        params: Mapping[str, str | int | bool | None],
        shard_selector: str | None,
        request_timeout: float | None,
    ) -> httpx.Response:
        """The answer to a metadata-only list (``PartialObjectMetadataList`` asked for)."""
        return await self.client.send(
            "list_metadata",
            "GET",
            self._collection(),
            params={**params, "shardSelector": shard_selector},
            accept=_META_LIST_ACCEPT,
            request_timeout=request_timeout,
        )

    # -- watches --------------------------------------------------------------------------------------

    def watch(
        self,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = 290,
        allow_bookmarks: bool = True,
        send_initial_events: bool = False,
        resource_version_match: str | None = None,
        idle_timeout: float | None = None,
        shard_selector: str | None = None,
    ) -> AbstractAsyncContextManager[WatchEventStream]:
        """``async with api.watch(...) as events: async for item in events: ...``

        ``idle_timeout``: seconds without a byte after which the iteration ends as if the server had
        closed the watch (``events.idle_timed_out`` is then true); ``None`` waits forever. The clock
        only runs while a read waits (a slow consumer is not cut off). Over HTTP/1.1 a watchdog
        timer per watch enforces it (one clock read per chunk); otherwise httpx's read timeout does.
        """
        params = _watch_params(
            resource_version,
            label_selector,
            field_selector,
            timeout_seconds,
            allow_bookmarks,
            send_initial_events,
            resource_version_match,
        )
        params = {**params, "shardSelector": shard_selector}
        return self._watch("watch", params, accept=None, metadata_only=False, idle_timeout=idle_timeout)

    def watch_metadata(
        self,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = 290,
        allow_bookmarks: bool = True,
        send_initial_events: bool = False,
        resource_version_match: str | None = None,
        idle_timeout: float | None = None,
        shard_selector: str | None = None,
    ) -> AbstractAsyncContextManager[WatchEventStream]:
        """Like :meth:`watch`, but event objects are ``PartialObjectMetadata``."""
        params = _watch_params(
            resource_version,
            label_selector,
            field_selector,
            timeout_seconds,
            allow_bookmarks,
            send_initial_events,
            resource_version_match,
        )
        params = {**params, "shardSelector": shard_selector}
        return self._watch(
            "watch_metadata", params, accept=_META_ACCEPT, metadata_only=True, idle_timeout=idle_timeout
        )

    @asynccontextmanager
    async def _watch(
        self,
        verb: str,
        params: Params,
        *,
        accept: str | None,
        metadata_only: bool,
        idle_timeout: float | None,
    ) -> AsyncIterator[WatchEventStream]:
        async with self.client.stream(
            verb, self._collection(), params=params, accept=accept, idle_timeout=idle_timeout
        ) as body:
            yield WatchEventStream(body, metadata_only=metadata_only)

    # -- writes ---------------------------------------------------------------------------------------

    async def create(
        self, obj: dict[str, Any], *, field_manager: str | None = None, request_timeout: float | None = None
    ) -> dict[str, Any]:
        """Create ``obj`` (in this Api's namespace, else the object's own ``metadata.namespace``;
        an object naming another namespace than the Api's is refused by the server with 400)."""
        params = {"fieldManager": field_manager} if field_manager else None
        path = self._collection(self._namespace_for(obj))
        return await self.client.request(
            "create", "POST", path, params=params, body=obj, request_timeout=request_timeout
        )

    async def replace(
        self,
        name: str,
        obj: dict[str, Any],
        *,
        field_manager: str | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """PUT the whole object; include ``metadata.resourceVersion`` for optimistic concurrency."""
        params = {"fieldManager": field_manager} if field_manager else None
        path = self._object(name, namespace=self._namespace_for(obj))
        return await self.client.request(
            "replace", "PUT", path, params=params, body=obj, request_timeout=request_timeout
        )

    async def replace_status(
        self,
        name: str,
        obj: dict[str, Any],
        *,
        field_manager: str | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """PUT through the ``status`` subresource (only ``status`` changes are kept)."""
        params = {"fieldManager": field_manager} if field_manager else None
        return await self.client.request(
            "replace_status",
            "PUT",
            self._object(name, "status", self._namespace_for(obj)),
            params=params,
            body=obj,
            request_timeout=request_timeout,
        )

    async def patch(
        self,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "merge",
        field_manager: str | None = None,
        force: bool = False,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Patch the object. ``apply`` is server-side apply and needs ``field_manager``; ``force``
        takes ownership of conflicting fields (apply only)."""
        return await self._patch(
            "patch", self._object(name), patch, patch_type, field_manager, force, request_timeout
        )

    async def patch_status(
        self,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = "merge",
        field_manager: str | None = None,
        force: bool = False,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Patch the ``status`` subresource (same options as :meth:`patch`)."""
        return await self._patch(
            "patch_status",
            self._object(name, "status"),
            patch,
            patch_type,
            field_manager,
            force,
            request_timeout,
        )

    async def _patch(
        self,
        verb: str,
        path: str,
        patch: Any,
        patch_type: str,
        field_manager: str | None,
        force: bool,
        request_timeout: float | None,
    ) -> dict[str, Any]:
        content_type = _PATCH_CONTENT_TYPES.get(patch_type)
        if content_type is None:
            raise ValueError(f"unknown patch_type {patch_type!r}")
        if patch_type == "apply" and not field_manager:
            raise ValueError("server-side apply needs a field_manager")
        if force and patch_type != "apply":
            raise ValueError("force only applies to server-side apply")
        params: dict[str, str | bool | None] = {"fieldManager": field_manager}
        if force:
            params["force"] = True
        return await self.client.request(
            verb,
            "PATCH",
            path,
            params=params,
            body=patch,
            content_type=content_type,
            request_timeout=request_timeout,
        )

    async def delete(
        self,
        name: str,
        *,
        propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None,
        preconditions: dict[str, str] | None = None,
        grace_period_seconds: int | None = None,
        request_timeout: float | None = None,
    ) -> dict[str, Any]:
        """Delete the object. Returns the object while finalizers hold it (it now carries
        ``deletionTimestamp``), else the server's ``Status``. ``preconditions`` takes ``uid`` and/or
        ``resourceVersion``; a mismatch is :class:`ApiError` 409."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if preconditions:
            options["preconditions"] = preconditions
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        return await self.client.request(
            "delete", "DELETE", self._object(name), body=options, request_timeout=request_timeout
        )


def _namespace_of(obj: dict[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    namespace = metadata.get("namespace") if isinstance(metadata, dict) else None
    return namespace if isinstance(namespace, str) and namespace else None


def _list_params(
    label_selector: str | None,
    field_selector: str | None,
    limit: int | None,
    continue_token: str | None,
    resource_version: str | None,
    resource_version_match: str | None,
) -> Params:
    return {
        "labelSelector": label_selector,
        "fieldSelector": field_selector,
        "limit": limit,
        "continue": continue_token,
        "resourceVersion": resource_version,
        "resourceVersionMatch": resource_version_match,
    }


def _watch_params(
    resource_version: str | None,
    label_selector: str | None,
    field_selector: str | None,
    timeout_seconds: int | None,
    allow_bookmarks: bool,
    send_initial_events: bool,
    resource_version_match: str | None,
) -> Params:
    return {
        "watch": True,
        "resourceVersion": resource_version,
        "labelSelector": label_selector,
        "fieldSelector": field_selector,
        "timeoutSeconds": timeout_seconds,
        "allowWatchBookmarks": True if allow_bookmarks else None,
        "sendInitialEvents": True if send_initial_events else None,
        "resourceVersionMatch": resource_version_match,
    }


def _is_partial(response: httpx.Response) -> bool:
    return "as=PartialObjectMetadata" in response.headers.get("content-type", "")


def _partial_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "PartialObjectMetadata":
        return obj
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": obj.get("metadata") or {},
    }


def _partial_metadata_list(listing: dict[str, Any]) -> dict[str, Any]:
    if listing.get("kind") == "PartialObjectMetadataList":
        return listing
    items = [_partial_metadata(item) for item in listing.get("items") or ()]
    return {
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadataList",
        "metadata": listing.get("metadata") or {},
        "items": items,
    }
