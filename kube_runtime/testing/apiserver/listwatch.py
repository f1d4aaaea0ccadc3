"""List and watch requests: selectors, resourceVersion semantics, paging, and opening a watch.

Guarantees (as kube-apiserver): a list is served at one resourceVersion (``continue`` tokens pin it,
and a compacted one answers 410 ``Expired``); ``resourceVersionMatch`` and ``sendInitialEvents``
are checked with the real server's 422 messages (the ``watch_list`` setting refuses streaming lists
as with the ``WatchList`` gate off, or ignores both parameters as an older server does); a watch
from a resourceVersion replays the events after it, or ends at once with a 410 ERROR event when
they are no longer kept. A watch that allows bookmarks gets one more, its farewell,
:data:`FAREWELL_LEAD` seconds before its timeout ends it (kube-apiserver's watch cache does the
same; paused bookmarks pause it too). Pitfall: :class:`ListWatchHandlers` is a mixin of
:class:`~kube_runtime.testing.apiserver.app.ApiApp`; it reads the app's ``storage``, ``ops``,
``settings``, ``faults`` and ``on_watch``.
"""

from __future__ import annotations

import base64
import bisect
from collections.abc import Callable
from typing import Any

import anyio
import orjson

from kube_runtime.testing.apiserver.faults import Faults
from kube_runtime.testing.apiserver.httpserver import ChunkSender, Response, StreamingResponse
from kube_runtime.testing.apiserver.listitems import list_items
from kube_runtime.testing.apiserver.ops import ObjectOps
from kube_runtime.testing.apiserver.respond import JSON, META_CT, META_LIST_CT, TABLE_CT, Target, query_bool
from kube_runtime.testing.apiserver.selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    parse_field_selector,
    parse_label_selector,
)
from kube_runtime.testing.apiserver.settings import ServerSettings
from kube_runtime.testing.apiserver.shardselect import ShardedLabelSelector, parse_shard_selector
from kube_runtime.testing.apiserver.status import StatusError, bad_request, expired, invalid
from kube_runtime.testing.apiserver.storage import ADDED, Expired, Record, Storage
from kube_runtime.testing.apiserver.table import table_bytes
from kube_runtime.testing.apiserver.watch import Watcher

__all__ = ["ListWatchHandlers", "request_selectors"]


def request_selectors(t: Target, q: dict[str, str]) -> tuple[LabelSelector, FieldSelector]:
    """The label and field selectors of a list, watch or deletecollection request (400 if malformed)."""
    try:
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(q.get("fieldSelector"), t.rtype.storage_key, t.rtype.selectable_fields)
    except SelectorError as exc:
        raise bad_request(str(exc)) from None
    return labels, fields


#: How long before a watch's timeout its farewell bookmark is sent (kube-apiserver: 2 s).
FAREWELL_LEAD = 2.0


class ListWatchHandlers:
    """The list and watch handlers of the API app (a mixin; see the module docstring)."""

    storage: Storage
    ops: ObjectOps
    settings: ServerSettings
    faults: Faults
    on_watch: Callable[[], None] | None

    def _sharded(self, labels: LabelSelector, q: dict[str, str]) -> LabelSelector:
        """``labels`` and the request's ``shardSelector`` (ignored when the setting is off)."""
        text = q.get("shardSelector")
        if not text or not self.settings.sharded_list_watch:
            return labels
        return ShardedLabelSelector(labels.requirements, parse_shard_selector(text))

    # List ------------------------------------------------------------------------------------

    @staticmethod
    def _int_param(q: dict[str, str], name: str) -> int | None:
        raw = q.get(name)
        if raw is None or raw == "":
            return None
        try:
            return int(raw)
        except ValueError:
            raise bad_request(f'invalid {name} "{raw}": must be an integer') from None

    def _parse_rv(self, raw: str | None) -> int | None:
        if raw is None or raw == "":
            return None
        try:
            value = int(raw)
        except ValueError:
            raise bad_request(f"invalid resource version: {raw}") from None
        if value < 0:
            raise bad_request(f"invalid resource version: {raw}")
        return value

    def _list_rv(self, q: dict[str, str], limit: int | None, t: Target) -> int:
        """The resourceVersion the list is served at (list semantics of kube-apiserver)."""
        rv = self._parse_rv(q.get("resourceVersion"))
        match = q.get("resourceVersionMatch") or ""
        current = self.storage.rv
        if match and match not in ("Exact", "NotOlderThan"):
            raise invalid(
                t.rtype,
                "",
                [
                    (
                        "resourceVersionMatch",
                        "FieldValueNotSupported",
                        f'Unsupported value: "{match}": supported values: "Exact", "NotOlderThan"',
                    )
                ],
            )
        if match and rv is None:
            raise invalid(
                t.rtype,
                "",
                [
                    (
                        "resourceVersionMatch",
                        "FieldValueForbidden",
                        "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",
                    )
                ],
            )
        if rv is None or rv == 0:
            if match == "Exact":
                raise invalid(
                    t.rtype,
                    "",
                    [
                        (
                            "resourceVersionMatch",
                            "FieldValueForbidden",
                            'Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"',
                        )
                    ],
                )
            return current
        if rv > current:
            raise StatusError(
                504,
                "Timeout",
                f"Too large resource version: {rv}, current: {current}",
                {
                    "causes": [
                        {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                    ],
                    "retryAfterSeconds": 1,
                },
                retry_after=1,
            )
        if match == "Exact" or (not match and limit):
            return rv
        return current

    def _list(self, t: Target, q: dict[str, str], mode: str) -> Response:
        labels, fields = request_selectors(t, q)
        labels = self._sharded(labels, q)
        limit = self._int_param(q, "limit")
        if limit is not None and limit <= 0:
            limit = None
        cont = q.get("continue") or ""
        coll = self.ops.collection(t.rtype)
        start: tuple[str, str] | None = None
        if cont:
            if q.get("resourceVersion") not in (None, ""):
                raise bad_request("specifying resource version is not allowed when using continue")
            rv, start = self._decode_continue(cont)
        else:
            rv = self._list_rv(q, limit, t)
        try:
            records = coll.snapshot(rv, self.storage.rv)
        except Expired:
            if cont:
                raise expired(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start "
                    "a new list without the continue parameter."
                ) from None
            raise expired(
                f"The resourceVersion for the provided list is too old. ({rv} < {coll.history_start_rv})"
            ) from None
        lo, hi = coll.range_for_namespace(records, t.namespace)
        if start is not None:
            lo = max(lo, bisect.bisect_right(records, start, lo, hi, key=lambda r: r.key))
        name_only = fields.name_equals()
        filtered = not (labels.empty and fields.empty)
        out: list[Record] = []
        i = lo
        if name_only is not None and not cont:
            candidates: list[Record | None]
            if t.namespace is not None and rv == self.storage.rv:
                candidates = [coll.get(t.namespace, name_only)]
            else:
                candidates = [r for r in records[lo:hi] if r.key[1] == name_only]
            out = [r for r in candidates if r is not None and labels.matches(r.obj) and fields.matches(r.obj)]
            i = hi
        elif not filtered and limit is None:
            out = records[lo:hi]
            i = hi
        else:
            while i < hi:
                rec = records[i]
                i += 1
                if filtered and not (labels.matches(rec.obj) and fields.matches(rec.obj)):
                    continue
                out.append(rec)
                if limit is not None and len(out) >= limit:
                    break
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if isinstance(labels, ShardedLabelSelector) and labels.shard is not None:
            meta["shardInfo"] = {"selector": labels.shard.text}
        if limit is not None and i < hi and out:
            meta["continue"] = self._encode_continue(rv, out[-1].key)
            if not filtered:
                meta["remainingItemCount"] = hi - i
        if mode == "table":
            return Response(200, table_bytes(out, meta, t.rtype), TABLE_CT)
        if mode == "meta":
            head = b'{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":'
            items = b",".join([r.meta_raw for r in out])
            content_type = META_LIST_CT
        else:
            head = (
                b'{"kind":"' + t.rtype.list_kind.encode() + b'","apiVersion":"' + t.rtype.api_version.encode()
            )
            head += b'","metadata":'
            items = list_items(out, t.rtype)
            content_type = JSON
        return Response(200, head + orjson.dumps(meta) + b',"items":[' + items + b"]}", content_type)

    @staticmethod
    def _encode_continue(rv: int, key: tuple[str, str]) -> str:
        raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": [key[0], key[1]]})
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @staticmethod
    def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            doc = orjson.loads(raw)
            rv = int(doc["rv"])
            ns, name = doc["start"]
            if doc.get("v") != "meta.k8s.io/v1" or not isinstance(ns, str) or not isinstance(name, str):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise bad_request(f"continue key is not valid: {token[:64]!r}") from None
        return rv, (ns, name)

    # Watch -----------------------------------------------------------------------------------

    def _watch(self, t: Target, q: dict[str, str], mode: str) -> StreamingResponse:
        labels, fields = request_selectors(t, q)
        labels = self._sharded(labels, q)
        ignored = self.settings.watch_list == "ignored"  # a server that predates both parameters
        send_initial = None if ignored else q.get("sendInitialEvents")
        match = "" if ignored else q.get("resourceVersionMatch") or ""
        bookmarks = query_bool(q.get("allowWatchBookmarks"))
        causes: list[tuple[str, str, str]] = []
        if send_initial is not None and send_initial != "":
            if match != "NotOlderThan":
                causes.append(
                    (
                        "resourceVersionMatch",
                        "FieldValueForbidden",
                        "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                    )
                )
            if self.settings.watch_list == "off":
                causes.append(
                    (
                        "sendInitialEvents",
                        "FieldValueForbidden",
                        "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList "
                        "feature gate is enabled",
                    )
                )
            if not bookmarks and query_bool(send_initial):
                causes.append(
                    (
                        "allowWatchBookmarks",
                        "FieldValueForbidden",
                        "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
                    )
                )
        elif match:
            causes.append(
                (
                    "resourceVersionMatch",
                    "FieldValueForbidden",
                    "Forbidden: resourceVersionMatch is forbidden for watch "
                    "unless sendInitialEvents is provided",
                )
            )
        if causes:
            raise StatusError(
                422,
                "Invalid",
                'ListOptions.meta.k8s.io "" is invalid: ' + "; ".join(f"{f}: {m}" for f, _, m in causes),
                {
                    "kind": "ListOptions",
                    "group": "meta.k8s.io",
                    "causes": [{"reason": r, "message": m, "field": f} for f, r, m in causes],
                },
            )
        timeout = self._int_param(q, "timeoutSeconds")
        rv = self._parse_rv(q.get("resourceVersion"))
        coll = self.ops.collection(t.rtype)
        watcher = Watcher(
            coll,
            t.rtype,
            namespace=t.namespace,
            labels=labels,
            fields=fields,
            metadata_only=mode == "meta",
            table=mode == "table",
            bookmarks=bookmarks,
            max_queue=self.settings.watch_queue_size,
        )
        current = self.storage.rv
        if query_bool(send_initial) or rv is None or rv == 0:
            records = coll.snapshot(current, current)
            lo, hi = coll.range_for_namespace(records, t.namespace)
            watcher.initial = [(ADDED, r) for r in records[lo:hi] if watcher.matches(r)]
            if query_bool(send_initial):
                watcher.initial_tail = watcher.bookmark(current, initial_events_end=True)
        else:
            if rv > current:
                raise StatusError(
                    504,
                    "Timeout",
                    f"Too large resource version: {rv}, current: {current}",
                    {
                        "causes": [
                            {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}
                        ],
                        "retryAfterSeconds": 1,
                    },
                    retry_after=1,
                )
            try:
                events = coll.events_after(rv)
            except Expired as exc:
                watcher.close(
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": str(exc),
                        "reason": "Expired",
                        "code": 410,
                    }
                )
                return StreamingResponse(200, watcher.stream, META_CT if mode == "meta" else JSON)
            initial = []
            for ev in events:
                seen = watcher.visible(ev)
                if seen is not None:
                    initial.append(seen)
            watcher.initial = initial
        coll.watchers.add(watcher)
        if self.on_watch is not None:
            self.on_watch()
        seconds = (
            float(timeout) if timeout is not None and timeout > 0 else self.settings.default_watch_timeout
        )

        async def farewell() -> None:
            await anyio.sleep(seconds - FAREWELL_LEAD)
            if not self.faults.bookmarks_paused:
                watcher.offer_bookmark(self.storage.rv)

        async def writer(send: ChunkSender) -> None:
            try:
                with anyio.move_on_after(seconds):
                    async with anyio.create_task_group() as tg:
                        if bookmarks and seconds > FAREWELL_LEAD:
                            tg.start_soon(farewell)
                        await watcher.stream(send)
                        tg.cancel_scope.cancel()
            finally:
                watcher.closed = True
                coll.watchers.discard(watcher)

        return StreamingResponse(200, writer, META_CT if mode == "meta" else JSON)
