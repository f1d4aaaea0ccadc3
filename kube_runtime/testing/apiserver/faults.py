"""Fault injection: what a test (or the CLI's admin endpoint) can do to the server.

Faults are plain state read by the request path, plus actions on storage and the listener:
close every open watch, fail the next N requests with a chosen status, add latency (a large one
is a server that accepts requests and never answers them), pause the periodic bookmarks (open
watches go silent with their connections kept open), compact history (resumed watches and stale
continue tokens get 410), expire the token (401), and stop and restart serving on the same port
with all objects kept.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kube_runtime.testing.apiserver.status import StatusError
from kube_runtime.testing.apiserver.storage import Storage

__all__ = ["Faults"]

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_MESSAGES = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "The server is currently unable to handle the request",
    504: "The server was unable to return a response in the time allotted, "
    "but may still be processing the request",
}


@dataclass
class _Failure:
    remaining: int
    code: int
    retry_after: int | None


class Faults:
    """Fault switches of one server. Methods are safe to call from tests on the server's loop."""

    def __init__(
        self,
        storage: Storage,
        *,
        stop_serving: Callable[[], Awaitable[None]],
        start_serving: Callable[[], Awaitable[None]],
    ) -> None:
        self._storage = storage
        self._stop = stop_serving
        self._start = start_serving
        self.latency = 0.0
        self.token_expired = False
        #: While true the bookmark ticker sends nothing: watches stay open and silent.
        self.bookmarks_paused = False
        self._failure: _Failure | None = None
        self.injected_failures = 0

    def close_watches(self, storage_key: tuple[str, str] | None = None) -> int:
        """End every open watch stream (a clean end, as when the server's watch times out), or
        only those of the collection ``storage_key`` (``(group, plural)``, as
        ``ResourceType.storage_key``) when given."""
        closed = 0
        for key, coll in self._storage.collections.items():
            if storage_key is not None and key != storage_key:
                continue
            for watcher in list(coll.watchers):
                watcher.close()
                closed += 1
        return closed

    def fail_next(self, count: int, code: int = 503, *, retry_after: int | None = None) -> None:
        """Answer the next ``count`` API requests with ``code`` (429/500/503/...) instead of serving them."""
        if count <= 0:
            self._failure = None
            return
        if code == 429 and retry_after is None:
            retry_after = 1
        self._failure = _Failure(count, code, retry_after)

    def set_latency(self, seconds: float) -> None:
        """Delay every API request by ``seconds`` before it is served."""
        self.latency = max(0.0, seconds)

    def pause_bookmarks(self) -> None:
        """Stop the periodic bookmarks (until :meth:`resume_bookmarks`) without closing any watch:
        what a client sees when a load balancer silently drops the connection."""
        self.bookmarks_paused = True

    def resume_bookmarks(self) -> None:
        self.bookmarks_paused = False

    def compact(self) -> int:
        """Drop all watch history; returns the resourceVersion everything older is expired against.

        As etcd's compaction at the current revision: a continue token, an exact list or a watch
        from an older resourceVersion gets 410 ``Expired``; one at that revision itself (a list
        made with no write anywhere since) is still served, as etcd serves a read at the
        compacted revision. kube-apiserver's compactor writes before each compaction, so to
        expire a list's tokens here, write something (any resource) before compacting."""
        rv = self._storage.compact()
        return rv

    def expire_token(self) -> None:
        """Make the current token invalid (401) until :meth:`restore_token`."""
        self.token_expired = True

    def restore_token(self) -> None:
        self.token_expired = False

    async def stop_serving(self) -> None:
        """Close the listener and every connection (clients see refused connections)."""
        self.close_watches()
        await self._stop()

    async def start_serving(self) -> None:
        """Listen again on the same port."""
        await self._start()

    def reset(self) -> None:
        self.latency = 0.0
        self.token_expired = False
        self.bookmarks_paused = False
        self._failure = None

    # Request path ----------------------------------------------------------------------------

    def take_failure(self) -> StatusError | None:
        failure = self._failure
        if failure is None:
            return None
        failure.remaining -= 1
        if failure.remaining <= 0:
            self._failure = None
        self.injected_failures += 1
        code = failure.code
        details = {"retryAfterSeconds": failure.retry_after} if failure.retry_after is not None else None
        return StatusError(
            code,
            _REASONS.get(code, "InternalError"),
            _MESSAGES.get(code, f"injected fault {code} ({secrets.token_hex(2)})"),
            details,
            retry_after=failure.retry_after,
        )
