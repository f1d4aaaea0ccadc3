"""The health and metrics server over real HTTP (uvicorn on loopback): controller-runtime's
/readyz and /livez semantics, /metrics in the text format, secure metrics, the task dump."""

from __future__ import annotations

import argparse
import socket
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime.observe.health import HealthChecks
from kube_runtime.observe.server import ObservabilityServer, ServerOptions, parse_bind_address
from kube_runtime.store.store import store
from kube_runtime.watcher.event import Init, InitDone

LOCAL = ServerOptions(metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0")


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def test_parse_bind_address() -> None:
    assert parse_bind_address(":8080") == ("0.0.0.0", 8080)
    assert parse_bind_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_bind_address("[::1]:9") == ("::1", 9)
    assert parse_bind_address("0") is None
    assert parse_bind_address("") is None
    for bad in ("8080", "host:port", ":70000"):
        with pytest.raises(ValueError, match="port"):
            parse_bind_address(bad)


def test_command_line_flags() -> None:
    parser = argparse.ArgumentParser()
    ServerOptions.add_arguments(parser)
    options = ServerOptions.from_arguments(
        parser.parse_args(["--metrics-bind-address=:8443", "--metrics-secure", "--enable-task-dump"])
    )
    assert options == ServerOptions(
        metrics_bind_address=":8443",
        health_probe_bind_address=":8081",
        metrics_secure=True,
        enable_task_dump=True,
    )
    assert ServerOptions.from_arguments(parser.parse_args([])) == ServerOptions()


async def test_readyz_follows_the_store_and_reports_like_controller_runtime(http: httpx.AsyncClient) -> None:
    reader, writer = store(gc_policy=None)
    checks = HealthChecks()
    checks.add_store("configmaps", reader)
    checks.add_readyz("always", lambda: None)
    async with ObservabilityServer(LOCAL, checks=checks, registry=CollectorRegistry()) as server:
        base = server.health_url
        assert base is not None
        assert base != server.metrics_url

        r = await http.get(f"{base}/readyz")
        assert r.status_code == 503
        assert r.text.splitlines() == [
            "[-]configmaps failed: store has not completed its initial list",
            "[+]always ok",
            "readyz check failed",
        ]
        assert (await http.get(f"{base}/readyz/configmaps")).status_code == 503
        assert (await http.get(f"{base}/readyz/always")).text == "ok"
        excluded = await http.get(f"{base}/readyz", params={"exclude": "configmaps"})
        assert (excluded.status_code, excluded.text) == (200, "ok")

        writer.apply_watcher_event(Init())
        writer.apply_watcher_event(InitDone())
        r = await http.get(f"{base}/readyz")
        assert (r.status_code, r.text) == (200, "ok")
        r = await http.get(f"{base}/readyz?verbose&exclude=always&exclude=nope")
        assert r.status_code == 200
        assert r.text.splitlines() == [
            "[+]configmaps ok",
            "warn: some health checks cannot be excluded: no matches for nope",
            "readyz check passed",
        ]
        assert (await http.get(f"{base}/readyz/unknown")).status_code == 404
        # liveness with no check registered: the built-in ping
        assert (await http.get(f"{base}/livez?verbose")).text.splitlines() == [
            "[+]ping ok",
            "livez check passed",
        ]
        assert (await http.get(f"{base}/healthz")).text == "ok"
        assert (await http.get(f"{base}/metrics")).status_code == 404  # metrics live on their own port


async def test_failing_and_hanging_checks_are_failures_not_server_errors(http: httpx.AsyncClient) -> None:
    def crash() -> None:
        raise RuntimeError("kaput")

    async def hang() -> None:
        await anyio.sleep_forever()

    checks = HealthChecks(timeout=0.2)
    checks.add_livez("crash", crash)
    checks.add_livez("hang", hang)
    checks.add_livez("no", lambda: False)
    async with ObservabilityServer(LOCAL, checks=checks, registry=CollectorRegistry()) as server:
        r = await http.get(f"{server.health_url}/livez")
    assert r.status_code == 503
    assert r.text.splitlines() == [
        "[-]crash failed: RuntimeError: kaput",
        "[-]hang failed: timed out after 0.2s",
        "[-]no failed: check failed",
        "livez check failed",
    ]


def test_check_names_are_validated() -> None:
    checks = HealthChecks()
    checks.add_readyz("a", lambda: None)
    with pytest.raises(ValueError, match="already registered"):
        checks.add_readyz("a", lambda: None)
    with pytest.raises(ValueError, match="invalid check name"):
        checks.add_readyz("a/b", lambda: None)


async def test_metrics_endpoint_serves_the_registry(http: httpx.AsyncClient) -> None:
    registry = CollectorRegistry()
    Counter("demo_things", "Things", ["kind"], registry=registry).labels("x").inc(3)
    async with ObservabilityServer(LOCAL, registry=registry) as server:
        r = await http.get(f"{server.metrics_url}/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        families = {f.name: f for f in text_string_to_metric_families(r.text)}
        assert families["demo_things"].samples[0].value == 3
        om = await http.get(
            f"{server.metrics_url}/metrics", headers={"Accept": "application/openmetrics-text"}
        )
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert (await http.get(f"{server.metrics_url}/debug/tasks")).status_code == 404  # off by default


async def test_one_address_serves_metrics_and_probes(http: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"127.0.0.1:{port}"
    options = ServerOptions(
        metrics_bind_address=address, health_probe_bind_address=address, enable_task_dump=True
    )
    async with ObservabilityServer(options, registry=CollectorRegistry()) as server:
        assert server.metrics_url == server.health_url == f"http://{address}"
        assert (await http.get(f"{server.metrics_url}/metrics")).status_code == 200
        assert (await http.get(f"{server.metrics_url}/readyz")).text == "ok"
        dump = await http.get(f"{server.metrics_url}/debug/tasks")
        assert dump.status_code == 200
        assert "asyncio tasks" in dump.text


async def test_disabled_listeners_and_clean_shutdown(http: httpx.AsyncClient) -> None:
    options = ServerOptions(metrics_bind_address="0", health_probe_bind_address="127.0.0.1:0")
    async with ObservabilityServer(options, registry=CollectorRegistry()) as server:
        assert server.metrics_url is None
        url = server.health_url
        assert (await http.get(f"{url}/livez")).status_code == 200
    with pytest.raises(httpx.ConnectError):
        await http.get(f"{url}/livez")


async def test_runs_inside_the_callers_task_group(http: httpx.AsyncClient) -> None:
    async with anyio.create_task_group() as tg:
        server: ObservabilityServer = await tg.start(
            ObservabilityServer(LOCAL, registry=CollectorRegistry()).run
        )
        assert (await http.get(f"{server.health_url}/readyz")).status_code == 200
        tg.cancel_scope.cancel()


async def test_bind_failure_raises_and_leaks_nothing() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        options = ServerOptions(
            metrics_bind_address="127.0.0.1:0", health_probe_bind_address=f"127.0.0.1:{port}"
        )
        with pytest.raises(OSError, match="in use"):
            async with ObservabilityServer(options, registry=CollectorRegistry()):
                pass


def test_secure_metrics_need_a_client_or_an_authorizer() -> None:
    with pytest.raises(ValueError, match=r"client=.*or an authorizer"):
        ObservabilityServer(ServerOptions(metrics_secure=True))
