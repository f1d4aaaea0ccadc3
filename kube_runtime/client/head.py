"""Decoding only what the runtime reads: object heads, lazily decoded objects, raw list pages.

The watcher, the store, triggers and predicates need an object's identity and a few metadata
fields, never its spec or status. :class:`ObjectHead` is that part, decoded by msgspec straight
from the JSON bytes (every other field is skipped without building a Python value), and
:class:`LazyObject` pairs it with the bytes themselves: ``raw`` is what a compact store keeps,
``meta`` what the runtime reads, and ``object`` (the whole decoded dict) is built by orjson only
when something asks for it, once.

:class:`RawList` splits a list response into the raw bytes of each item without decoding the items;
:meth:`RawList.objects` turns them into :class:`LazyObject` values, with the ``kind`` and
``apiVersion`` that list items lack written into their bytes. :meth:`RawList.partial_metadata` cuts
a full List down to a ``PartialObjectMetadataList`` without decoding the items whole (for a server
that ignored a metadata-only request).

Errors: bytes that are not JSON, not an object, or whose metadata has the wrong shape raise
:class:`~kube_runtime.client.errors.ObjectDecodeError` from :meth:`LazyObject.from_raw` and
:meth:`RawList.decode`. msgspec checks the syntax of the fields it skips but not the range of their
numbers, so bytes with a number beyond a double's range (``1e400``) get a head and fail only when
``object`` decodes them: that also raises ``ObjectDecodeError``.
"""

from __future__ import annotations

import builtins
from typing import Any, Final

import msgspec
import orjson

from kube_runtime.client.errors import ObjectDecodeError

__all__ = ["HeadMeta", "LazyObject", "ObjectHead", "RawList", "decode_head"]


class HeadMeta(msgspec.Struct, frozen=True):
    """The ``metadata`` fields the runtime reads; the others are skipped while decoding.

    Absent fields are ``None``. A field of the wrong JSON type (a ``generation`` that is a string,
    ``labels`` that are not a string map) makes the whole head undecodable.
    """

    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resourceVersion: str | None = None
    generation: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    ownerReferences: list[dict[str, Any]] | None = None
    deletionTimestamp: str | None = None


_NO_META: Final = HeadMeta()


class ObjectHead(msgspec.Struct, frozen=True):
    """An object's ``kind``, ``apiVersion`` and :class:`HeadMeta` (empty when it has no metadata)."""

    kind: str | None = None
    apiVersion: str | None = None
    metadata: HeadMeta = _NO_META


_head_decoder: Final = msgspec.json.Decoder(ObjectHead)
_orjson_loads: Final = orjson.loads
_JSONDecodeError: Final = orjson.JSONDecodeError
_MsgspecError: Final = msgspec.MsgspecError


def decode_head(raw: bytes | memoryview) -> ObjectHead:
    """The head of one object's JSON; raises ``ObjectDecodeError`` for anything else."""
    try:
        return _head_decoder.decode(raw)
    except _MsgspecError as exc:
        raise ObjectDecodeError(f"object has no decodable metadata ({exc})", bytes(raw)) from None


class LazyObject:
    """One object as its JSON bytes and its decoded head; the full dict on demand.

    Built from bytes (:meth:`from_raw`, the watch and list decoders) or from a decoded dict
    (:meth:`from_object`, for objects a test or a ``modify`` step made); whichever side is missing
    is computed on first access and cached.

    Pitfall: ``object`` is decoded once and shared by everyone who reads it (the event, the stream
    helpers, a dict store): treat it as read-only. Mutating it changes no ``raw`` or ``meta`` already
    computed, so a compact store keeps the bytes as they arrived. ``object`` raises
    ``ObjectDecodeError`` for bytes orjson rejects (see the module docs).
    """

    __slots__ = ("_meta", "_object", "_raw")

    def __init__(self, raw: bytes | None, meta: ObjectHead | None, obj: dict[str, Any] | None = None) -> None:
        if raw is None and obj is None:
            raise ValueError("a LazyObject needs its bytes or its decoded object")
        self._raw = raw
        self._meta = meta
        self._object = obj

    @classmethod
    def from_raw(cls, raw: bytes) -> LazyObject:
        """The object ``raw`` encodes (its head decoded now); raises ``ObjectDecodeError``."""
        return cls(raw, decode_head(raw))

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> LazyObject:
        """A decoded object (its bytes and head computed when first asked for)."""
        return cls(None, None, obj)

    @property
    def raw(self) -> bytes:
        """The object's JSON bytes (orjson's encoding for an object built from a dict)."""
        raw = self._raw
        if raw is None:
            # orjson returns its whole over-allocated buffer; a copy is sized to the JSON.
            raw = self._raw = memoryview(orjson.dumps(self._object)).tobytes()
        return raw

    @property
    def meta(self) -> ObjectHead:
        """The decoded head (from the bytes when known, else from the dict); raises
        ``ObjectDecodeError`` if the metadata has the wrong shape."""
        meta = self._meta
        if meta is None and self._raw is not None:
            meta = self._meta = decode_head(self._raw)
        elif meta is None:
            try:
                meta = msgspec.convert(self._object, ObjectHead)
            except _MsgspecError as exc:
                raise ObjectDecodeError(f"object metadata has the wrong shape ({exc})", None) from None
            self._meta = meta
        return meta

    @property
    def object(self) -> dict[str, Any]:
        """The whole object, decoded on first access and cached (shared: read-only)."""
        obj = self._object
        if obj is None:
            raw = self._raw
            assert raw is not None  # one of the two is always set
            try:
                obj = _orjson_loads(raw)
            except _JSONDecodeError as exc:
                raise ObjectDecodeError(f"object is not decodable JSON ({exc})", raw) from None
            if type(obj) is not dict:
                raise ObjectDecodeError("object is not a JSON object", raw)
            self._object = obj
        return obj

    @property
    def decoded(self) -> bool:
        """Whether ``object`` has been built (or was given)."""
        return self._object is not None

    def __eq__(self, other: builtins.object) -> bool:
        if not isinstance(other, LazyObject):
            return NotImplemented
        if self._raw is not None and self._raw == other._raw:
            return True
        return self.object == other.object

    __hash__ = None  # type: ignore[assignment]  # equal by content, which may be a mutable dict

    def __repr__(self) -> str:
        meta = self._meta
        name = meta.metadata.name if meta is not None else "?"
        return f"LazyObject({name!r}, {'decoded' if self._object is not None else 'raw'})"


class _ListMeta(msgspec.Struct, frozen=True):
    resourceVersion: str | None = None
    continue_: str | None = msgspec.field(name="continue", default=None)


class RawList(msgspec.Struct, frozen=True):
    """A list response with its items left as raw JSON slices.

    ``metadata`` is the List's own metadata, decoded (``resourceVersion``, ``continue``, and
    anything else the server put there, such as ``shardInfo``).

    Pitfall: each ``items`` slice is a view into the response body, so holding one holds the whole
    body; :meth:`objects` copies each item into bytes of its own.
    """

    kind: str | None = None
    apiVersion: str | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)
    items: list[msgspec.Raw] | None = None

    @classmethod
    def decode(cls, body: bytes) -> RawList:
        """Split a list response body; raises ``ObjectDecodeError`` if it is not a JSON object with
        an ``items`` array."""
        try:
            return _list_decoder.decode(body)
        except _MsgspecError as exc:
            raise ObjectDecodeError(f"list response is not a decodable List ({exc})", body) from None

    @property
    def resource_version(self) -> str | None:
        """``metadata.resourceVersion`` (``None`` if absent or empty)."""
        version = self.metadata.get("resourceVersion")
        return version if isinstance(version, str) and version else None

    @property
    def continue_token(self) -> str | None:
        """``metadata.continue`` (``None`` if absent or empty: the last page)."""
        token = self.metadata.get("continue")
        return token if isinstance(token, str) and token else None

    def item_kind(self) -> tuple[str, str] | None:
        """The ``kind`` and ``apiVersion`` of the items: the List's kind without ``List``."""
        list_kind, api_version = self.kind, self.apiVersion
        if not list_kind or not list_kind.endswith("List") or not api_version:
            return None
        return list_kind[: -len("List")], api_version

    def objects(self) -> list[LazyObject]:
        """Each item as a :class:`LazyObject` with a head, ``kind`` and ``apiVersion`` written into
        the bytes of items that lack a ``kind`` (as decoding the list and setting both would).
        Raises ``ObjectDecodeError`` for an item that is not an object with decodable metadata."""
        items = self.items or ()
        kinds = self.item_kind()
        if kinds is None:
            return [LazyObject(bytes(item), _decode_item_head(item)) for item in items]
        kind, api_version = kinds
        prefix = b'{"kind":' + orjson.dumps(kind) + b',"apiVersion":' + orjson.dumps(api_version)
        prefix_comma = prefix + b","
        out: list[LazyObject] = []
        for item in items:
            head = _decode_item_head(item)
            if head.kind is not None:
                out.append(LazyObject(bytes(item), head))
                continue
            rest = memoryview(item)[1:]
            if rest[0] == _QUOTE:  # the common case: a key follows the brace
                raw = prefix_comma + rest
            else:
                body = rest.tobytes().lstrip()
                raw = prefix + (b"" if body.startswith(b"}") else b",") + body
            out.append(LazyObject(raw, msgspec.structs.replace(head, kind=kind, apiVersion=api_version)))
        return out

    def partial_metadata(self) -> RawList:
        """This List as a ``PartialObjectMetadataList``: itself if it is one, else a List of that kind
        whose items are ``{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":
        ...}`` with each item's ``metadata`` bytes copied verbatim (``{}`` when absent or falsy).
        Items that already are ``PartialObjectMetadata`` are kept as they are.

        It is what ``Api.list_metadata`` does to the decoded List of a server that answered a
        metadata-only list with full objects, done on bytes: each item is scanned (msgspec checks
        its syntax and reads its ``kind``; ``spec``, ``status`` and the rest are skipped unbuilt),
        so the result's :meth:`objects` decode to exactly the dicts ``list_metadata`` returns.

        Never raises for a bad item: an item that is not a JSON object is kept as it is, so
        :meth:`objects` raises ``ObjectDecodeError`` for it as for any other undecodable item.
        Pitfall: items kept as they are (a List already of this kind, or an item already
        ``PartialObjectMetadata``) go through :meth:`objects` unchanged, so a ``metadata`` that is
        not a map (``null``, ``[]``) is an ``ObjectDecodeError`` there, where the decoded List would
        pass it on.
        """
        if self.kind == PARTIAL_LIST_KIND:
            return self
        return RawList(
            kind=PARTIAL_LIST_KIND,
            apiVersion=META_API_VERSION,
            metadata=self.metadata,
            items=[_partial_item(item) for item in self.items or ()],
        )


_list_decoder: Final = msgspec.json.Decoder(RawList)
_QUOTE: Final = ord('"')


def _decode_item_head(item: msgspec.Raw) -> ObjectHead:
    return decode_head(item)


PARTIAL_KIND: Final = "PartialObjectMetadata"
PARTIAL_LIST_KIND: Final = "PartialObjectMetadataList"
META_API_VERSION: Final = "meta.k8s.io/v1"


class _ItemParts(msgspec.Struct):
    """What cutting an object down to its metadata reads: ``kind`` (any JSON value, compared with
    ``PartialObjectMetadata``) and the bytes of ``metadata`` (empty when absent)."""

    kind: Any = None
    metadata: msgspec.Raw = msgspec.Raw()


_parts_decoder: Final = msgspec.json.Decoder(_ItemParts)
_PARTIAL_PREFIX: Final = (
    b'{"kind":"' + PARTIAL_KIND.encode() + b'","apiVersion":"' + META_API_VERSION.encode() + b'","metadata":'
)


def _partial_item(item: msgspec.Raw) -> msgspec.Raw:
    """One list item as ``PartialObjectMetadata`` bytes (see :meth:`RawList.partial_metadata`)."""
    try:
        parts = _parts_decoder.decode(item)
    except _MsgspecError:
        return item  # not a JSON object: RawList.objects() reports it
    if parts.kind == PARTIAL_KIND:
        return item
    metadata = bytes(parts.metadata)
    if not metadata.startswith(b"{") and _falsy(metadata):
        metadata = b"{}"  # as ``obj.get("metadata") or {}`` on the decoded item
    return msgspec.Raw(_PARTIAL_PREFIX + metadata + b"}")


def _falsy(value: bytes) -> bool:
    """Whether JSON ``value`` (not an object; empty: absent) decodes to a falsy value. Such metadata
    is malformed and small; a truthy one is kept for the head decoder to reject."""
    if not value:
        return True
    try:
        return not _orjson_loads(value)
    except _JSONDecodeError:
        return False  # a number beyond a double's range: kept, and rejected as metadata later
