"""The webhook server over real TLS on loopback: reviews verified by the self-signed CA, and the
serving pair rotated on disk while requests flow (none fails, established connections stay, new
handshakes present the new certificate), including a rotation caught half way."""

from __future__ import annotations

import contextlib
import socket
import ssl
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography import x509
from prometheus_client import CollectorRegistry

from kube_runtime.webhooks import AdmissionRequest, Verdict, WebhookRule, Webhooks, allow
from kube_runtime.webhooks.certs import ReloadingCertificate, SelfSignedCA
from kube_runtime.webhooks.server import WebhookServer
from tests.webhooks.conftest import admission_body, widget

RULES = [WebhookRule(("example.com",), ("v1",), ("widgets",))]
JSON = {"content-type": "application/json"}


async def always(request: AdmissionRequest) -> Verdict:
    return allow()


def serial_of_file(path: Path) -> int:
    return x509.load_pem_x509_certificate(path.read_bytes()).serial_number


def serial_of_response(response: httpx.Response) -> int:
    ssl_object: ssl.SSLObject = response.extensions["network_stream"].get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def handshake_serial(url: str, context: ssl.SSLContext) -> int:
    host, port = url.removeprefix("https://").rsplit(":", 1)
    stream = await anyio.connect_tcp(
        host, int(port), ssl_context=context, tls=True, tls_standard_compatible=False
    )
    async with stream:
        der = stream.extra(anyio.streams.tls.TLSAttribute.peer_certificate_binary)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


async def test_reviews_are_served_over_tls_verified_by_the_self_signed_ca(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    hooks = Webhooks(registry=registry)
    hooks.validating("/validate", always, name="v.example.com", rules=RULES)
    pair = SelfSignedCA().issue(tmp_path, hosts=["localhost", "127.0.0.1"])
    server = WebhookServer(
        hooks, cert_file=pair.cert_file, key_file=pair.key_file, bind_address="127.0.0.1:0", registry=registry
    )
    async with server, httpx.AsyncClient(verify=pair.client_context(), timeout=10) as http:
        response = await http.post(
            f"{server.url}/validate", content=admission_body(widget(), uid="tls"), headers=JSON
        )
        assert response.json()["response"] == {"uid": "tls", "allowed": True}
        untrusted = ssl.create_default_context()  # the system CAs do not know our CA
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            async with httpx.AsyncClient(verify=untrusted) as other:
                await other.post(f"{server.url}/validate", content=b"{}", headers=JSON)
    assert (tmp_path / "ca.crt").read_bytes() == pair.ca_pem


FRESH_CLIENTS = 4  # a new TLS connection per request
KEPT_CLIENTS = 2  # one keep-alive connection each, opened before the first rotation
ROTATIONS = 3
PER_ROUND = 5  # requests each client completes at every certificate generation


async def test_rotating_the_files_while_requests_flow_fails_none_and_new_handshakes_get_the_new_cert(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    """Several clients send reviews back to back while the pair is replaced on disk three times:
    no request fails, each request on a new connection after a reload presents that reload's
    certificate, and the keep-alive connections are never dropped (they keep the first one)."""
    hooks = Webhooks(registry=registry)
    hooks.validating("/validate", always, name="v.example.com", rules=RULES)
    ca = SelfSignedCA()
    pair = ca.issue(tmp_path)
    serials = [serial_of_file(pair.cert_file)]  # serials[g - 1]: the certificate of generation g
    server = WebhookServer(
        hooks,
        cert_file=pair.cert_file,
        key_file=pair.key_file,
        bind_address="127.0.0.1:0",
        poll_interval=0.02,
        registry=registry,
    )
    names = [f"fresh-{i}" for i in range(FRESH_CLIENTS)] + [f"kept-{i}" for i in range(KEPT_CLIENTS)]
    failures: list[str] = []
    seen: dict[str, list[tuple[int, int]]] = {name: [] for name in names}  # (generation, serial)
    done_at: dict[tuple[str, int], int] = {}
    ready_at: dict[int, int] = {}
    round_done = {g: anyio.Event() for g in range(1, ROTATIONS + 2)}
    stop = anyio.Event()
    body = admission_body(widget())

    async def traffic(name: str, kept: httpx.AsyncClient | None) -> None:
        while not stop.is_set():
            started_at = server.certificate.generation  # loads so far
            client = kept or httpx.AsyncClient(verify=pair.client_context(), timeout=10)
            try:
                response = await client.post(f"{server.url}/validate", content=body, headers=JSON)
            except httpx.HTTPError as exc:
                failures.append(f"{name}: {exc!r}")
                return
            finally:
                if kept is None:
                    await client.aclose()
            if response.status_code != 200 or response.json()["response"]["allowed"] is not True:
                failures.append(f"{name}: {response.status_code} {response.text}")
            seen[name].append((started_at, serial_of_response(response)))
            done_at[name, started_at] = done_at.get((name, started_at), 0) + 1
            if done_at[name, started_at] == PER_ROUND:
                ready_at[started_at] = ready_at.get(started_at, 0) + 1
                if ready_at[started_at] == len(names):
                    round_done[started_at].set()

    async with server, contextlib.AsyncExitStack() as stack:
        kept = [
            await stack.enter_async_context(httpx.AsyncClient(verify=pair.client_context(), timeout=10))
            for _ in range(KEPT_CLIENTS)
        ]
        async with anyio.create_task_group() as tg:
            for i in range(FRESH_CLIENTS):
                tg.start_soon(traffic, f"fresh-{i}", None)
            for i, client in enumerate(kept):
                tg.start_soon(traffic, f"kept-{i}", client)
            with anyio.fail_after(60):
                for generation in range(1, ROTATIONS + 1):
                    await round_done[generation].wait()
                    serials.append(serial_of_file(ca.issue(tmp_path).cert_file))  # same paths, new pair
                    await server.certificate.wait_generation(generation + 1)
                await round_done[ROTATIONS + 1].wait()
            stop.set()
        assert await handshake_serial(server.url, pair.client_context()) == serials[-1]
    assert failures == []
    assert len(set(serials)) == ROTATIONS + 1
    for name in names:
        assert {g for g, _ in seen[name]} == set(range(1, ROTATIONS + 2)), name
        if name.startswith("fresh"):
            # a new connection gets the pair loaded when it handshakes: the one of the generation
            # its request started at, or the next when a reload landed before its handshake
            assert all(serials.index(serial) in (g - 1, g) for g, serial in seen[name]), name
            got = {(g, serials.index(serial)) for g, serial in seen[name]}
            assert {(g, g - 1) for g in range(1, ROTATIONS + 2)} <= got, name
        else:  # the keep-alive connection was never dropped, so it never handshook again
            assert {serial for _, serial in seen[name]} == {serials[0]}, name
    reloads = registry.get_sample_value(
        "kube_runtime_webhook_certificate_reloads_total", {"result": "success"}
    )
    assert reloads == ROTATIONS + 1


async def test_a_half_written_rotation_keeps_serving_the_old_pair_until_the_key_arrives(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    hooks = Webhooks(registry=registry)
    hooks.validating("/validate", always, name="v.example.com", rules=RULES)
    ca = SelfSignedCA()
    pair = ca.issue(tmp_path / "live")
    old_serial = serial_of_file(pair.cert_file)
    staged = ca.issue(tmp_path / "staged")
    new_serial = serial_of_file(staged.cert_file)
    server = WebhookServer(
        hooks,
        cert_file=pair.cert_file,
        key_file=pair.key_file,
        bind_address="127.0.0.1:0",
        poll_interval=3600,  # reloads are driven by the test
        registry=registry,
    )
    async with server:
        certificate = server.certificate
        pair.cert_file.write_bytes(staged.cert_file.read_bytes())  # new certificate, old key
        assert certificate.changed_on_disk()
        assert certificate.reload() is False
        assert (
            registry.get_sample_value("kube_runtime_webhook_certificate_reloads_total", {"result": "error"})
            == 1
        )
        assert certificate.generation == 1
        assert await handshake_serial(server.url, pair.client_context()) == old_serial
        pair.key_file.write_bytes(staged.key_file.read_bytes())
        assert certificate.reload() is True
        assert certificate.generation == 2
        assert await handshake_serial(server.url, pair.client_context()) == new_serial


def test_a_pair_that_does_not_load_is_refused_up_front(tmp_path: Path) -> None:
    ca = SelfSignedCA()
    one, other = ca.issue(tmp_path / "one"), ca.issue(tmp_path / "other")
    with pytest.raises(ssl.SSLError, match="cannot load the serving pair"):
        ReloadingCertificate(one.cert_file, other.key_file, registry=CollectorRegistry())


async def test_the_started_check_is_ready_only_while_the_server_serves_tls(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    from kube_runtime.observe.health import HealthChecks

    hooks = Webhooks(registry=registry)
    hooks.validating("/validate", always, name="v.example.com", rules=RULES)
    pair = SelfSignedCA().issue(tmp_path)
    server = WebhookServer(
        hooks, cert_file=pair.cert_file, key_file=pair.key_file, bind_address="127.0.0.1:0", registry=registry
    )
    checks = HealthChecks()
    checks.add_readyz("webhooks", server.started_check())
    assert [(r.name, r.ok, r.reason) for r in await checks.run("readyz")] == [
        ("webhooks", False, "webhook server not started")
    ]
    async with server:
        assert [(r.name, r.ok) for r in await checks.run("readyz")] == [("webhooks", True)]
    assert not (await checks.run("readyz"))[0].ok


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_accepted_connections_get_tcp_nodelay(host: str) -> None:
    """With Nagle's algorithm on, a response written as two TLS records waits for the client's
    delayed ACK (about 40 ms per review): accepted sockets of the listener the webhook and
    observability servers bind must be TCP sockets asyncio turns it off for, and have it off."""
    from kube_runtime.observe.server import tcp_listener

    listener = tcp_listener(host, 0, backlog=8)
    with listener, socket.create_connection(listener.getsockname()[:2]):
        listener.setblocking(True)
        accepted, _ = listener.accept()
        with accepted:
            assert accepted.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only then
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
