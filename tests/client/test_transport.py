"""The Client over real loopback sockets against a scripted server: errors, streams cut mid-body,
401 re-authentication, retries, TLS with client certificates, pool sizing, cancellation."""

from __future__ import annotations

import gzip
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import (
    Api,
    ApiError,
    ApiResource,
    AuthenticationError,
    Client,
    ClientConfig,
    ExecPlugin,
    KubeError,
    TransportError,
    WatchEvent,
)
from kube_runtime.client.errors import WatchDecodeError
from tests.client.conftest import Pki, Traces
from tests.client.loopback import Abort, LoopbackServer, Received, Reply, json_reply
from tests.client.plugins import plugin_calls, write_plugin

pytestmark = pytest.mark.usefixtures("anyio_backend")

CONFIGMAPS = ApiResource.builtin("ConfigMap")
STATUS_404 = orjson.dumps(
    {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": "NotFound",
        "code": 404,
        "message": "no",
    }
)


def _client(url: str, registry: CollectorRegistry, traces: Traces | None = None, **config: Any) -> Client:
    config.setdefault("token", "t0k3n-secret")
    return Client(
        ClientConfig(server=url, **config),
        metrics_registry=registry,
        tracer_provider=traces.provider if traces else None,
    )


def _sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


async def test_request_sends_headers_and_decodes_json(registry: CollectorRegistry) -> None:
    async def handler(req: Received) -> Reply:
        return json_reply(201, orjson.dumps({"echo": orjson.loads(req.body)}))

    async with LoopbackServer(handler) as server, _client(server.url, registry) as client:
        result = await client.request(
            "create",
            "POST",
            "/api/v1/namespaces/ns/configmaps",
            params={"dryRun": "All", "x": None},
            body={"a": 1},
        )
    assert result == {"echo": {"a": 1}}
    (req,) = server.received
    assert req.target == "/api/v1/namespaces/ns/configmaps?dryRun=All"
    assert req.headers["authorization"] == "Bearer t0k3n-secret"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["accept"] == "application/json"
    assert req.headers["user-agent"].startswith("kube-runtime/")


async def test_error_status_becomes_api_error(registry: CollectorRegistry) -> None:
    async def handler(req: Received) -> Reply:
        if req.path.endswith("/missing"):
            return json_reply(404, STATUS_404)
        return 502, [("content-type", "text/plain")], b"bad gateway from a proxy"

    async with LoopbackServer(handler) as server, _client(server.url, registry) as client:
        api = Api(client, CONFIGMAPS, "ns")
        with pytest.raises(ApiError) as caught:
            await api.get("missing")
        assert caught.value.code == 404
        assert caught.value.reason == "NotFound"
        assert await api.get_opt("missing") is None
        with pytest.raises(ApiError) as caught:
            await api.get("other")
        assert caught.value.code == 502
        assert "bad gateway from a proxy" in caught.value.message


async def test_non_json_success_body_is_a_typed_error(registry: CollectorRegistry) -> None:
    async def handler(req: Received) -> Reply:
        return 200, [("content-type", "text/html")], b"<html>login page</html>"

    async with LoopbackServer(handler) as server, _client(server.url, registry) as client:
        with pytest.raises(KubeError, match="not JSON"):
            await client.request("get", "GET", "/api/v1/namespaces/default/configmaps/a")


async def test_connection_refused_is_a_transport_error(registry: CollectorRegistry, traces: Traces) -> None:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    await listener.aclose()
    async with _client(f"http://127.0.0.1:{port}", registry, traces) as client:
        with pytest.raises(TransportError) as caught:
            await Api(client, CONFIGMAPS, "ns").get("a")
        assert caught.value.verb == "get"
        with pytest.raises(TransportError):
            async with Api(client, CONFIGMAPS, "ns").watch():
                pass
    assert (
        _sample(
            registry, "rest_client_requests_total", code="<error>", method="GET", host=f"127.0.0.1:{port}"
        )
        == 2
    )
    assert [s.status.status_code.name for s in traces.spans()] == ["ERROR", "ERROR"]


def _watch_lines(*events: dict[str, Any]) -> list[bytes]:
    return [orjson.dumps(e) + b"\n" for e in events]


def _cm(name: str, rv: str = "1") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "resourceVersion": rv}}


async def test_watch_yields_events_errors_and_decode_errors_then_ends(registry: CollectorRegistry) -> None:
    async def handler(req: Received) -> Reply:
        assert req.query["watch"] == "true"
        assert req.query["allowWatchBookmarks"] == "true"
        assert req.query["timeoutSeconds"] == "290"
        assert req.query["resourceVersion"] == "5"

        async def body() -> AsyncIterator[bytes]:
            data = b"".join(
                _watch_lines(
                    {"type": "ADDED", "object": _cm("a")},
                    {
                        "type": "BOOKMARK",
                        "object": {"kind": "ConfigMap", "metadata": {"resourceVersion": "9"}},
                    },
                )
            )
            data += b"garbage line\n"
            data += orjson.dumps(
                {"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}}
            )
            data += b"\n" + orjson.dumps({"type": "DELETED", "object": _cm("a", "10")})
            for i in range(0, len(data), 7):  # cut everywhere
                yield data[i : i + 7]
            yield b"\n"

        return 200, [("content-type", "application/json")], body()

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry) as client,
        Api(client, CONFIGMAPS, "ns").watch(resource_version="5") as events,
    ):
        items = [item async for item in events]
    assert [type(i).__name__ for i in items] == [
        "WatchEvent",
        "WatchEvent",
        "WatchDecodeError",
        "ApiError",
        "WatchEvent",
    ]
    assert isinstance(items[0], WatchEvent)
    assert items[0].object["metadata"]["name"] == "a"
    assert isinstance(items[1], WatchEvent)
    assert items[1].type == "BOOKMARK"
    assert isinstance(items[2], WatchDecodeError)
    assert isinstance(items[3], ApiError)
    assert items[3].code == 410
    assert isinstance(items[4], WatchEvent)
    assert items[4].type == "DELETED"


async def test_a_gzip_encoded_watch_body_is_decoded(registry: CollectorRegistry) -> None:
    """Unencoded watch bodies are read from the transport's byte stream directly; an encoded one
    still goes through httpx's decoder."""
    plain = b"".join(
        _watch_lines(*({"type": "MODIFIED", "object": _cm(f"cm-{i}", str(i))} for i in range(50)))
    )
    compressed = gzip.compress(plain)

    async def handler(req: Received) -> Reply:
        async def body() -> AsyncIterator[bytes]:
            for i in range(0, len(compressed), 100):
                yield compressed[i : i + 100]

        return 200, [("content-type", "application/json"), ("content-encoding", "gzip")], body()

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry) as client,
        Api(client, CONFIGMAPS, "ns").watch() as events,
    ):
        items = [item async for item in events]
    assert [i.object["metadata"]["name"] for i in items if isinstance(i, WatchEvent)] == [
        f"cm-{i}" for i in range(50)
    ]


async def test_watch_cut_mid_body_raises_transport_error_from_the_iterator(
    registry: CollectorRegistry, traces: Traces
) -> None:
    async def handler(req: Received) -> Reply:
        async def body() -> AsyncIterator[bytes]:
            yield b"".join(_watch_lines({"type": "ADDED", "object": _cm("a")}))
            yield b'{"type":"MODIFIED","obj'
            raise Abort

        return 200, [("content-type", "application/json")], body()

    received: list[Any] = []

    async def consume(client: Client) -> None:
        async with Api(client, CONFIGMAPS, "ns").watch() as events:
            async for item in events:
                received.append(item)

    async with LoopbackServer(handler) as server, _client(server.url, registry, traces) as client:
        assert client.untimed_reads  # the watch is read through kube_runtime.client.network
        with pytest.raises(TransportError, match="stream broken"):
            await consume(client)
        assert len(received) == 1
        # the client is still usable afterwards
        with pytest.raises(TransportError, match="stream broken"):
            await consume(client)
        assert len(received) == 2
    watch_spans = [s for s in traces.spans() if s.name == "watch"]
    assert len(watch_spans) == 2
    assert all(s.status.status_code.name == "ERROR" for s in watch_spans)


async def test_watch_entry_raises_api_error(registry: CollectorRegistry) -> None:
    async def handler(req: Received) -> Reply:
        return json_reply(
            403, orjson.dumps({"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"})
        )

    async with LoopbackServer(handler) as server, _client(server.url, registry) as client:
        with pytest.raises(ApiError) as caught:
            async with Api(client, CONFIGMAPS, "ns").watch():
                pytest.fail("entered a watch that was refused")
        assert caught.value.code == 403


async def test_metadata_verbs_fall_back_when_the_server_sends_full_objects(
    registry: CollectorRegistry,
) -> None:
    full = {**_cm("a"), "data": {"big": "x" * 100}}

    async def handler(req: Received) -> Reply:
        assert "as=PartialObjectMetadata" in req.headers["accept"]
        assert req.headers["accept"].endswith(",application/json")
        if req.query.get("watch"):
            return (
                200,
                [("content-type", "application/json")],
                b"".join(_watch_lines({"type": "ADDED", "object": full})),
            )
        listing = {
            "kind": "ConfigMapList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "3"},
            "items": [full],
        }
        return json_reply(200, orjson.dumps(listing))

    async with LoopbackServer(handler) as server, _client(server.url, registry) as client:
        api = Api(client, CONFIGMAPS, "ns")
        listing = await api.list_metadata()
        assert listing["kind"] == "PartialObjectMetadataList"
        assert listing["metadata"]["resourceVersion"] == "3"
        assert listing["items"] == [
            {"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": full["metadata"]}
        ]
        async with api.watch_metadata() as events:
            (event,) = [e async for e in events]
        assert isinstance(event, WatchEvent)
        assert event.object["kind"] == "PartialObjectMetadata"
        assert "data" not in event.object


async def test_401_reauthenticates_once_with_a_rotated_token_file(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("old")
    valid = {"old"}

    async def handler(req: Received) -> Reply:
        if req.headers.get("authorization", "").removeprefix("Bearer ") not in valid:
            return json_reply(401, orjson.dumps({"kind": "Status", "code": 401, "reason": "Unauthorized"}))
        return json_reply(200, b"{}")

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry, token=None, token_file=str(token_file)) as client,
    ):
        await client.request("get", "GET", "/api/v1/namespaces/ns/configmaps/a")
        # the token rotates: the server only accepts the new one; the file has it before the re-read
        valid.clear()
        valid.add("new")
        token_file.write_text("new")
        await client.request("get", "GET", "/api/v1/namespaces/ns/configmaps/a")
        auths = [r.headers["authorization"] for r in server.received]
        assert auths == ["Bearer old", "Bearer old", "Bearer new"]
        # a token that stays invalid: exactly one re-authentication and resend, then the 401
        valid.clear()
        with pytest.raises(ApiError) as caught:
            await client.request("get", "GET", "/api/v1/namespaces/ns/configmaps/a")
        assert caught.value.code == 401
        assert len(server.received) == 5


async def test_401_reruns_the_exec_plugin(tmp_path: Path, registry: CollectorRegistry) -> None:
    counter = tmp_path / "count"
    plugin = ExecPlugin(str(write_plugin(tmp_path)), env={"PLUGIN_COUNTER": str(counter)})

    async def handler(req: Received) -> Reply:
        if req.headers.get("authorization") != "Bearer exec-token-2":
            return json_reply(401, orjson.dumps({"kind": "Status", "code": 401}))
        return json_reply(200, b"{}")

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry, token=None, exec_plugin=plugin) as client,
    ):
        await client.request("get", "GET", "/api/v1/namespaces/ns/configmaps/a")
    assert plugin_calls(counter) == 2
    assert [r.headers["authorization"] for r in server.received] == [
        "Bearer exec-token-1",
        "Bearer exec-token-2",
    ]


async def test_failing_credentials_raise_authentication_error(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    async def handler(req: Received) -> Reply:
        return json_reply(200, b"{}")

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry, token=None, token_file=str(tmp_path / "absent")) as client,
    ):
        with pytest.raises(AuthenticationError):
            await client.request("get", "GET", "/api")
    assert server.received == []


async def test_retries_503_on_reads_and_not_on_creates(registry: CollectorRegistry, traces: Traces) -> None:
    failures = {"GET": 2, "POST": 1}

    async def handler(req: Received) -> Reply:
        if failures[req.method]:
            failures[req.method] -= 1
            return json_reply(503, orjson.dumps({"kind": "Status", "code": 503}), ("retry-after", "0"))
        return json_reply(200, b'{"ok": true}')

    async with LoopbackServer(handler) as server, _client(server.url, registry, traces) as client:
        api = Api(client, CONFIGMAPS, "ns")
        assert await api.get("a") == {"ok": True}
        with pytest.raises(ApiError) as caught:
            await api.create(_cm("b"))
        assert caught.value.code == 503
        assert caught.value.retry_after == 0
    host = f"127.0.0.1:{server.port}"
    assert _sample(registry, "rest_client_requests_total", code="503", method="GET", host=host) == 2
    assert _sample(registry, "rest_client_requests_total", code="200", method="GET", host=host) == 1
    assert _sample(registry, "rest_client_request_retries_total", code="503", verb="GET", host=host) == 2
    assert _sample(registry, "rest_client_request_retries_total", code="503", verb="POST", host=host) == 0
    get_span = next(s for s in traces.spans() if s.name == "get")
    assert [e.name for e in get_span.events] == ["retry", "retry"]
    assert get_span.attributes is not None
    assert get_span.attributes["http.response.status_code"] == 200
    assert get_span.status.status_code.name == "UNSET"
    create_span = next(s for s in traces.spans() if s.name == "create")
    assert create_span.status.status_code.name == "ERROR"


def _server_context(pki: Pki, *, require_client_cert: bool, sni: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    prefix = "sni-server" if sni else "server"
    context.load_cert_chain(pki.path(f"{prefix}.crt"), pki.path(f"{prefix}.key"))
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=pki.ca_pem.decode())
    return context


async def _who(req: Received) -> Reply:
    return json_reply(200, orjson.dumps({"cn": req.peer_cn}))


async def test_tls_with_client_certificate_files(pki: Pki, registry: CollectorRegistry) -> None:
    async with LoopbackServer(_who, ssl_context=_server_context(pki, require_client_cert=True)) as server:
        async with _client(
            server.url,
            registry,
            token=None,
            ca_file=pki.path("ca.crt"),
            client_cert_file=pki.path("client.crt"),
            client_key_file=pki.path("client.key"),
        ) as client:
            assert await client.request("get", "GET", "/version") == {"cn": "alice"}
        async with _client(
            server.url,
            registry,
            token=None,
            ca_data=pki.ca_pem,
            client_cert_data=pki.other_client_cert_pem,
            client_key_data=pki.other_client_key_pem,
        ) as client:
            assert await client.request("get", "GET", "/version") == {"cn": "bob"}


def _certificate_plugin(tmp_path: Path, pki: Pki) -> ExecPlugin:
    """An exec plugin handing out alice's client certificate (its env may be changed later)."""
    return ExecPlugin(
        str(write_plugin(tmp_path)),
        env={
            "PLUGIN_COUNTER": str(tmp_path / "n"),
            "PLUGIN_CERT": pki.path("client.crt"),
            "PLUGIN_KEY": pki.path("client.key"),
        },
    )


async def test_tls_exec_plugin_certificate_is_installed(
    tmp_path: Path, pki: Pki, registry: CollectorRegistry
) -> None:
    plugin = _certificate_plugin(tmp_path, pki)
    context = _server_context(pki, require_client_cert=True)
    async with (
        LoopbackServer(_who, ssl_context=context) as server,
        _client(server.url, registry, token=None, ca_data=pki.ca_pem, exec_plugin=plugin) as client,
    ):
        assert await client.request("get", "GET", "/version") == {"cn": "alice"}


async def test_a_rotated_exec_plugin_certificate_is_not_resent_on_a_connection_made_with_the_old_one(
    tmp_path: Path, pki: Pki, registry: CollectorRegistry
) -> None:
    """A TLS connection keeps the certificate of its handshake: after a 401 the plugin's new
    certificate is installed and idle connections are closed, so the resend presents it."""
    plugin = _certificate_plugin(tmp_path, pki)
    rejected: set[str | None] = set()
    seen: list[str | None] = []

    async def who_unless_rejected(req: Received) -> Reply:
        seen.append(req.peer_cn)
        if req.peer_cn in rejected:
            return json_reply(401, b'{"kind":"Status","code":401,"message":"certificate expired"}')
        return await _who(req)

    context = _server_context(pki, require_client_cert=True)
    async with (
        LoopbackServer(who_unless_rejected, ssl_context=context) as server,
        _client(server.url, registry, token=None, ca_data=pki.ca_pem, exec_plugin=plugin) as client,
    ):
        assert await client.request("get", "GET", "/version") == {"cn": "alice"}
        rejected.add("alice")  # alice's certificate expires; the plugin now hands out bob's
        plugin.env["PLUGIN_CERT"] = pki.path("other-client.crt")
        plugin.env["PLUGIN_KEY"] = pki.path("other-client.key")
        assert await client.request("get", "GET", "/version") == {"cn": "bob"}
        assert seen == ["alice", "alice", "bob"]
        assert server.connections == 2


async def test_tls_verification(pki: Pki, registry: CollectorRegistry) -> None:
    async with LoopbackServer(_who, ssl_context=_server_context(pki, require_client_cert=False)) as server:
        async with _client(server.url, registry) as client:  # system trust store: our CA is unknown
            with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.request("get", "GET", "/version")
        async with _client(server.url, registry, insecure_skip_tls_verify=True) as client:
            assert await client.request("get", "GET", "/version") == {"cn": None}


async def test_tls_server_name(pki: Pki, registry: CollectorRegistry) -> None:
    context = _server_context(
        pki, require_client_cert=False, sni=True
    )  # certificate for kubernetes.test only
    async with LoopbackServer(_who, ssl_context=context) as server:
        async with _client(server.url, registry, ca_data=pki.ca_pem) as client:
            with pytest.raises(TransportError, match=r"CERTIFICATE_VERIFY_FAILED|match"):
                await client.request("get", "GET", "/version")
        async with _client(
            server.url, registry, ca_data=pki.ca_pem, tls_server_name="kubernetes.test"
        ) as client:
            assert await client.request("get", "GET", "/version") == {"cn": None}


async def test_open_watches_do_not_starve_requests(registry: CollectorRegistry) -> None:
    release = anyio.Event()

    async def handler(req: Received) -> Reply:
        if req.query.get("watch"):

            async def body() -> AsyncIterator[bytes]:
                yield b"".join(_watch_lines({"type": "ADDED", "object": _cm("a")}))
                await release.wait()

            return 200, [("content-type", "application/json")], body()
        return json_reply(200, b"{}")

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry, max_watches=3, max_concurrent_requests=1, pool_timeout=5) as client,
    ):
        api = Api(client, CONFIGMAPS, "ns")
        async with api.watch() as w1, api.watch() as w2, api.watch() as w3:
            for w in (w1, w2, w3):
                assert isinstance(await w.__anext__(), WatchEvent)
            with anyio.fail_after(5):
                assert await api.get("x") == {}
            release.set()


async def test_cancelled_request_releases_its_connection(registry: CollectorRegistry) -> None:
    stall = anyio.Event()

    async def handler(req: Received) -> Reply:
        if req.path.endswith("/slow"):
            await stall.wait()
        return json_reply(200, b"{}")

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry, max_watches=0, max_concurrent_requests=1, pool_timeout=5) as client,
    ):
        with anyio.move_on_after(0.2):
            await client.request("get", "GET", "/api/v1/namespaces/ns/configmaps/slow")
        with anyio.fail_after(5):
            assert await client.request("get", "GET", "/api/v1/namespaces/ns/configmaps/fast") == {}
        stall.set()


async def test_metrics_registration_is_idempotent(registry: CollectorRegistry) -> None:
    async def handler(req: Received) -> Reply:
        return json_reply(200, b"{}")

    async with LoopbackServer(handler) as server:
        async with _client(server.url, registry) as a, _client(server.url, registry) as b:
            await a.request("get", "GET", "/api")
            await b.request("list", "GET", "/api")
        host = f"127.0.0.1:{server.port}"
        assert _sample(registry, "rest_client_requests_total", code="200", method="GET", host=host) == 2
        assert _sample(registry, "rest_client_request_duration_seconds_count", verb="GET", host=host) == 2
        assert (
            _sample(registry, "rest_client_request_duration_seconds_bucket", verb="GET", host=host, le="60.0")
            == 2
        )


async def test_cancelled_watch_releases_its_connection(registry: CollectorRegistry) -> None:
    async def handler(req: Received) -> Reply:
        async def body() -> AsyncIterator[bytes]:
            yield b"".join(_watch_lines({"type": "ADDED", "object": _cm("a")}))
            await anyio.sleep_forever()

        return 200, [("content-type", "application/json")], body()

    async def consume(api: Api, started: anyio.Event) -> None:
        async with api.watch() as events:
            async for _ in events:
                started.set()

    async with (
        LoopbackServer(handler) as server,
        _client(server.url, registry, max_watches=1, max_concurrent_requests=0, pool_timeout=5) as client,
    ):
        api = Api(client, CONFIGMAPS, "ns")
        async with anyio.create_task_group() as tg:
            started = anyio.Event()
            tg.start_soon(consume, api, started)
            await started.wait()
            tg.cancel_scope.cancel()
        with anyio.fail_after(5):  # the only connection in the pool must be free again
            async with api.watch() as events:
                assert isinstance(await events.__anext__(), WatchEvent)


async def test_watch_reset_by_the_peer_raises_transport_error(registry: CollectorRegistry) -> None:
    """A TCP reset (RST) during an untimed watch read is a TransportError, not a quiet end."""
    import socket
    import struct

    line = orjson.dumps({"type": "ADDED", "object": _cm("a")}) + b"\n"
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    chunk = f"{len(line):x}\r\n".encode() + line + b"\r\n"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    served = anyio.Event()

    async def serve() -> None:
        conn, _ = await anyio.to_thread.run_sync(_accept, listener)
        with conn:
            await anyio.to_thread.run_sync(conn.recv, 65536)
            conn.sendall(head + chunk)
            await served.wait()
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # closing with SO_LINGER 0 sends RST instead of FIN

    received: list[Any] = []

    async def consume(client: Client) -> None:
        async with Api(client, CONFIGMAPS, "ns").watch() as events:
            async for item in events:
                received.append(item)
                served.set()

    async with anyio.create_task_group() as tg, _client(f"http://127.0.0.1:{port}", registry) as client:
        assert client.untimed_reads
        tg.start_soon(serve)
        with pytest.raises(TransportError, match="stream broken"):
            await consume(client)
    listener.close()
    assert len(received) == 1


def _accept(listener: Any) -> Any:
    import select

    select.select([listener], [], [], 30)
    return listener.accept()
