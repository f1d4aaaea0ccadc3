"""The one-object setup: a controller built the ordinary way, wired with add_controller, its
probes and metrics served over HTTP."""

from __future__ import annotations

from typing import Any

import anyio
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
from kube_runtime.store import SharedReflector, store
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import watcher

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


def samples_of(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in registry.collect()
        for s in family.samples
    }


async def test_run_records_every_result_and_hands_it_on(api_server: ApiServer) -> None:
    """One call instead of ``async with run as results: async for _ in recorder.observe(results)``."""
    registry = CollectorRegistry()
    api = Api(api_server.client, CM, "default")
    for name in ("a", "b", "c"):
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    stop = anyio.Event()
    controller = Controller(api, name="cms", registry=registry).graceful_shutdown_on(stop)
    obs = Observability(ServerOptions("0", "0"), registry=registry)

    async def reconcile(obj: dict[str, Any], seen: list[str]) -> Action:
        if obj["metadata"]["name"] == "b":
            raise ValueError("b is broken")
        return Action.await_change()

    def error_policy(_obj: dict[str, Any], _error: Exception, _seen: list[str]) -> Action:
        return Action.await_change()

    handed: list[Any] = []

    async def on_item(item: Any) -> None:
        handed.append(item)
        if len(handed) == 3:
            stop.set()

    with anyio.fail_after(30):
        await obs.run(controller, reconcile, error_policy, [], on_item=on_item)
    assert sorted(str(getattr(item, "obj_ref", None) or item[0]) for item in handed) == [
        f"ConfigMap.v1./{name}.default" for name in ("a", "b", "c")
    ]
    samples = samples_of(registry)
    assert (
        samples[("controller_runtime_reconcile_total", (("controller", "cms"), ("result", "success")))] == 2
    )
    assert samples[("controller_runtime_reconcile_errors_total", (("controller", "cms"),))] == 1
    assert (
        samples[("kube_runtime_watch_events_total", (("type", "init_apply"), ("watch", "cms/ConfigMap")))]
        == 3
    )
    assert obs.recorders["cms"].progress is not None  # /livez/cms follows the run

    # Running it again (``stop`` is set: it stops at once) reuses the wiring; another controller
    # under the same name is refused.
    await obs.run(controller, reconcile, error_policy, [], on_item=lambda item: None)
    with pytest.raises(ValueError, match="another controller named 'cms'"):
        await obs.run(Controller(api, name="cms", registry=registry), reconcile, None, [])


async def test_a_shared_store_is_published_once(api_server: ApiServer) -> None:
    """Two controllers on one cache used to publish it twice (store="annotator" and
    store="validator"), so sum(kube_runtime_store_objects) counted every object twice."""
    registry = CollectorRegistry()
    api = Api(api_server.client, CM, "default")
    for name in ("a", "b"):
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
    reader, writer = store(CM)
    shared = SharedReflector(writer, watcher(api).default_backoff())
    annotator = Controller.for_shared(shared, name="annotator", registry=registry)
    validator = Controller.for_shared(shared, name="validator", registry=registry)
    obs = Observability(ServerOptions("0", "0"), registry=registry)
    obs.add_controller(annotator)
    obs.add_controller(validator)
    assert obs.store_names == {"annotator": "annotator", "validator": "annotator"}
    async with shared:
        with anyio.fail_after(30):
            await reader.wait_until_ready()
        samples = samples_of(registry)
        objects = {labels: v for (name, labels), v in samples.items() if name == "kube_runtime_store_objects"}
        assert objects == {(("store", "annotator"),): 2}
        ready = {labels: v for (name, labels), v in samples.items() if name == "kube_runtime_store_ready"}
        assert ready == {(("store", "annotator"),): 1}
        # Readiness stays a check per controller.
        assert sorted(obs.checks.names("readyz")) == ["annotator", "validator"]

    # An explicit name wins, whichever controller gives it.
    named = Observability(ServerOptions("0", "0"), registry=(other := CollectorRegistry()))
    named.add_controller(Controller.for_shared(shared, name="first", registry=other))
    named.add_controller(
        Controller.for_shared(shared, name="second", registry=other), store_name="configmaps"
    )
    objects = [labels for (name, labels) in samples_of(other) if name == "kube_runtime_store_objects"]
    assert objects == [(("store", "configmaps"),)]
