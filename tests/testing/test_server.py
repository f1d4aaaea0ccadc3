"""ApiServer lifecycle, the fixture, the kube_runtime client it provides, and test helpers."""

from __future__ import annotations

import logging
import socket
import struct

import anyio
import anyio.abc
import httpx
import pytest

from kube_runtime.client import Api, ApiResource
from kube_runtime.testing import ApiServer
from tests.testing.helpers import CM, configmap, http_client


async def test_fixture_serves_with_system_namespaces(api_server: ApiServer) -> None:
    async with http_client(api_server) as http:
        names = [n["metadata"]["name"] for n in (await http.get("/api/v1/namespaces")).json()["items"]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert api_server.url.startswith("https://127.0.0.1:")


async def test_client_property_is_a_ready_kube_runtime_client(api_server: ApiServer) -> None:
    api = Api(api_server.client, ApiResource.builtin("ConfigMap"), "default")
    created = await api.create(configmap("from-client", k="v"))
    assert created["metadata"]["uid"]
    assert [o["metadata"]["name"] for o in api_server.objects("configmaps", "default")] == ["from-client"]
    assert api_server.objects(ApiResource.builtin("ConfigMap"))[0]["data"] == {"k": "v"}


async def test_objects_are_copies(api_server: ApiServer) -> None:
    async with http_client(api_server) as http:
        await http.post(CM, json=configmap("c", k="v"))
    api_server.objects("configmaps")[0]["data"]["k"] = "mutated"
    assert api_server.objects("configmaps")[0]["data"] == {"k": "v"}


async def test_missing_token_is_401(api_server: ApiServer) -> None:
    async with http_client(api_server) as http:
        resp = await http.get(CM, headers={"Authorization": ""})
        assert resp.status_code == 401
        assert resp.json()["reason"] == "Unauthorized"
        assert (await http.get("/healthz", headers={"Authorization": ""})).text == "ok"


async def test_kubeconfig_is_written_and_removed() -> None:
    async with ApiServer(create_client=False) as server:
        path = server.kubeconfig_path
        text = path.read_text()
        assert server.url in text
        assert server.token in text
        assert "certificate-authority-data" in text
    assert not path.exists()


async def test_plain_http_mode() -> None:
    async with ApiServer(tls=False, create_client=False) as server, http_client(server) as http:
        assert server.url.startswith("http://")
        assert (await http.get("/api")).status_code == 200


async def test_stop_serving_ends_open_watches() -> None:
    """Stopping must not hang on a client's open watch; the client sees the connection end."""
    async with ApiServer(create_client=False) as server, http_client(server) as http:
        outcome: list[str] = []

        async def watch() -> None:
            try:
                async with http.stream("GET", CM, params={"watch": "1"}) as resp:
                    async for _ in resp.aiter_lines():
                        pass
                outcome.append("ended")
            except httpx.TransportError:
                outcome.append("broken")

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                await server.wait_for_watches(1, "configmaps")
                await server.faults.stop_serving()
        assert outcome in (["ended"], ["broken"])


async def test_a_watch_reset_by_its_client_does_not_take_the_server_down() -> None:
    """A client that resets its watch connection (RST, not FIN) while the server writes to it ends
    that watch only: the server keeps serving (regression: the failed write raised through the
    server's task group and stopped the whole server)."""
    async with ApiServer(tls=False) as server, http_client(server) as http:
        host, port = server.url.removeprefix("http://").split(":")
        for round_ in range(5):
            sock = await anyio.connect_tcp(host, int(port))
            request = (
                f"GET {CM}?watch=true&resourceVersion=0 HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {server.token}\r\n\r\n"
            )
            await sock.send(request.encode())
            await server.wait_for_watches(1)
            # Linger 0: close() sends RST while the server is still streaming to us.
            raw = sock.extra(anyio.abc.SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            async with anyio.create_task_group() as tg:

                async def create(name: str) -> None:
                    await http.post(CM, json=configmap(name, k="v" * 4096))

                for i in range(50):
                    tg.start_soon(create, f"c-{round_}-{i}")
                await sock.aclose()
            with anyio.fail_after(10):
                while server.watch_count() != 0:  # noqa: ASYNC110  (server-side cleanup of dead watches)
                    await anyio.sleep(0.01)
        resp = await http.get(CM)
        assert resp.status_code == 200
        assert len(resp.json()["items"]) == 250


async def test_a_client_leaving_mid_handshake_is_no_error_line(
    api_server: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    """anyio logs a failed TLS handshake at ERROR; a test ending while a client connects made the
    log of the code under test show an error that was not its own."""
    url = httpx.URL(api_server.url)
    assert url.port is not None

    def failed_handshakes() -> int:
        return sum("TLS handshake failed" in r.getMessage() for r in caplog.records)

    with caplog.at_level(logging.DEBUG):
        for count, garbage in enumerate((b"", b"not a ClientHello\r\n\r\n"), start=1):
            async with await anyio.connect_tcp(url.host, url.port) as stream:
                if garbage:
                    await stream.send(garbage)
            with anyio.fail_after(10):
                while failed_handshakes() < count:  # noqa: ASYNC110  (a log record is the condition)
                    await anyio.sleep(0.01)
        listed = await Api(api_server.client, ApiResource.builtin("ConfigMap"), "default").list()
        assert listed["items"] == []  # still serving
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors
