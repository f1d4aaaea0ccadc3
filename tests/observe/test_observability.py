"""The one-object setup: a controller built the ordinary way, wired with add_controller, its
probes and metrics served over HTTP."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime.client.api import Api
from kube_runtime.client.client import Client
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import Action
from kube_runtime.controller.controller import Controller
from kube_runtime.observe import Observability, ServerOptions
from kube_runtime.testing.server import ApiServer

CM = ApiResource.builtin("ConfigMap")


async def test_add_controller_wires_probes_and_metrics(api_server: ApiServer) -> None:
    registry = CollectorRegistry()
    options = ServerOptions(metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0")
    async with Client.from_kubeconfig(str(api_server.kubeconfig_path), metrics_registry=registry) as client:
        api = Api(client, CM, "default")
        for name in ("a", "b"):
            await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
        controller = Controller(api, name="cms", registry=registry)
        obs = Observability(options, registry=registry, lag_interval=0.05)
        recorder = obs.add_controller(controller)
        with pytest.raises(ValueError, match="already added"):
            obs.add_controller(controller)

        async def reconcile(_obj: dict[str, Any], _ctx: None) -> Action:
            return Action.requeue(3600)

        seen = 0
        run = controller.run(reconcile, None, None)
        async with obs, httpx.AsyncClient(timeout=10) as http:
            health, metrics = obs.server.health_url, obs.server.metrics_url
            assert (await http.get(f"{health}/readyz/cms")).status_code == 503
            async with run as results:
                async for _ in recorder.observe(results):
                    seen += 1
                    if seen == 2:
                        ready = await http.get(f"{health}/readyz?verbose")
                        live = await http.get(f"{health}/livez?verbose")
                        text = (await http.get(f"{metrics}/metrics")).text
                        run.shutdown()
        async with httpx.AsyncClient(timeout=10) as late:
            with pytest.raises(httpx.ConnectError):  # the server stopped with the block
                await late.get(f"{health}/livez")
    assert ready.text.splitlines() == ["[+]cms ok", "readyz check passed"]
    assert live.text.splitlines() == ["[+]cms ok", "livez check passed"]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert (
        samples[("controller_runtime_reconcile_total", (("controller", "cms"), ("result", "requeue_after")))]
        == 2
    )
    assert samples[("kube_runtime_store_objects", (("store", "cms"),))] == 2
    assert ("kube_runtime_event_loop_lag_seconds_count", ()) in samples
