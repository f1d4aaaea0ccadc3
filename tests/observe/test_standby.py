"""Probes and store metrics of a leader-gated controller while it stands by (virtual clock)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime.client.api import Api
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller import Action, Controller
from kube_runtime.observe import Observability, ServerOptions
from kube_runtime.observe.progress import ReconcileProgress
from kube_runtime.testing.clock import virtual_clock_backend
from kube_runtime.testing.leadership import ManualElector
from kube_runtime.testing.server import ApiServer

pytestmark = pytest.mark.anyio

CM = ApiResource.builtin("ConfigMap")


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


async def test_a_standby_is_not_stalled_and_its_grace_period_starts_when_it_leads() -> None:
    leading = False
    progress = ReconcileProgress(10, pending=lambda: 100.0, active=lambda: leading)
    progress.mark()
    await anyio.sleep(3600)
    assert progress.stalled() is None  # 100 queued, no result for an hour, but not leading
    leading = True
    await anyio.sleep(9)
    assert progress.stalled() is None
    await anyio.sleep(2)
    assert progress.stalled() is not None
    # Without the gate the same loop counts as stalled.
    ungated = ReconcileProgress(10, pending=lambda: 100.0)
    ungated.mark()
    await anyio.sleep(11)
    assert ungated.stalled() is not None


async def test_work_arriving_after_a_long_idle_spell_gets_the_whole_threshold() -> None:
    """Idle for longer than the threshold, then one reconcile in flight: not stalled until the
    threshold passed since a probe last saw nothing waiting (it failed at once)."""
    waiting = 0.0
    progress = ReconcileProgress(3, pending=lambda: waiting)
    progress.mark()
    for _ in range(4):  # probed every second through four idle seconds
        await anyio.sleep(1)
        assert progress.stalled() is None
    waiting = 1.0  # a reconcile starts
    await anyio.sleep(0.5)
    assert progress.stalled() is None
    await anyio.sleep(2)
    assert progress.stalled() is None
    await anyio.sleep(1)
    assert progress.stalled() is not None  # 3.5 s since the last probe that saw nothing waiting


def store_ready(registry: CollectorRegistry, store: str) -> float | None:
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name == "kube_runtime_store_ready" and sample.labels.get("store") == store:
                return sample.value
    return None


@pytest.mark.parametrize("warmup", [False, True])
async def test_standby_readiness_and_store_metrics(api_server: ApiServer, warmup: bool) -> None:
    api = Api(api_server.client, CM, "default")
    await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    registry = CollectorRegistry()
    elector = ManualElector()
    controller = Controller(api, name="cms", registry=registry).with_leader_election(elector, warmup=warmup)
    obs = Observability(ServerOptions("0", "0"), registry=registry)
    recorder = obs.add_controller(controller)

    async def ready() -> bool:
        return all(result.ok for result in await obs.checks.run("readyz"))

    async def reconcile(obj: dict[str, Any], ctx: Any) -> Action:
        return Action.await_change()

    async with controller.run(reconcile, None, None) as results:
        with anyio.fail_after(30):
            if warmup:
                await controller.store.wait_until_ready()  # a warm standby syncs
        await anyio.sleep(1)
        # Warm: synced and reported so. Cold: empty on purpose, reported ready while standing by.
        assert await ready()
        assert store_ready(registry, "cms") == 1
        assert len(controller.store) == (1 if warmup else 0)
        assert [r.ok for r in await obs.checks.run("livez")] == [True]
        elector.lead()
        with anyio.fail_after(30):
            async for _ in recorder.observe(results):
                break
        assert await ready()
        assert store_ready(registry, "cms") == 1
