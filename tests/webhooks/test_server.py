"""The webhook server over real TLS on loopback: reviews verified by the self-signed CA, and the
serving pair rotated on disk while requests flow (none fails, established connections stay, new
handshakes present the new certificate), including a rotation caught half way."""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio
import httpx
import pytest
from cryptography import x509
from prometheus_client import CollectorRegistry

from kube_runtime.webhooks import AdmissionRequest, Rule, Verdict, Webhooks, allow
from kube_runtime.webhooks.certs import ReloadingCertificate, SelfSignedCA
from kube_runtime.webhooks.server import WebhookServer
from tests.webhooks.conftest import admission_body, widget

RULES = [Rule(("example.com",), ("v1",), ("widgets",))]
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


async def test_rotating_the_files_while_requests_flow_fails_none_and_new_handshakes_get_the_new_cert(
    tmp_path: Path, registry: CollectorRegistry
) -> None:
    hooks = Webhooks(registry=registry)
    hooks.validating("/validate", always, name="v.example.com", rules=RULES)
    ca = SelfSignedCA()
    pair = ca.issue(tmp_path)
    old_serial = serial_of_file(pair.cert_file)
    server = WebhookServer(
        hooks,
        cert_file=pair.cert_file,
        key_file=pair.key_file,
        bind_address="127.0.0.1:0",
        poll_interval=0.02,
        registry=registry,
    )
    failures: list[str] = []
    warm = {name: anyio.Event() for name in ("fresh-1", "fresh-2", "kept")}
    rotated = anyio.Event()
    serials_after: dict[str, set[int]] = {name: set() for name in warm}
    body = admission_body(widget())

    async def traffic(name: str, kept: httpx.AsyncClient | None) -> None:
        done = after = 0
        while after < 30:
            client = kept or httpx.AsyncClient(verify=pair.client_context(), timeout=10)
            started_after_rotation = rotated.is_set()
            try:
                response = await client.post(f"{server.url}/validate", content=body, headers=JSON)
                if response.status_code != 200 or response.json()["response"]["allowed"] is not True:
                    failures.append(f"{name}: {response.status_code} {response.text}")
                if started_after_rotation:
                    after += 1
                    serials_after[name].add(serial_of_response(response))
            except httpx.HTTPError as exc:
                failures.append(f"{name}: {exc!r}")
                return
            finally:
                if kept is None:
                    await client.aclose()
            done += 1
            if done == 5:
                warm[name].set()

    async with server, httpx.AsyncClient(verify=pair.client_context(), timeout=10) as kept:
        async with anyio.create_task_group() as tg:
            tg.start_soon(traffic, "fresh-1", None)
            tg.start_soon(traffic, "fresh-2", None)
            tg.start_soon(traffic, "kept", kept)
            for event in warm.values():
                await event.wait()
            new_pair = ca.issue(tmp_path)  # same paths, new certificate and key
            with anyio.fail_after(10):
                await server.certificate.wait_generation(2)
            rotated.set()
        new_serial = serial_of_file(new_pair.cert_file)
        assert await handshake_serial(server.url, pair.client_context()) == new_serial
    assert failures == []
    assert new_serial != old_serial
    assert serials_after["fresh-1"] == serials_after["fresh-2"] == {new_serial}
    assert serials_after["kept"] == {old_serial}  # the established connection was never dropped
    assert (
        registry.get_sample_value("kube_runtime_webhook_certificate_reloads_total", {"result": "success"})
        == 2
    )


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
