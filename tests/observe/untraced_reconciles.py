"""Run by test_trace_ids.py in a fresh process: reconciles two ConfigMaps on the embedded API server
and logs JSON lines from inside each reconcile to stdout, with no tracer provider installed
(``none``) or with one whose sampler records nothing (``unsampled``)."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import anyio.lowlevel
import structlog
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiResource
from kube_runtime.controller import Action, Controller, Reconciled
from kube_runtime.observe import configure_logging
from kube_runtime.testing import ApiServer

log = structlog.get_logger("untraced")


async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
    log.info("first line", name=obj["metadata"]["name"])
    await anyio.lowlevel.checkpoint()
    log.info("second line", name=obj["metadata"]["name"])
    return Action.await_change()


async def run() -> None:
    async with ApiServer() as server:
        api = Api(server.client, ApiResource.builtin("ConfigMap"), "default")
        for name in ("a", "b"):
            await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        controller = Controller(api, registry=CollectorRegistry())
        done = 0
        async with controller.run(reconcile, None, None) as results:
            async for item in results:
                done += isinstance(item, Reconciled)
                if done == 2:
                    break


def main(mode: str) -> None:
    if mode == "unsampled":
        trace.set_tracer_provider(TracerProvider(sampler=ALWAYS_OFF))
    else:
        assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    configure_logging("warning,untraced=info", fmt="json", stream=sys.stdout)
    anyio.run(run)


if __name__ == "__main__":
    main(sys.argv[1])
