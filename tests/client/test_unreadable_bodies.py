"""An answer whose body does not decode (a corrupt gzip body: the client asks for gzip) is a typed
``TransportError``, for a request and for a watch, as a broken connection is; httpx reports it as a
``DecodingError``, which is not one of its transport errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiError, ApiResource, Client, ClientConfig, TransportError, WatchEvent
from kube_runtime.client.errors import ObjectDecodeError
from tests.client.loopback import LoopbackServer, Received, Reply

pytestmark = pytest.mark.usefixtures("anyio_backend")

CONFIGMAPS = ApiResource.builtin("ConfigMap")
#: A gzip header followed by deflate data that is not valid.
CORRUPT_GZIP = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 32


async def test_a_corrupt_gzip_body_is_a_transport_error_for_a_request_and_a_watch(
    registry: CollectorRegistry,
) -> None:
    async def handler(req: Received) -> Reply:
        assert "gzip" in req.headers.get("accept-encoding", "")
        if req.query.get("watch"):

            async def chunks() -> AsyncIterator[bytes]:
                yield CORRUPT_GZIP

            return 200, [("content-type", "application/json"), ("content-encoding", "gzip")], chunks()
        return 200, [("content-type", "application/json"), ("content-encoding", "gzip")], CORRUPT_GZIP

    async with LoopbackServer(handler) as loopback:
        config = ClientConfig(server=loopback.url, token="t0k3n")
        async with Client(config, metrics_registry=registry) as client:
            api = Api(client, CONFIGMAPS, "ns")
            with pytest.raises(TransportError) as got:
                await api.get("a")
            assert "DecodingError" in str(got.value)
            seen: list[object] = []

            async def read_watch() -> None:
                async with api.watch(resource_version="1") as events:
                    seen.extend([item async for item in events])

            with pytest.raises(TransportError):
                await read_watch()
            assert not [item for item in seen if isinstance(item, WatchEvent)]


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b"[1, 2]", b"\xff\xfe"])
async def test_a_2xx_body_that_is_not_a_json_object_is_an_object_decode_error_for_every_read(
    registry: CollectorRegistry, body: bytes
) -> None:
    """``get`` and ``list`` raised a bare KubeError where ``list_raw`` raised ObjectDecodeError: one
    type now, whichever read it is (a ``ValueError`` too, with the body's start in its message)."""

    async def handler(req: Received) -> Reply:
        return 200, [("content-type", "application/json")], body

    async with LoopbackServer(handler) as loopback:
        config = ClientConfig(server=loopback.url, token="t0k3n")
        async with Client(config, metrics_registry=registry) as client:
            api = Api(client, CONFIGMAPS, "ns")
            for read in (api.get("a"), api.list(), api.list_raw()):
                with pytest.raises(ObjectDecodeError) as got:
                    await read
                assert isinstance(got.value, ValueError)


async def test_a_gzip_body_that_decodes_to_nothing_is_an_object_decode_error(
    registry: CollectorRegistry,
) -> None:
    """A gzip header cut short decodes to no bytes without an error from the decoder; it was
    answered as an empty body, ``{}``."""

    async def handler(req: Received) -> Reply:
        return (
            200,
            [("content-type", "application/json"), ("content-encoding", "gzip")],
            b"\x1f\x8b\x08\x00junk",
        )

    async with LoopbackServer(handler) as loopback:
        config = ClientConfig(server=loopback.url, token="t0k3n")
        async with Client(config, metrics_registry=registry) as client:
            with pytest.raises(ObjectDecodeError, match="decodes to nothing"):
                await Api(client, CONFIGMAPS, "ns").get("a")


@pytest.mark.parametrize(
    ("http_code", "body", "reason"),
    [
        (500, b'{"kind":"Status","code":"abc","message":"m"}', ""),
        (500, b'{"kind":"Status","code":[1],"message":"m"}', ""),
        (404, b'{"kind":"Status","code":200,"reason":"OK","message":"m"}', "OK"),
        (409, b'{"kind":"Status","code":true,"reason":"Conflict"}', "Conflict"),
    ],
)
async def test_an_error_status_with_a_bad_code_is_an_api_error_with_the_http_status(
    registry: CollectorRegistry, http_code: int, body: bytes, reason: str
) -> None:
    """``int()`` of the body's code raised a builtin ValueError/TypeError (not a KubeError), and a
    body code that disagreed with the HTTP status won over it."""

    async def handler(req: Received) -> Reply:
        return http_code, [("content-type", "application/json")], body

    async with LoopbackServer(handler) as loopback:
        config = ClientConfig(server=loopback.url, token="t0k3n")
        async with Client(config, metrics_registry=registry) as client:
            with pytest.raises(ApiError) as got:
                await Api(client, CONFIGMAPS, "ns").get("a")
    assert got.value.code == http_code
    assert got.value.reason == reason
