"""``TypedApi(client, Widget, "default")``: the dict :class:`~kube_runtime.client.api.Api` with
models in and out.

It wraps the dict Api (``raw``, still usable for anything not wrapped here) rather than changing
it: the dict path is untouched and pays nothing. Reads decode with the model
(:class:`~kube_runtime.resources.errors.InvalidObject` if the object does not fit); writes send
:func:`~kube_runtime.resources.model.to_dict`. In a watch a non-fitting object is an
``InvalidObject`` value in the stream, like the dict watch's other error values, and the stream
goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from kube_runtime.client.api import Api
from kube_runtime.client.client import Client
from kube_runtime.client.errors import ApiError
from kube_runtime.client.lines import WatchEvent
from kube_runtime.resources.errors import InvalidObject, decoder
from kube_runtime.resources.model import Resource, to_dict

__all__ = ["ObjectList", "TypedApi", "TypedWatchEvent"]

M = TypeVar("M", bound=Resource)


@dataclass(frozen=True, slots=True)
class ObjectList(Generic[M]):
    """One page of a list: ``items``, the list's ``resource_version`` and, when more pages remain,
    ``continue_token``."""

    items: list[M]
    resource_version: str | None
    continue_token: str | None


@dataclass(frozen=True, slots=True)
class TypedWatchEvent(Generic[M]):
    """A watch event (``ADDED``/``MODIFIED``/``DELETED``) with its object decoded."""

    type: str
    object: M


class TypedApi(Generic[M]):
    """Verbs for ``model``'s kind in ``namespace`` (``None``: all namespaces, or cluster-scoped).

    Each request verb takes ``request_timeout`` as :class:`~kube_runtime.client.api.Api`'s verbs do:
    the seconds the whole call may take (``None``: the client's ``ClientConfig.request_timeout``;
    ``math.inf``: no bound), past which it raises
    :class:`~kube_runtime.client.errors.RequestTimeout`."""

    __slots__ = ("decode", "model", "raw")

    def __init__(self, client: Client, model: type[M], namespace: str | None = None) -> None:
        self.model = model
        #: The dict Api underneath.
        self.raw = Api(client, model.api_resource, namespace)
        #: ``decode(dict) -> model`` (raises InvalidObject).
        self.decode = decoder(model)

    @property
    def namespace(self) -> str | None:
        return self.raw.namespace

    def __repr__(self) -> str:
        return f"TypedApi({self.model.__name__}, namespace={self.raw.namespace!r})"

    async def get(self, name: str, *, request_timeout: float | None = None) -> M:
        return self.decode(await self.raw.get(name, request_timeout=request_timeout))

    async def get_opt(self, name: str, *, request_timeout: float | None = None) -> M | None:
        try:
            return await self.get(name, request_timeout=request_timeout)
        except ApiError as exc:
            if exc.code == 404:
                return None
            raise

    async def list(
        self,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        request_timeout: float | None = None,
    ) -> ObjectList[M]:
        """One page (see :meth:`Api.list <kube_runtime.client.api.Api.list>`); raises
        InvalidObject if any item does not fit."""
        listing = await self.raw.list(
            label_selector=label_selector,
            field_selector=field_selector,
            limit=limit,
            continue_token=continue_token,
            request_timeout=request_timeout,
        )
        meta = listing.get("metadata") or {}
        items = [self.decode(item) for item in listing.get("items") or ()]
        return ObjectList(items, meta.get("resourceVersion"), meta.get("continue") or None)

    @asynccontextmanager
    async def watch(
        self, **options: Any
    ) -> AsyncIterator[AsyncIterator[TypedWatchEvent[M] | InvalidObject | Exception]]:
        """``async with api.watch(resource_version=...) as events: async for item in events``.

        Takes :meth:`Api.watch <kube_runtime.client.api.Api.watch>`'s options and yields its error
        values unchanged; each ``ADDED``/``MODIFIED``/``DELETED`` object decoded, or an
        ``InvalidObject`` in its place. Bookmarks are not yielded (they carry no object): track
        resume versions with the dict watch, or use :func:`~kube_runtime.resources.store.typed_watcher`.
        """
        async with self.raw.watch(**options) as stream:

            async def events() -> AsyncIterator[TypedWatchEvent[M] | InvalidObject | Exception]:
                async for item in stream:
                    if type(item) is not WatchEvent:
                        yield item  # type: ignore[misc]  # an error value
                        continue
                    if item.type == "BOOKMARK":
                        continue
                    try:
                        yield TypedWatchEvent(item.type, self.decode(item.object))
                    except InvalidObject as exc:
                        yield exc

            yield events()

    async def create(
        self, obj: M, *, field_manager: str | None = None, request_timeout: float | None = None
    ) -> M:
        return self.decode(
            await self.raw.create(to_dict(obj), field_manager=field_manager, request_timeout=request_timeout)
        )

    async def replace(
        self, obj: M, *, field_manager: str | None = None, request_timeout: float | None = None
    ) -> M:
        """PUT ``obj`` (its ``metadata.resourceVersion`` guards against lost updates)."""
        return self.decode(
            await self.raw.replace(
                _named(obj), to_dict(obj), field_manager=field_manager, request_timeout=request_timeout
            )
        )

    async def apply(
        self, obj: M, *, field_manager: str, force: bool = False, request_timeout: float | None = None
    ) -> M:
        """Server-side apply ``obj``: ``field_manager`` owns every field ``obj`` sets (``None``
        fields are left out, so they are not claimed). Pitfall: a model default (``replicas: int =
        1``) is a set field and is claimed too."""
        return self.decode(
            await self.raw.patch(
                _named(obj),
                to_dict(obj),
                patch_type="apply",
                field_manager=field_manager,
                force=force,
                request_timeout=request_timeout,
            )
        )

    async def patch(
        self,
        name: str,
        patch: Any,
        *,
        patch_type: Literal["merge", "json", "strategic", "apply"] = "merge",
        field_manager: str | None = None,
        force: bool = False,
        request_timeout: float | None = None,
    ) -> M:
        """A raw patch (a dict or JSON patch list) with the object decoded."""
        return self.decode(
            await self.raw.patch(
                name,
                patch,
                patch_type=patch_type,
                field_manager=field_manager,
                force=force,
                request_timeout=request_timeout,
            )
        )

    async def patch_status(
        self,
        name: str,
        patch: Any,
        *,
        patch_type: Literal["merge", "json", "strategic", "apply"] = "merge",
        field_manager: str | None = None,
        force: bool = False,
        request_timeout: float | None = None,
    ) -> M:
        return self.decode(
            await self.raw.patch_status(
                name,
                patch,
                patch_type=patch_type,
                field_manager=field_manager,
                force=force,
                request_timeout=request_timeout,
            )
        )

    async def delete(self, name: str, **options: Any) -> M | None:
        """Delete; the object while finalizers hold it, else ``None`` (the server's Status).
        ``options`` are :meth:`Api.delete <kube_runtime.client.api.Api.delete>`'s (``request_timeout``
        included)."""
        result = await self.raw.delete(name, **options)
        return self.decode(result) if result.get("kind") == self.model.api_resource.kind else None


def _named(obj: Resource) -> str:
    if not obj.metadata.name:
        raise ValueError(f"{type(obj).__name__} needs metadata.name")
    return obj.metadata.name
