"""The configmapgen example end to end: it converges after creates, updates, child deletion, a
dropped watch, a 410 and parent deletion, with its finalizer and events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from examples.configmapgen.controller import FINALIZER, build_controller, error_policy, reconcile
from examples.configmapgen.crd import CONFIG_MAP, CONFIG_MAP_GENERATOR, install_crd
from examples.configmapgen.main import describe
from kube_runtime.client import Api, ApiResource
from kube_runtime.testing.server import ApiServer

pytestmark = pytest.mark.anyio

EVENTS = ApiResource.builtin("Event", "events.k8s.io/v1")


def generator(name: str, content: str) -> dict[str, Any]:
    return {
        "apiVersion": CONFIG_MAP_GENERATOR.api_version,
        "kind": CONFIG_MAP_GENERATOR.kind,
        "metadata": {"name": name},
        "spec": {"content": content},
    }


class Cluster:
    """Reads the server's state directly (no HTTP) to check convergence."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server

    def config_map(self, name: str) -> dict[str, Any] | None:
        found = [o for o in self.server.objects(CONFIG_MAP, "default") if o["metadata"]["name"] == name]
        return found[0] if found else None

    def generator(self, name: str) -> dict[str, Any] | None:
        objs = self.server.objects(CONFIG_MAP_GENERATOR, "default")
        found = [o for o in objs if o["metadata"]["name"] == name]
        return found[0] if found else None

    def content(self, name: str) -> str | None:
        cm = self.config_map(name)
        return None if cm is None else (cm.get("data") or {}).get("content")

    def event_reasons(self) -> list[str]:
        return sorted(e["reason"] for e in self.server.objects(EVENTS, "default"))


async def converge(results: AsyncIterator[Any], check: Callable[[], bool], *, within: float = 60.0) -> None:
    """Consume results until ``check()`` holds (checked after every finished reconcile)."""
    with anyio.fail_after(within):
        while not check():
            item = await results.__anext__()
            print(describe(item))


async def test_configmapgen_converges(api_server: ApiServer) -> None:
    client = api_server.client
    cluster = Cluster(api_server)
    await install_crd(client)
    generators = Api(client, CONFIG_MAP_GENERATOR, "default")
    config_maps = Api(client, CONFIG_MAP, "default")
    controller, ctx = build_controller(client)
    async with controller.run(reconcile, error_policy, ctx) as results:
        # Create: the finalizer goes on first, then the owned ConfigMap appears.
        await generators.create(generator("one", "hello"))
        await converge(results, lambda: cluster.content("one") == "hello")
        one = cluster.generator("one")
        assert one is not None
        assert one["metadata"]["finalizers"] == [FINALIZER]
        owners = cluster.config_map("one")["metadata"]["ownerReferences"]  # type: ignore[index]
        assert [(o["kind"], o["name"], o["uid"], o["controller"]) for o in owners] == [
            ("ConfigMapGenerator", "one", one["metadata"]["uid"], True)
        ]

        # Update of the parent.
        await generators.patch("one", {"spec": {"content": "v2"}})
        await converge(results, lambda: cluster.content("one") == "v2")

        # Child deleted or edited behind the controller's back: the owner puts it back.
        await config_maps.delete("one")
        await converge(results, lambda: cluster.content("one") == "v2")
        await config_maps.patch("one", {"data": {"content": "tampered"}})
        await converge(results, lambda: cluster.content("one") == "v2")

        # A dropped watch: the change made meanwhile still arrives.
        api_server.faults.close_watches()
        await generators.patch("one", {"spec": {"content": "v3"}})
        await converge(results, lambda: cluster.content("one") == "v3")

        # A 410: history compacted under the watches, which must relist.
        api_server.faults.compact()
        api_server.faults.close_watches()
        await generators.patch("one", {"spec": {"content": "v4"}})
        await generators.create(generator("two", "second"))
        await converge(results, lambda: cluster.content("one") == "v4" and cluster.content("two") == "second")

        # Parent deletion: cleanup runs, the ConfigMap goes, the finalizer is released.
        await generators.delete("one")
        await converge(
            results, lambda: cluster.generator("one") is None and cluster.config_map("one") is None
        )
        assert cluster.content("two") == "second"

    assert "Generated" in cluster.event_reasons()
    assert "Deleted" in cluster.event_reasons()


async def test_failures_are_reported_and_retried_with_backoff(api_server: ApiServer) -> None:
    client = api_server.client
    cluster = Cluster(api_server)
    await install_crd(client)
    generators = Api(client, CONFIG_MAP_GENERATOR, "default")
    controller, ctx = build_controller(client)
    async with controller.run(reconcile, error_policy, ctx) as results:
        await generators.create(generator("one", "hello"))
        await converge(results, lambda: cluster.content("one") == "hello")
        await generators.patch("one", {"spec": {"content": "after outage"}})
        # The reconcile this patch triggers meets an outage: its GET fails, then the Warning event,
        # then the retry's GET; the next Warning event goes through.
        api_server.faults.fail_next(3, 500)
        await converge(results, lambda: cluster.content("one") == "after outage")
    assert "ReconcileFailed" in cluster.event_reasons()


async def test_the_demo_runs(api_server: ApiServer, capsys: pytest.CaptureFixture[str]) -> None:
    from examples.configmapgen.main import run_demo

    await run_demo(api_server.client)
    out = capsys.readouterr().out
    assert "converged: generator and ConfigMap deleted" in out
    assert any(line.startswith("reconciled ") for line in out.splitlines())


async def test_two_replicas_with_leader_election_never_reconcile_at_once(api_server: ApiServer) -> None:
    from prometheus_client import CollectorRegistry

    from kube_runtime.leader import LeaderElector

    client = api_server.client
    cluster = Cluster(api_server)
    await install_crd(client)
    await Api(client, CONFIG_MAP_GENERATOR, "default").create(generator("one", "hello"))
    running = {"a": 0, "b": 0}
    reconciled_by: list[str] = []
    overlaps: list[str] = []
    progress = anyio.Event()

    def tracked(replica: str) -> Any:
        async def reconcile_as_replica(obj: dict[str, Any], ctx: Any) -> Any:
            if any(count for name, count in running.items() if name != replica):
                overlaps.append(replica)
            running[replica] += 1
            try:
                return await reconcile(obj, ctx)
            finally:
                nonlocal progress
                running[replica] -= 1
                reconciled_by.append(replica)
                progress.set()
                progress = anyio.Event()

        return reconcile_as_replica

    async def replica(name: str, scope: anyio.CancelScope) -> None:
        registry = CollectorRegistry()
        with scope:
            async with LeaderElector(
                client, "configmapgen", "default", identity=name, registry=registry
            ) as el:
                controller, ctx = build_controller(client, name=f"configmapgen-{name}", registry=registry)
                controller.graceful_shutdown_on(el.lost)

                async def consume() -> None:
                    async with controller.run(tracked(name), error_policy, ctx) as results:
                        async for _ in results:
                            pass

                await el.run_while_leading(consume)

    async def until(check: Callable[[], bool]) -> None:
        """Wait until ``check()`` holds, checking after every reconcile of either replica."""
        with anyio.fail_after(120):
            while not check():
                await progress.wait()

    scopes = {"a": anyio.CancelScope(), "b": anyio.CancelScope()}
    async with anyio.create_task_group() as tg:
        tg.start_soon(replica, "a", scopes["a"])
        await until(lambda: bool(reconciled_by))
        tg.start_soon(replica, "b", scopes["b"])
        await until(lambda: cluster.content("one") == "hello")
        await anyio.sleep(30)  # b keeps campaigning meanwhile and must stay a standby
        assert set(reconciled_by) == {"a"}
        leader = reconciled_by[0]
        scopes[leader].cancel()  # the leader stops (and releases the lease); the standby takes over
        # Let the server drop the stopped replica's watches now: its watch writer currently fails
        # (EndOfStream) when it next writes to a connection the client has closed.
        api_server.faults.close_watches()
        await Api(client, CONFIG_MAP_GENERATOR, "default").patch("one", {"spec": {"content": "v2"}})
        await until(lambda: cluster.content("one") == "v2")
        tg.cancel_scope.cancel()
    assert overlaps == []
    assert set(reconciled_by) == {"a", "b"}
    assert reconciled_by.index("b") > len(reconciled_by) - reconciled_by[::-1].index("a") - 1
