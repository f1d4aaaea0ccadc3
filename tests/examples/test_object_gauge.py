"""examples.object_gauge: a gauge series per ConfigMap, scraped over HTTP, that follows updates and
disappears with the ConfigMap (deleted outright, or held by a finalizer while being deleted)."""

from __future__ import annotations

import base64
from typing import Any

from examples.object_gauge.main import CONFIG_MAP, data_size
from kube_runtime.client import Api
from kube_runtime.testing import ApiServer
from tests.examples.process import Samples, run_example, value

MODULE = "examples.object_gauge"
HOLD = "example.com/hold"


def config_map(name: str, data: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data, **extra}


def keys(samples: Samples, name: str) -> float | None:
    return value(samples, "configmap_data_keys", name=name, namespace="default")


def size(samples: Samples, name: str) -> float | None:
    return value(samples, "configmap_data_bytes", name=name, namespace="default")


def ref(name: str) -> str:
    return f"ConfigMap.v1./{name}.default"


def test_data_size_counts_decoded_binary_data() -> None:
    cm = config_map("x", {"a": "héllo"}, binaryData={"blob": base64.b64encode(b"\x00" * 10).decode()})
    assert data_size(cm) == 6 + 10


async def test_series_follow_objects_and_go_with_them(api_server: ApiServer) -> None:
    api = Api(api_server.client, CONFIG_MAP, "default")
    await api.create(config_map("web", {"listen": ":80", "workers": "4"}))
    await api.create(config_map("db", {"url": "postgres://db"}))
    await api.create(config_map("held", {"k": "v"}, metadata={"name": "held", "finalizers": [HOLD]}))
    async with run_example(MODULE, kubeconfig=api_server.kubeconfig_path) as ex:
        for name in ("web", "db", "held"):
            await ex.wait_for_log("gauges set", **{"object.ref": ref(name)})
        samples = await ex.scrape()
        assert (keys(samples, "web"), size(samples, "web")) == (2, 4)
        assert (keys(samples, "db"), size(samples, "db")) == (1, 13)
        assert (keys(samples, "held"), size(samples, "held")) == (1, 1)

        # An update changes the value in place.
        await api.patch("web", {"data": {"timeout": "30s"}})
        await ex.wait_for_log("gauges set", keys=3, **{"object.ref": ref("web")})
        samples = await ex.scrape()
        assert (keys(samples, "web"), size(samples, "web")) == (3, 7)

        # Deleted: once the controller's cache has dropped it, its series are gone from the scrape.
        await api.delete("db")
        await ex.scrape_until(lambda s: value(s, "kube_runtime_store_objects", store="configmap") == 2)
        samples = await ex.scrape()
        assert keys(samples, "db") is None
        assert size(samples, "db") is None
        assert keys(samples, "web") == 3

        # Being deleted behind a finalizer: still cached, but the reconciler removed its series.
        await api.delete("held")
        await ex.scrape_until(lambda s: keys(s, "held") is None)
        samples = await ex.scrape()
        assert value(samples, "kube_runtime_store_objects", store="configmap") == 2
        assert size(samples, "held") is None
        await api.patch("held", {"metadata": {"finalizers": None}})
        await ex.scrape_until(lambda s: value(s, "kube_runtime_store_objects", store="configmap") == 1)

        success = value(
            samples, "controller_runtime_reconcile_total", controller="configmap", result="success"
        )
        assert success is not None
        assert success >= 5
        assert value(samples, "controller_runtime_reconcile_errors_total", controller="configmap") == 0
        assert (await ex.probe("/readyz/configmap")).status_code == 200
        assert (await ex.probe("/livez")).status_code == 200
        assert await ex.stop() == 0
    assert ex.logs[-1]["event"] == "stopped"
    assert ex.stray == []
    assert ex.library_noise() == []


async def test_embedded_demo_runs_with_one_command() -> None:
    async with run_example(MODULE, "--embedded") as ex:
        finished = await ex.wait_for_log("demo finished: press Ctrl+C to stop")
        assert 'configmap_data_keys{name="web",namespace="default"} 3.0' in finished["series"]
        assert not any('name="db"' in line for line in finished["series"])
        samples = await ex.scrape()
        assert keys(samples, "web") == 3
        assert keys(samples, "cache") == 0
        assert keys(samples, "db") is None
        assert await ex.stop() == 0
    assert ex.stray == []
    assert ex.library_noise() == []


async def test_metrics_secure_flag_requires_a_token(api_server: ApiServer) -> None:
    """``--metrics-secure`` (as the chart passes it) guards /metrics, not the probes."""
    async with run_example(MODULE, "--metrics-secure", kubeconfig=api_server.kubeconfig_path) as ex:
        response = await ex.http.get(f"{ex.metrics_url}/metrics")
        assert response.status_code == 401
        assert "missing bearer token" in response.text
        assert (await ex.probe("/livez")).status_code == 200
        assert await ex.stop() == 0
