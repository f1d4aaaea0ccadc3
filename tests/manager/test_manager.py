"""The Manager against the embedded API server: several controllers (one on a shared cache) from
one ``run()``, leader election with a standby, SIGTERM as a graceful shutdown that releases the
Lease without a leadership-lost warning, a stolen Lease as ``LeaderElectionLost``, and the chart's
flags."""

from __future__ import annotations

import logging
import os
import re
import signal
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from prometheus_client import CollectorRegistry

from examples.configmapgen.main import build_parser as configmapgen_parser
from kube_runtime.client import Api, ApiResource
from kube_runtime.controller import Action, Controller, ControllerOptions, Reconciled
from kube_runtime.controller.signals import shutdown_signal_count
from kube_runtime.leader import LEASE_RESOURCE, LeaderElectionLost, LeaderElector
from kube_runtime.manager import Manager, ManagerOptions
from kube_runtime.manager import manager as manager_module
from kube_runtime.observe import ServerOptions
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.testing.server import ApiServer

REPO = Path(__file__).resolve().parents[2]
CM = ApiResource.builtin("ConfigMap")
SECRET = ApiResource.builtin("Secret")
LOOPBACK = ServerOptions(metrics_bind_address="127.0.0.1:0", health_probe_bind_address="127.0.0.1:0")


def options(
    *, leader_elect: bool = False, lease: str = "demo", graceful: float | None = 25, warmup: bool = False
) -> ManagerOptions:
    controller = ControllerOptions(
        namespace="default",
        leader_elect=leader_elect,
        leader_election_id=lease,
        leader_election_namespace="default",
        concurrency=2,
        graceful_shutdown_timeout=graceful,
        leader_election_warmup=warmup,
    )
    return ManagerOptions(controller=controller, server=LOOPBACK)


def manager(server: ApiServer, opts: ManagerOptions, *, warmup: bool = False) -> Manager:
    registry = CollectorRegistry()
    return Manager(
        server.client,
        opts,
        name="demo",
        registry=registry,
        configure_logs=False,
        tracing=False,
        warmup=warmup,
    )


class Seen:
    def __init__(self) -> None:
        self.names: list[tuple[str, str]] = []
        self.changed = anyio.Event()

    def reconciler(self, tag: str) -> Any:
        async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
            self.names.append((tag, obj["metadata"]["name"]))
            self.changed.set()
            return Action.await_change()

        return reconcile

    async def until(self, *wanted: tuple[str, str]) -> None:
        with anyio.fail_after(30):
            while not set(wanted) <= set(self.names):
                self.changed = anyio.Event()
                await self.changed.wait()


async def test_runs_several_controllers_with_a_shared_cache_until_stopped(api_server: ApiServer) -> None:
    cms = Api(api_server.client, CM, "default")
    await cms.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"x": "1"}}}
    )
    await Api(api_server.client, SECRET, "default").create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}
    )
    mgr = manager(api_server, options())
    shared = mgr.shared(CM)
    seen = Seen()
    items: list[Any] = []
    mgr.add(
        Controller.for_shared(shared, name="cm-a", registry=mgr.registry), seen.reconciler("a"), None, None
    )
    mgr.add(
        Controller.for_shared(shared, name="cm-b", registry=mgr.registry), seen.reconciler("b"), None, None
    )
    secrets = mgr.add(mgr.controller(SECRET), seen.reconciler("s"), None, None, on_item=items.append)
    assert secrets.name == "secret"
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(mgr.run)
            await seen.until(("a", "c"), ("b", "c"), ("s", "s"))
            mgr.stop()
    assert any(isinstance(item, Reconciled) for item in items)
    assert set(mgr.observability.recorders) == {"cm-a", "cm-b", "secret"}


async def test_sigterm_stops_gracefully_and_releases_the_lease_without_a_warning(
    api_server: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    await Api(api_server.client, CM, "default").create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    mgr = manager(api_server, options(leader_elect=True))
    seen = Seen()
    mgr.add(mgr.controller(CM), seen.reconciler("cm"), None, None)
    caplog.set_level(logging.INFO)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(mgr.run)
            await seen.until(("cm", "c"))
            os.kill(os.getpid(), signal.SIGTERM)
    lease = await Api(api_server.client, LEASE_RESOURCE, "default").get("demo")
    assert lease["spec"]["holderIdentity"] == ""  # released for a standby to take at once
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []
    assert any("stepped down" in r.getMessage() for r in caplog.records if r.name == "kube_runtime.leader")


async def test_a_standby_runs_nothing_and_stops_on_request(api_server: ApiServer) -> None:
    await Api(api_server.client, CM, "default").create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    leader, standby = (
        manager(api_server, options(leader_elect=True)),
        manager(api_server, options(leader_elect=True)),
    )
    led, stood_by = Seen(), Seen()
    leader.add(leader.controller(CM), led.reconciler("leader"), None, None)
    standby.add(standby.controller(CM), stood_by.reconciler("standby"), None, None)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(leader.run)
            await led.until(("leader", "c"))
            tg.start_soon(standby.run)
            with anyio.move_on_after(1):  # the standby's first campaign attempts, never leading
                await stood_by.until(("standby", "c"))
            standby.stop()
            leader.stop()
    assert stood_by.names == []
    assert standby.observability.recorders == {}  # a standby publishes no controller series


async def test_a_warm_standby_syncs_its_cache_and_takes_over_when_the_leader_stops(
    api_server: ApiServer,
) -> None:
    await Api(api_server.client, CM, "default").create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    leader = manager(api_server, options(leader_elect=True, warmup=True))
    standby = manager(api_server, options(leader_elect=True, warmup=True))
    led, stood_by = Seen(), Seen()
    leader.add(leader.controller(CM), led.reconciler("leader"), None, None)
    warm = standby.add(standby.controller(CM), stood_by.reconciler("standby"), None, None)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(leader.run)
            await led.until(("leader", "c"))
            tg.start_soon(standby.run)
            await warm.store.wait_until_ready()  # synced while the other replica leads
            assert stood_by.names == []
            assert "configmap" in standby.observability.recorders  # wired from the start
            leader.stop()  # releases the Lease: the warm standby takes over
            await stood_by.until(("standby", "c"))
            standby.stop()


async def run_recording_loss(mgr: Manager, lost: list[LeaderElectionLost]) -> None:
    """Run ``mgr``; the ``LeaderElectionLost`` it raises, if any, goes to ``lost``."""
    try:
        await mgr.run()
    except LeaderElectionLost as exc:
        lost.append(exc)


async def test_a_lost_lease_cancels_the_controllers_and_raises(api_server: ApiServer) -> None:
    await Api(api_server.client, CM, "default").create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    mgr = manager(api_server, options(leader_elect=True))
    seen = Seen()
    mgr.add(mgr.controller(CM), seen.reconciler("cm"), None, None)
    leases = Api(api_server.client, LEASE_RESOURCE, "default")
    lost: list[LeaderElectionLost] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_recording_loss, mgr, lost)
            await seen.until(("cm", "c"))
            lease = await leases.get("demo")
            await leases.replace("demo", {**lease, "spec": {**lease["spec"], "holderIdentity": "rival"}})
    assert len(lost) == 1
    assert "rival" in str(lost[0])


class _PausedElector(LeaderElector):
    """An elector whose process was paused past its renew deadline: ``is_leader`` is already
    false, and its loop has not yet run to declare the loss."""

    paused = False

    @property
    def is_leader(self) -> bool:
        return not self.paused and super().is_leader


@pytest.mark.parametrize("warmup", [False, True], ids=["cold", "warm"])
async def test_no_reconcile_starts_after_the_renew_deadline_even_before_the_loss_is_declared(
    api_server: ApiServer, monkeypatch: pytest.MonkeyPatch, warmup: bool
) -> None:
    """A cold-standby manager resumed past its deadline started a reconcile for every due object
    (up to --concurrency) before the elector declared the loss: only warm ones were gated."""
    monkeypatch.setattr(manager_module, "LeaderElector", _PausedElector)
    config_maps = Api(api_server.client, CM, "default")
    await config_maps.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    mgr = manager(api_server, options(leader_elect=True, warmup=warmup))
    seen = Seen()
    mgr.add(mgr.controller(CM), seen.reconciler("cm"), None, None)
    lost: list[LeaderElectionLost] = []
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_recording_loss, mgr, lost)
            await seen.until(("cm", "c"))
            _PausedElector.paused = True
            try:
                await config_maps.patch("c", {"data": {"v": "2"}})
                await anyio.sleep(5)  # the change's reconcile would be due at once
            finally:
                _PausedElector.paused = False
    assert seen.names == [("cm", "c")]
    assert len(lost) == 1


def test_the_chart_flags_configure_the_manager() -> None:
    template = (REPO / "charts" / "kube-runtime-controller" / "templates" / "deployment.yaml").read_text()
    chart_flags = sorted(set(re.findall(r"^\s*- (--[a-z-]+)", template, flags=re.MULTILINE)))
    argv = [
        "--metrics-bind-address=:8080",
        "--health-probe-bind-address=:8081",
        "--concurrency=8",
        "--graceful-shutdown-timeout=25",
        "--reconcile-timeout=30",
        "--namespace=apps",
        "--leader-elect",
        "--leader-election-id=release-leader",
        "--leader-election-namespace=ops",
        "--leader-election-warmup",
        "--metrics-secure",
        "--metrics-cert-file=/tls/tls.crt",
        "--metrics-key-file=/tls/tls.key",
        "--webhook-bind-address=:9443",
        "--webhook-cert-file=/webhook/tls.crt",
        "--webhook-key-file=/webhook/tls.key",
        "--enable-task-dump",
        "--log-format=json",
    ]
    # --shard-ring (sharding.enabled) is the sharded controller's own flag: a Manager runs several
    # controllers and the application chooses which one joins the ring (examples/configmapgen).
    manager_flags = set(chart_flags) - {"--shard-ring"}
    assert manager_flags <= {arg.split("=")[0] for arg in argv}, chart_flags
    assert "--shard-ring" in chart_flags
    ring = configmapgen_parser().parse_args([*argv, "--shard-ring=configmapgen"])
    assert ring.shard_ring == "configmapgen"
    parsed = ManagerOptions.parse(argv, name="demo")
    assert parsed.controller == ControllerOptions(
        concurrency=8,
        namespace="apps",
        leader_elect=True,
        leader_election_id="release-leader",
        leader_election_namespace="ops",
        graceful_shutdown_timeout=25,
        reconcile_timeout=30,
        leader_election_warmup=True,
    )
    assert (parsed.server.metrics_secure, parsed.server.enable_task_dump) == (True, True)
    assert parsed.webhooks is not None
    assert parsed.webhooks.cert_file == "/webhook/tls.crt"
    assert parsed.log_format == "json"
    defaults = ManagerOptions.parse([], name="demo")
    assert defaults.webhooks is None
    assert defaults.controller.leader_election_id == "demo"


async def test_warm_standbys_fill_their_caches_and_take_over_without_reconciling_before(
    api_server: ApiServer,
) -> None:
    await Api(api_server.client, CM, "default").create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    managers = {
        name: manager(api_server, options(leader_elect=True), warmup=True) for name in ("first", "second")
    }
    seen = {name: Seen() for name in managers}
    controllers = {
        name: mgr.add(mgr.controller(CM), seen[name].reconciler(name), None, None)
        for name, mgr in managers.items()
    }
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(managers["first"].run)
            await seen["first"].until(("first", "c"))
            tg.start_soon(managers["second"].run)
            await controllers["second"].store.wait_until_ready()  # the standby's cache fills
            assert controllers["second"].store.get(ObjectRef.for_resource(CM, "c", "default")) is not None
            assert seen["second"].names == []  # warm, not reconciling
            managers["first"].stop()  # releases the Lease; the warm standby takes over
            await seen["second"].until(("second", "c"))
            managers["second"].stop()


async def test_a_second_signal_forces_the_shutdown(
    api_server: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    await Api(api_server.client, CM, "default").create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    mgr = manager(api_server, options(graceful=None))  # a graceful shutdown alone waits forever
    started, cancelled = anyio.Event(), anyio.Event()

    async def hang(_obj: dict[str, Any], _ctx: None) -> Action:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()
        raise AssertionError("unreachable")

    mgr.add(mgr.controller(CM), hang, None, None)
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(mgr.run)
            await started.wait()
            os.kill(os.getpid(), signal.SIGTERM)  # graceful: the hung reconcile keeps it waiting
            while shutdown_signal_count() < 1:
                await anyio.lowlevel.checkpoint()
            assert not cancelled.is_set()
            os.kill(os.getpid(), signal.SIGTERM)  # forceful
            await cancelled.wait()
    assert any("forced shutdown" in r.getMessage() for r in caplog.records)
    assert mgr.forced_shutdown  # Manager.main exits 1 then, as controller-runtime does


async def test_a_shutdown_cut_short_by_its_deadline_is_forced(api_server: ApiServer) -> None:
    """Reconciles cancelled at the graceful-shutdown deadline make the shutdown forced (main exits
    1, as controller-runtime's manager fails when its grace period runs out); one that finishes in
    time does not."""
    await Api(api_server.client, CM, "default").create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    )
    for hangs in (True, False):
        mgr = manager(api_server, options(graceful=0.2))
        started = anyio.Event()

        async def reconcile(
            _obj: dict[str, Any], _ctx: None, hangs: bool = hangs, started: anyio.Event = started
        ) -> Action:
            started.set()
            await anyio.sleep(3600 if hangs else 0.01)
            return Action.await_change()

        mgr.add(mgr.controller(CM), reconcile, None, None)
        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                tg.start_soon(mgr.run)
                await started.wait()
                mgr.stop()
        assert mgr.forced_shutdown is hangs
