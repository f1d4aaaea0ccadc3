"""Fixtures for the observability tests: a fresh metrics registry and an in-memory span exporter
installed as the process-wide tracer provider (OpenTelemetry allows setting it only once)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

_EXPORTER = InMemorySpanExporter()
_installed: list[TracerProvider] = []


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    if not _installed:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
        _installed.append(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()
