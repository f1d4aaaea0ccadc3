"""examples.pod_reflector: its cache, index and readiness, seen through its logs, probes and metrics."""

from __future__ import annotations

from typing import Any

import anyio

from examples.pod_reflector.main import POD, pods_per_node, reflect_pods
from kube_runtime.client import Api
from kube_runtime.testing import ApiServer
from kube_runtime.watcher import InitDone
from tests.examples.process import run_example, value

MODULE = "examples.pod_reflector"


def pod(name: str, node: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "app:1"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_store_strips_managed_fields_and_indexes_by_node(api_server: ApiServer) -> None:
    api = Api(api_server.client, POD, "default")
    for name, node in (("a", "node-1"), ("b", "node-1"), ("c", "node-2"), ("pending", None)):
        created = await api.create(pod(name, node))
        assert created["metadata"]["managedFields"]  # the server keeps them; the cache must not
    pods, stream = reflect_pods(api_server.client, "default")
    async with stream:
        with anyio.fail_after(30):
            async for event in stream:
                if isinstance(event, InitDone):
                    break
    assert sorted(pods.keys()) == ["default/a", "default/b", "default/c", "default/pending"]
    assert all("managedFields" not in p["metadata"] for p in pods.state())
    assert pods_per_node(pods) == {"node-1": 2, "node-2": 1}  # the unscheduled Pod is not indexed
    assert sorted(p["metadata"]["name"] for p in pods.index("node", "node-1")) == ["a", "b"]


async def test_readiness_follows_the_first_list_and_changes_are_reported(api_server: ApiServer) -> None:
    api = Api(api_server.client, POD, "default")
    await api.create(pod("web-1", "node-a"))
    await api.create(pod("web-2", "node-b"))
    api_server.faults.fail_next(10_000, 403)  # RBAC not granted yet: the list fails
    async with run_example(MODULE, "--namespace", "default", kubeconfig=api_server.kubeconfig_path) as ex:
        await ex.wait_for_log("watch error, retrying")
        readyz = await ex.probe("/readyz")
        assert readyz.status_code == 503
        assert "[-]pods failed" in readyz.text
        assert (await ex.probe("/livez")).status_code == 200
        samples = await ex.scrape()
        assert value(samples, "kube_runtime_store_ready", store="pods") == 0
        assert (value(samples, "kube_runtime_watch_errors_total", watch="pods", code="403") or 0) >= 1

        api_server.faults.reset()  # granted: the next retry lists
        ready = await ex.wait_for_log("store ready")
        assert ready["pods"] == 2
        assert ready["per_node"] == {"node-a": 1, "node-b": 1}
        assert (await ex.probe("/readyz")).status_code == 200

        await api.create(pod("worker-1", "node-a"))
        applied = await ex.wait_for_log("pod applied", pod="default/worker-1")
        assert (applied["node"], applied["pods"]) == ("node-a", 3)
        assert applied["per_node"] == {"node-a": 2, "node-b": 1}
        await api.delete("web-2")
        deleted = await ex.wait_for_log("pod deleted", pod="default/web-2")
        assert (deleted["pods"], deleted["per_node"]) == (2, {"node-a": 2})

        samples = await ex.scrape()
        assert value(samples, "kube_runtime_store_objects", store="pods") == 2
        assert value(samples, "kube_runtime_store_ready", store="pods") == 1
        assert value(samples, "kube_runtime_watch_events_total", watch="pods", type="init_apply") == 2
        assert value(samples, "kube_runtime_watch_events_total", watch="pods", type="delete") == 1
        assert value(samples, "kube_runtime_watch_restarts_total", watch="pods") == 1

        assert await ex.stop() == 0
    assert ex.logs[-1]["event"] == "stopped"
    assert any(
        r["event"].startswith("graceful shutdown requested") and r["signal"] == "SIGTERM" for r in ex.logs
    )
    assert ex.stray == []  # every stderr line is a JSON log record
    assert ex.library_noise() == []


async def test_embedded_demo_runs_with_one_command() -> None:
    async with run_example(MODULE, "--embedded") as ex:
        ready = await ex.wait_for_log("store ready")
        assert (ready["pods"], ready["per_node"]) == (3, {"node-a": 2, "node-b": 1})
        await ex.wait_for_log("pod applied", pod="default/worker-2", pods=4)
        await ex.wait_for_log("pod deleted", pod="default/web-1", pods=3)
        samples = await ex.scrape()
        assert value(samples, "kube_runtime_store_objects", store="pods") == 3
        assert value(samples, "kube_runtime_watch_events_total", watch="pods", type="apply") == 1
        assert (await ex.probe("/readyz")).status_code == 200
        assert await ex.stop() == 0
    assert ex.stray == []
    assert ex.library_noise() == []


async def test_run_for_bounds_the_run(api_server: ApiServer) -> None:
    async with run_example(MODULE, "--run-for", "0.5", kubeconfig=api_server.kubeconfig_path) as ex:
        with anyio.fail_after(60):
            assert await ex.process.wait() == 0
    assert ex.logs[-1]["event"] == "stopped"
