"""Shared helpers for controller tests: every test here runs on the virtual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from kube_runtime.client import Api, ApiResource
from kube_runtime.controller import reconcile_span
from kube_runtime.observe.tracing import setup_tracing
from kube_runtime.testing import pytest_plugin
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.testing.server import ApiServer

#: The embedded API server fixture (tests/conftest.py does not load the plugin).
api_server = pytest_plugin.api_server

CONFIG_MAP = ApiResource.builtin("ConfigMap")
SECRET = ApiResource.builtin("Secret")


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


@pytest.fixture
def config_maps(api_server: ApiServer) -> Api:
    return Api(api_server.client, CONFIG_MAP, "default")


@pytest.fixture
def secrets(api_server: ApiServer) -> Api:
    return Api(api_server.client, SECRET, "default")


def config_map(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


async def take_until(
    results: AsyncIterator[Any], done: Callable[[list[Any]], bool], *, within: float = 60.0
) -> list[Any]:
    """Collect items until ``done(items)``; fails after ``within`` virtual seconds."""
    items: list[Any] = []
    with anyio.fail_after(within):
        async for item in results:
            items.append(item)
            if done(items):
                return items
    raise AssertionError(f"result stream ended early: {items}")


@pytest.fixture
def sigint_before() -> object:
    """SIGINT's handler when the test started: what a controller must restore. Not always
    ``default_int_handler``: a process started in the background without job control inherits
    SIG_IGN."""
    import signal

    return signal.getsignal(signal.SIGINT)


@pytest.fixture(params=["sdk", "setup_tracing"])
def spans(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """Reconcile spans recorded in memory, under the SDK's own provider and under the one
    ``setup_tracing`` builds: the span contract holds for both."""
    exporter = InMemorySpanExporter()
    if request.param == "sdk":
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider = setup_tracing("test", exporter=exporter, batch=False, set_global=False, sample_ratio=1.0)
    monkeypatch.setattr(reconcile_span, "_tracer", provider.get_tracer("test"))
    return exporter
