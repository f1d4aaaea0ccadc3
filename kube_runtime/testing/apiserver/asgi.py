"""An ASGI adapter of the API app, so it can be served by uvicorn (used to compare servers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from kube_runtime.testing.apiserver.httpserver import Handler, Request, Response

__all__ = ["asgi_app"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def asgi_app(handler: Handler) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope.get("query_string", b"").decode("latin-1")
        request = Request(
            scope["method"], scope["path"], dict(parse_qsl(query, keep_blank_values=True)), headers, body
        )
        response = await handler(request)
        head = [(b"content-type", response.content_type.encode())]
        if isinstance(response, Response):
            head.append((b"content-length", str(len(response.body)).encode()))
        head += [(k.encode(), v.encode()) for k, v in response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": head})
        if isinstance(response, Response):
            await send({"type": "http.response.body", "body": response.body})
            return

        async def send_chunk(data: bytes) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": True})

        await response.writer(send_chunk)
        await send({"type": "http.response.body", "body": b""})

    return app
