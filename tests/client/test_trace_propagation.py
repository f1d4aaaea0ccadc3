"""The client carries each request span's trace context to the API server (``traceparent``)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.client.config import ClientConfig
from kube_runtime.client.retry import RetryPolicy
from tests.client.conftest import Traces
from tests.client.loopback import LoopbackServer, Received, Reply

pytestmark = pytest.mark.anyio

CONFIGMAPS = ApiResource.builtin("ConfigMap")
CM = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"ns","resourceVersion":"1"}}'


def _answers() -> Any:
    """A 503 for the first GET of ``a`` (the client retries it), then the object; watches get one
    event and stay open."""
    seen: list[str] = []

    async def answer(req: Received) -> Reply:
        if "watch=" in req.target:

            async def events() -> Any:
                yield b'{"type":"ADDED","object":' + CM + b"}\n"
                await anyio.sleep_forever()

            return 200, [("content-type", "application/json")], events()
        seen.append(req.path)
        if seen.count(req.path) == 1 and req.path.endswith("/a"):
            return 503, [("content-type", "application/json"), ("retry-after", "0")], b"{}"
        return 200, [("content-type", "application/json")], CM

    return answer


async def _requests(server: LoopbackServer, provider: TracerProvider | None) -> None:
    config = ClientConfig(server=server.url)
    retry = RetryPolicy(initial_backoff=0.001, max_backoff=0.001)
    async with Client(
        config, tracer_provider=provider, metrics_registry=CollectorRegistry(), retry_policy=retry
    ) as client:
        api = Api(client, CONFIGMAPS, "ns")
        await api.get("a")
        async with api.watch(resource_version="1") as events:
            await events.__anext__()


def _traceparent(context: trace.SpanContext) -> str:
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


async def test_every_attempt_carries_its_request_spans_traceparent(traces: Traces) -> None:
    async with LoopbackServer(_answers()) as server:
        with traces.provider.get_tracer("test").start_as_current_span("reconcile"):
            await _requests(server, traces.provider)
    spans = {span.name: span.context for span in traces.spans()}
    get, watch = spans["get"], spans["watch"]
    sent = [(r.path, r.headers.get("traceparent")) for r in server.received]
    assert sent == [
        ("/api/v1/namespaces/ns/configmaps/a", _traceparent(get)),
        ("/api/v1/namespaces/ns/configmaps/a", _traceparent(get)),
        ("/api/v1/namespaces/ns/configmaps", _traceparent(watch)),
    ]
    assert get.trace_id == spans["reconcile"].trace_id
    assert get.trace_flags.sampled


async def test_an_unsampled_request_says_so_and_no_provider_sends_nothing() -> None:
    async with LoopbackServer(_answers()) as server:
        await _requests(server, TracerProvider(sampler=ParentBased(ALWAYS_OFF)))
    flags = [int(r.headers["traceparent"].rsplit("-", 1)[1], 16) for r in server.received]
    assert len(flags) == 3
    assert not any(flag & 1 for flag in flags)  # the sampled bit
    async with LoopbackServer(_answers()) as server:
        await _requests(server, trace.NoOpTracerProvider())
    assert [r.headers.get("traceparent") for r in server.received] == [None, None, None]
