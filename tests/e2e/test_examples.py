"""The example controllers against a real kube-apiserver + etcd + kube-controller-manager.

configmapgen converges (CRD install, create/update, child deletion and tampering, parent deletion
through its finalizer, events on ``events.k8s.io/v1``), its owner references are good enough for the
real garbage collector, and two replicas with leader election never reconcile at once. pod_reflector,
shared_reflector and object_gauge run as processes with ``KUBECONFIG`` pointing at the cluster.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry

from examples.configmapgen.controller import FINALIZER, build_controller, error_policy, reconcile
from examples.configmapgen.crd import CONFIG_MAP, CONFIG_MAP_GENERATOR, install_crd
from examples.configmapgen.main import describe
from examples.shared_reflector.main import SUMMARY, TEAM
from kube_runtime.client import Api, ApiResource, Client, ClientConfig
from kube_runtime.leader import LeaderElector
from kube_runtime.testing.envtest import ThreadedEnvtest
from tests.e2e.harness import WAIT, unique
from tests.examples.process import run_example, value

pytestmark = pytest.mark.envtest

EVENTS = ApiResource.builtin("Event", "events.k8s.io/v1")
POD = ApiResource.builtin("Pod")


@pytest.fixture
async def admin(cluster_env: ThreadedEnvtest) -> AsyncIterator[httpx.AsyncClient]:
    async with cluster_env.env.http_client(timeout=15) as http:
        yield http


@pytest.fixture
async def namespace(admin: httpx.AsyncClient) -> AsyncIterator[str]:
    name = unique("e2e-examples")
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    (await admin.post("/api/v1/namespaces", json=body)).raise_for_status()
    yield name
    await admin.delete(f"/api/v1/namespaces/{name}")


def runtime_client(env: ThreadedEnvtest) -> Client:
    """A kube_runtime client from the cluster's kubeconfig, with metrics of its own."""
    return Client(
        ClientConfig.from_kubeconfig(str(env.env.kubeconfig_path)), metrics_registry=CollectorRegistry()
    )


async def eventually(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the server until ``check()`` holds (remote state: there is nothing local to wait on)."""
    with anyio.fail_after(WAIT):
        while not await check():  # noqa: ASYNC110
            await anyio.sleep(0.05)
    print(f"converged: {what}")


def generator(name: str, content: str) -> dict[str, Any]:
    return {
        "apiVersion": CONFIG_MAP_GENERATOR.api_version,
        "kind": CONFIG_MAP_GENERATOR.kind,
        "metadata": {"name": name},
        "spec": {"content": content},
    }


# -- configmapgen -------------------------------------------------------------------------------------


async def test_configmapgen_converges(cluster_env: ThreadedEnvtest, namespace: str) -> None:
    async with runtime_client(cluster_env) as client:
        await install_crd(client)
        generators = Api(client, CONFIG_MAP_GENERATOR, namespace)
        config_maps = Api(client, CONFIG_MAP, namespace)

        async def content(name: str) -> str | None:
            cm = await config_maps.get_opt(name)
            return None if cm is None else (cm.get("data") or {}).get("content")

        async def content_is(name: str, expected: str) -> bool:
            return await content(name) == expected

        controller, ctx = build_controller(
            client, namespace, name="configmapgen", registry=CollectorRegistry()
        )
        done = anyio.Event()
        controller.graceful_shutdown_on(done)
        async with controller.run(reconcile, error_policy, ctx) as results, anyio.create_task_group() as tg:

            async def show() -> None:
                async for item in results:
                    print(describe(item))

            tg.start_soon(show)
            # Create: the finalizer goes on, the owned ConfigMap appears with a controller reference.
            await generators.create(generator("one", "hello"))
            await eventually("ConfigMap one generated", lambda: content_is("one", "hello"))
            one = await generators.get("one")
            assert one["metadata"]["finalizers"] == [FINALIZER]
            owners = (await config_maps.get("one"))["metadata"]["ownerReferences"]
            assert [(o["kind"], o["name"], o["uid"], o["controller"]) for o in owners] == [
                ("ConfigMapGenerator", "one", one["metadata"]["uid"], True)
            ]
            # Update of the parent.
            await generators.patch("one", {"spec": {"content": "v2"}})
            await eventually("ConfigMap one updated", lambda: content_is("one", "v2"))
            # The child deleted or edited behind the controller's back: the owner puts it back.
            await config_maps.delete("one")
            await eventually("ConfigMap one regenerated", lambda: content_is("one", "v2"))
            await config_maps.patch("one", {"data": {"content": "tampered"}})
            await eventually("ConfigMap one restored", lambda: content_is("one", "v2"))
            await generators.create(generator("two", "second"))
            await eventually("ConfigMap two generated", lambda: content_is("two", "second"))
            # Parent deletion: cleanup deletes the ConfigMap, then the finalizer lets the generator go.
            await generators.delete("one")

            async def one_gone() -> bool:
                return await generators.get_opt("one") is None and await config_maps.get_opt("one") is None

            await eventually("generator one and its ConfigMap deleted", one_gone)
            done.set()  # graceful: the results end once in-flight reconciles finish

        events = (await Api(client, EVENTS, namespace).list())["items"]
        about_one = [e for e in events if e["regarding"]["uid"] == one["metadata"]["uid"]]
        # (A Warning would only mean a retried reconcile, which is legitimate on a real server.)
        assert {e["reason"] for e in about_one if e["type"] == "Normal"} == {"Generated", "Deleted"}
        for event in about_one:
            assert event["reportingController"] == "configmapgen"
            assert (event["regarding"]["kind"], event["regarding"]["name"]) == ("ConfigMapGenerator", "one")
        assert await content("two") == "second"

        # With the controller gone, the finalizer is dropped by hand and the generator deleted: the
        # garbage collector of kube-controller-manager follows the controller's owner reference.
        await generators.patch("two", {"metadata": {"finalizers": None}})
        await generators.delete("two")

        async def two_collected() -> bool:
            return await config_maps.get_opt("two") is None

        await eventually("ConfigMap two garbage-collected", two_collected)


async def test_two_replicas_with_leader_election_never_reconcile_at_once(
    cluster_env: ThreadedEnvtest, namespace: str
) -> None:
    running = {"a": 0, "b": 0}
    reconciled_by: list[str] = []
    overlaps: list[str] = []
    electors: dict[str, LeaderElector] = {}
    progress = anyio.Event()

    def tracked(replica: str) -> Any:
        async def reconcile_as_replica(obj: dict[str, Any], ctx: Any) -> Any:
            nonlocal progress
            if any(count for name, count in running.items() if name != replica):
                overlaps.append(replica)
            running[replica] += 1
            try:
                return await reconcile(obj, ctx)
            finally:
                running[replica] -= 1
                reconciled_by.append(replica)
                progress.set()
                progress = anyio.Event()

        return reconcile_as_replica

    async def replica(name: str, scope: anyio.CancelScope, started: anyio.Event) -> None:
        registry = CollectorRegistry()
        with scope:
            async with (
                runtime_client(cluster_env) as client,
                LeaderElector(client, "configmapgen", namespace, identity=name, registry=registry) as el,
            ):
                electors[name] = el
                started.set()
                controller, ctx = build_controller(
                    client, namespace, name=f"configmapgen-{name}", registry=registry
                )
                controller.graceful_shutdown_on(el.lost)

                async def consume() -> None:
                    async with controller.run(tracked(name), error_policy, ctx) as results:
                        async for _ in results:
                            pass

                await el.run_while_leading(consume)

    async def until(check: Callable[[], bool]) -> None:
        with anyio.fail_after(WAIT):
            while not check():
                await progress.wait()

    async with runtime_client(cluster_env) as client:
        await install_crd(client)
        generators = Api(client, CONFIG_MAP_GENERATOR, namespace)
        config_maps = Api(client, CONFIG_MAP, namespace)
        await generators.create(generator("one", "hello"))
        scopes = {"a": anyio.CancelScope(), "b": anyio.CancelScope()}
        async with anyio.create_task_group() as tg:
            a_started, b_started = anyio.Event(), anyio.Event()
            tg.start_soon(replica, "a", scopes["a"], a_started)
            await until(lambda: bool(reconciled_by))
            tg.start_soon(replica, "b", scopes["b"], b_started)
            await b_started.wait()
            # b has campaigned, found a holding the lease, and stays a standby while a works.
            await eventually("b sees a as the leader", _async(lambda: electors["b"].observed_holder == "a"))
            await generators.patch("one", {"spec": {"content": "while a leads"}})
            await eventually(
                "a reconciled the change",
                lambda: _content_is(config_maps, "one", "while a leads"),
            )
            assert set(reconciled_by) == {"a"}
            assert not electors["b"].is_leader
            scopes["a"].cancel()  # a stops and releases the lease; b takes over at its next retry
            await generators.patch("one", {"spec": {"content": "after a"}})
            await eventually("b reconciled the change", lambda: _content_is(config_maps, "one", "after a"))
            tg.cancel_scope.cancel()
    assert overlaps == []
    assert set(reconciled_by) == {"a", "b"}
    last_a = len(reconciled_by) - 1 - reconciled_by[::-1].index("a")
    assert reconciled_by.index("b") > last_a


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def wrapped() -> bool:
        return check()

    return wrapped


async def _content_is(config_maps: Api, name: str, expected: str) -> bool:
    cm = await config_maps.get_opt(name)
    return cm is not None and (cm.get("data") or {}).get("content") == expected


# -- the other examples, as processes ------------------------------------------------------------------


def pod(name: str, node: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "main", "image": "app:1"}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


async def test_pod_reflector(cluster_env: ThreadedEnvtest, namespace: str) -> None:
    async with runtime_client(cluster_env) as client:
        pods = Api(client, POD, namespace)
        await pods.create(pod("web-1", "node-a"))
        await pods.create(pod("web-2", "node-b"))
        await pods.create(pod("pending", None))
        kubeconfig = cluster_env.env.kubeconfig_path
        async with run_example(
            "examples.pod_reflector", "--namespace", namespace, kubeconfig=kubeconfig
        ) as ex:
            ready = await ex.wait_for_log("store ready")
            assert (ready["pods"], ready["per_node"]) == (3, {"node-a": 1, "node-b": 1})
            assert (await ex.probe("/readyz")).status_code == 200
            await pods.create(pod("worker-1", "node-a"))
            applied = await ex.wait_for_log("pod applied", pod=f"{namespace}/worker-1")
            assert (applied["node"], applied["pods"]) == ("node-a", 4)
            # A bound Pod is deleted gracefully (a kubelet would confirm); no kubelet here, so force it.
            await pods.delete("web-2", grace_period_seconds=0)
            deleted = await ex.wait_for_log("pod deleted", pod=f"{namespace}/web-2")
            assert (deleted["pods"], deleted["per_node"]) == (3, {"node-a": 2})
            samples = await ex.scrape()
            assert value(samples, "kube_runtime_store_objects", store="pods") == 3
            assert value(samples, "kube_runtime_store_ready", store="pods") == 1
            assert await ex.stop() == 0
    assert ex.logs[-1]["event"] == "stopped"
    assert ex.stray == []


def labelled_config_map(name: str, team: str | None, **data: str) -> dict[str, Any]:
    labels = {"example.com/summarize": "true"} | ({TEAM: team} if team else {})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }


async def test_shared_reflector(cluster_env: ThreadedEnvtest, namespace: str) -> None:
    def ref(name: str) -> str:
        return f"ConfigMap.v1./{name}.{namespace}"

    async with runtime_client(cluster_env) as client:
        config_maps = Api(client, CONFIG_MAP, namespace)
        await config_maps.create(labelled_config_map("payments", "payments", currency="EUR"))
        await config_maps.create(labelled_config_map("orphan", None, debug="true"))
        kubeconfig = cluster_env.env.kubeconfig_path
        async with run_example(
            "examples.shared_reflector", "--namespace", namespace, kubeconfig=kubeconfig
        ) as ex:
            for name, summary, valid in (
                ("payments", "team=payments keys=1 bytes=3", "valid"),
                ("orphan", "team=none keys=1 bytes=4", "invalid"),
            ):
                await ex.wait_for_log("summary written", summary=summary, **{"object.ref": ref(name)})
                await ex.wait_for_log(valid, controller="validator", **{"object.ref": ref(name)})
            annotations = (await config_maps.get("payments"))["metadata"]["annotations"]
            assert annotations[SUMMARY] == "team=payments keys=1 bytes=3"
            warnings = (await Api(client, EVENTS, namespace).list())["items"]
            assert {(e["reason"], e["regarding"]["name"]) for e in warnings} == {("MissingTeam", "orphan")}
            await config_maps.patch("orphan", {"metadata": {"labels": {TEAM: "platform"}}})
            await ex.wait_for_log("valid", controller="validator", **{"object.ref": ref("orphan")})
            samples = await ex.scrape()
            assert value(samples, "kube_runtime_watch_events_total", watch="configmaps", type="init") == 1
            readyz = await ex.probe("/readyz?verbose")
            assert readyz.status_code == 200
            assert "[+]annotator ok" in readyz.text
            assert await ex.stop() == 0
    assert ex.stray == []


async def test_object_gauge(cluster_env: ThreadedEnvtest, namespace: str) -> None:
    def keys(samples: Any, name: str) -> float | None:
        return value(samples, "configmap_data_keys", name=name, namespace=namespace)

    async with runtime_client(cluster_env) as client:
        config_maps = Api(client, CONFIG_MAP, namespace)
        for name, data in (("web", {"listen": ":80", "workers": "4"}), ("db", {"url": "postgres://db"})):
            await config_maps.create(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
            )
        kubeconfig = cluster_env.env.kubeconfig_path
        async with run_example(
            "examples.object_gauge", "--namespace", namespace, kubeconfig=kubeconfig
        ) as ex:
            await ex.scrape_until(lambda s: keys(s, "web") == 2 and keys(s, "db") == 1)
            await config_maps.patch("web", {"data": {"timeout": "30s"}})
            await ex.scrape_until(lambda s: keys(s, "web") == 3)
            await config_maps.delete("db")
            samples = await ex.scrape_until(lambda s: keys(s, "db") is None)
            assert value(samples, "configmap_data_bytes", name="web", namespace=namespace) == 7
            assert value(samples, "controller_runtime_reconcile_errors_total", controller="configmap") == 0
            assert await ex.stop() == 0
    assert ex.stray == []
