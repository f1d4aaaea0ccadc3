"""Typed errors for talking to an API server.

Two families, kept distinct so callers can tell "the server said no" from "we never got an answer":

* :class:`ApiError` carries the server's ``Status`` (code, reason, message, details). It is raised for
  every non-2xx response and yielded for ``ERROR`` events inside a watch stream.
* :class:`TransportError` covers everything below HTTP semantics: refused connections, resets,
  timeouts, TLS failures. Retrying is usually safe for reads and never automatic for writes. Two
  of them are the client's own timeouts: :class:`RequestTimeout` (an ordinary request missed its
  overall deadline) and :class:`WatchTimeout` (a watch made no progress).

:class:`WatchDecodeError` is yielded (not raised) by watch streams for a line that is not a valid
event, so one bad line never ends a watch.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ApiError",
    "AuthenticationError",
    "ConfigError",
    "KubeError",
    "ObjectDecodeError",
    "RequestTimeout",
    "TransportError",
    "WatchDecodeError",
    "WatchTimeout",
]


class KubeError(Exception):
    """Base of every error raised by kube_runtime."""


class ConfigError(KubeError):
    """No usable kubeconfig, in-cluster service account, or credentials could be loaded."""


class AuthenticationError(KubeError):
    """Credentials could not be obtained or refreshed (exec plugin failed, token file missing)."""


class TransportError(KubeError):
    """The request did not get an HTTP answer, or not one that could be read: connection refused
    or reset, timeout, TLS failure, a body that does not decode (a corrupt gzip body)."""

    def __init__(self, message: str, *, verb: str = "", url: str = "") -> None:
        super().__init__(message)
        self.verb = verb
        self.url = url


class RequestTimeout(TransportError):
    """An ordinary (non-streaming) request did not complete within its overall deadline
    (``ClientConfig.request_timeout``, or the call's ``request_timeout``): ``seconds``.

    The deadline covers the whole call: waiting for a connection, connecting, sending, every retry
    and its wait, re-authentication, the response headers and the whole body. ``phase`` says where
    the last attempt was: ``"headers"``, no response headers yet (an unresponsive server or proxy,
    a connection that went dead); ``"body"``, the headers had arrived and the body was still being
    read (a server or proxy sending it a few bytes at a time: each read within ``read_timeout``, the
    whole never done). Either way the connection in use, if any, was closed, not returned to the
    pool half-read (over HTTP/2, where connections are shared, the stream is abandoned instead).

    Pitfall: a timed-out write may still have been applied by the server; whether it was is
    unknown, so nothing retries it automatically (reads are not retried either: the deadline was
    the call's whole budget).
    """

    def __init__(self, message: str, *, phase: str, seconds: float, verb: str = "", url: str = "") -> None:
        super().__init__(message, verb=verb, url=url)
        self.phase = phase
        self.seconds = seconds


class WatchTimeout(TransportError):
    """A watch made no progress within its bound (``seconds``), so the client gave up on it.

    ``phase`` says where it stalled: ``"headers"``, the response headers did not arrive after the
    request was sent (raised when the watch is opened; an API server or proxy that accepted the
    connection and never answered), or the connection itself (TCP connect and TLS handshake) got
    no answer within ``ClientConfig.connect_timeout`` (a black-holed path); ``"idle"``, the open
    stream sent no byte, bookmarks included (built by the watcher when the stream ends that way; a
    connection a load balancer dropped without telling either side looks exactly like this).
    Either way the connection is closed and retrying is safe. A connection refused or reset is an
    answer, so a :class:`TransportError`, not this.
    """

    def __init__(self, message: str, *, phase: str, seconds: float, verb: str = "", url: str = "") -> None:
        super().__init__(message, verb=verb, url=url)
        self.phase = phase
        self.seconds = seconds


class ApiError(KubeError):
    """The API server answered with a failure ``Status``.

    ``code`` is the HTTP status (or the Status ``code`` of a watch ``ERROR`` event, 0 when that is
    not an integer); ``reason`` is the machine-readable reason (``NotFound``, ``Conflict``,
    ``Expired``, ``Gone``, ``Invalid``, ...). ``status`` is the decoded Status object as the server
    sent it (a synthesized one when the body was not a Status).
    """

    def __init__(
        self, status: dict[str, Any], *, retry_after: float | None = None, code: int | None = None
    ) -> None:
        self.status = status
        self.code: int = _status_code(status) if code is None else code
        self.reason: str = str(status.get("reason") or "")
        self.message: str = str(status.get("message") or "")
        details = status.get("details")
        self.details: dict[str, Any] = details if isinstance(details, dict) else {}
        self.retry_after = retry_after
        super().__init__(f"{self.code} {self.reason}: {self.message}")

    @classmethod
    def from_response(cls, code: int, body: bytes, *, retry_after: float | None = None) -> ApiError:
        """Build from a raw HTTP error response; a non-Status body becomes the message."""
        from kube_runtime.client.json import loads

        status: dict[str, Any] | None = None
        if body:
            try:
                decoded = loads(body)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict) and decoded.get("kind") == "Status":
                status = decoded
        if status is None:
            text = body[:2048].decode("utf-8", "replace").strip()
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "code": code,
                "reason": _REASONS.get(code, "Unknown"),
                "message": text or _REASONS.get(code, "Unknown"),
            }
        if not status.get("code"):
            status = {**status, "code": code}
        return cls(status, retry_after=retry_after, code=code)

    @property
    def is_not_found(self) -> bool:
        return self.code == 404

    @property
    def is_conflict(self) -> bool:
        return self.code == 409

    @property
    def is_gone(self) -> bool:
        """410: the requested resourceVersion is older than the server's retained history."""
        return self.code == 410


class ObjectDecodeError(KubeError, ValueError):
    """An object's JSON could not be decoded (``raw`` holds its bytes, ``None`` when it came from a
    decoded object whose metadata has the wrong shape).

    Raised where an object is decoded lazily (:class:`~kube_runtime.client.head.LazyObject`'s
    ``object``, a compact store's reads) for bytes the metadata decoder accepted but orjson rejects,
    such as a number beyond the range of a double (``1e400``). A ``ValueError``, like the
    codecs' own errors, so ``except ValueError`` keeps catching it.
    """

    def __init__(self, message: str, raw: bytes | None) -> None:
        shown = "" if raw is None else f": {raw[:200]!r}{'...' if len(raw) > 200 else ''}"
        super().__init__(f"{message}{shown}")
        self.raw = raw


class WatchDecodeError(KubeError):
    """A watch line that is not a valid event. Yielded as a value; the stream goes on."""

    def __init__(self, message: str, line: bytes) -> None:
        super().__init__(f"{message}: {line[:200]!r}{'...' if len(line) > 200 else ''}")
        self.line = line


_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def _status_code(status: dict[str, Any]) -> int:
    """A Status object's ``code`` as an int; 0 when it is missing or not an integer."""
    code = status.get("code")
    return code if type(code) is int else 0
