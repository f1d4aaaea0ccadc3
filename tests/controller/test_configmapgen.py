"""The configmapgen example end to end: it converges after creates, updates, child deletion, a
dropped watch, a 410 and parent deletion, with its finalizer and events; and its command line,
run as the demo and as the Helm chart runs it."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client.parser import text_string_to_metric_families

from examples.configmapgen.controller import FINALIZER, build_controller, error_policy, reconcile
from examples.configmapgen.crd import CONFIG_MAP, CONFIG_MAP_GENERATOR, install_crd
from examples.configmapgen.main import describe
from kube_runtime.client import Api, ApiResource
from kube_runtime.testing.server import ApiServer
from tests.ops.demo_target import DemoController, python_module
from tests.ops.prometheus_server import free_port

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


# -- the demo's command line -------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO / "charts" / "kube-runtime-controller" / "templates" / "deployment.yaml"


def _metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_the_demo_cli_serves_metrics_and_probes_then_stops_on_sigterm(tmp_path: Path) -> None:
    """``python -m examples.configmapgen --embedded --keep-running`` as a user runs it: the
    scripted scenario, then /metrics, /readyz and /livez over HTTP, and a clean exit on SIGTERM."""
    with DemoController(tmp_path, generators=2) as demo:
        _, text = _get(f"http://{demo.metrics_address}/metrics")
        ready = _get(f"http://{demo.health_address}/readyz?verbose")
        live = _get(f"http://{demo.health_address}/livez?verbose")
    assert demo.returncodes == [0], demo.log.read_text()[-3000:]
    out = demo.log.read_text()
    assert f"metrics: http://{demo.metrics_address}/metrics" in out
    assert f"health:  http://{demo.health_address}/readyz http://{demo.health_address}/livez" in out
    assert "--- converged: generator and ConfigMap deleted" in out
    assert ready == (200, "[+]configmapgen ok\nreadyz check passed\n")
    assert live == (200, "[+]configmapgen ok\nlivez check passed\n")
    samples = _metric_samples(text)
    reconciles = {
        dict(labels)["result"]: value
        for (name, labels), value in samples.items()
        if name == "controller_runtime_reconcile_total" and dict(labels)["controller"] == "configmapgen"
    }
    assert sum(reconciles.values()) > 0
    assert reconciles["error"] == 0
    for watch in ("configmapgen/ConfigMapGenerator", "configmapgen/ConfigMap"):
        applied = samples[("kube_runtime_watch_events_total", (("type", "apply"), ("watch", watch)))]
        assert applied > 0
        stamp = samples[("kube_runtime_watch_last_event_timestamp_seconds", (("watch", watch),))]
        assert stamp > 0
    assert samples[("kube_runtime_store_ready", (("store", "configmapgen"),))] == 1


def test_the_demo_cli_runs_its_scenario_and_exits(tmp_path: Path) -> None:
    """The README's first command, bounded: it converges at every step and exits 0."""
    command = python_module(
        "examples.configmapgen", "--embedded",
        "--metrics-bind-address=127.0.0.1:0", "--health-probe-bind-address=127.0.0.1:0",
    )  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("embedded API server: https://127.0.0.1:")
    assert lines[1].startswith("metrics: http://127.0.0.1:")
    assert lines[2].startswith("health:  http://127.0.0.1:")
    converged = [line for line in lines if line.startswith("--- converged")]
    assert len(converged) == 4
    assert any(line.startswith("reconciled ConfigMapGenerator") for line in lines)


def test_every_flag_the_chart_passes_is_accepted() -> None:
    """The chart's deployment template and the example's command line agree."""
    from examples.configmapgen.main import build_parser

    template = DEPLOYMENT.read_text()
    chart_flags = set(re.findall(r"^\s*- (--[a-z-]+)", template, flags=re.MULTILINE))
    assert len(chart_flags) >= 10, chart_flags
    known = {opt for action in build_parser()._actions for opt in action.option_strings}
    assert chart_flags <= known, chart_flags - known
    args = build_parser().parse_args(
        [
            "--metrics-bind-address=:8080",
            "--health-probe-bind-address=:8081",
            "--concurrency=8",
            "--graceful-shutdown-timeout=25",
            "--namespace=apps",
            "--leader-elect",
            "--leader-election-id=release-kube-runtime-controller-leader",
            "--leader-election-namespace=ops",
            "--metrics-secure",
            "--metrics-cert-file=/etc/kube-runtime/metrics-tls/tls.crt",
            "--metrics-key-file=/etc/kube-runtime/metrics-tls/tls.key",
            "--enable-task-dump",
        ]
    )
    assert (args.concurrency, args.namespace, args.leader_elect) == (8, "apps", True)
    assert args.graceful_shutdown_timeout == 25
    assert (args.leader_election_id, args.leader_election_namespace) == (
        "release-kube-runtime-controller-leader",
        "ops",
    )
    assert (args.metrics_secure, args.enable_task_dump) == (True, True)
    # The chart configures logging through these variables; the example reads them.
    assert "KUBE_RUNTIME_LOG" in template
    assert "KUBE_RUNTIME_LOG_FORMAT" in template


@pytest.mark.parametrize(
    "argv",
    [
        ["--metrics-secure"],  # no certificate: tokens would travel in clear text
        ["--embedded", "--metrics-secure", "--metrics-cert-file=c", "--metrics-key-file=k"],
        ["--keep-running"],  # needs --embedded
        ["--concurrency=-1"],
    ],
)
def test_invalid_flag_combinations_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from examples.configmapgen.main import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert "error:" in capsys.readouterr().err


class _Processes:
    """Subprocesses of one test, each logging to a file; all stopped with SIGTERM at the end."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], **env: str) -> None:
        with (self.workdir / f"{name}.log").open("wb") as out:
            self.procs[name] = subprocess.Popen(
                command, cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
            )

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text()

    def wait_for(self, what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
        """Poll another process's state (real time) until ``condition()`` holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            exited = {name: p.returncode for name, p in self.procs.items() if p.poll() is not None}
            if exited or time.monotonic() > deadline:
                logs = "\n".join(f"--- {name}\n{self.log(name)[-2000:]}" for name in self.procs)
                raise AssertionError(f"waiting for {what}; exited: {exited}\n{logs}")
            time.sleep(0.1)

    def stop(self, name: str) -> int:
        proc = self.procs.pop(name)
        proc.terminate()
        return proc.wait(timeout=30)

    def __enter__(self) -> _Processes:
        return self

    def __exit__(self, *_exc: object) -> None:
        for proc in self.procs.values():
            proc.kill()
            proc.wait(timeout=10)


def _scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    try:
        return _metric_samples(_get(f"http://{address}/metrics")[1])
    except OSError:
        return {}


def free_port_address() -> str:
    return f"127.0.0.1:{free_port()}"


def _ready(address: str) -> bool:
    try:
        return _get(f"http://{address}/readyz")[0] == 200
    except OSError:
        return False


def test_chart_mode_with_leader_election_standby_is_ready_and_takes_over(tmp_path: Path) -> None:
    """As the chart runs it with leaderElection.enabled (two replicas, flags only): the standby is
    ready and live without running the controller (a rolling update needs it ready), exports no
    controller series, and takes over when the leader stops on SIGTERM."""
    kubeconfig = tmp_path / "kubeconfig"
    lease = "configmapgen-leader"
    master = ("leader_election_master_status", (("name", lease),))
    store_ready = ("kube_runtime_store_ready", (("store", "configmapgen"),))
    with _Processes(tmp_path) as procs:
        procs.start("apiserver", python_module("kube_runtime.testing", "serve", f"--kubeconfig={kubeconfig}"))
        procs.wait_for("the API server", lambda: "serving " in procs.log("apiserver"))
        ports: dict[str, tuple[str, str]] = {}
        for replica in ("a", "b"):
            ports[replica] = (f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")
            procs.start(
                replica,
                python_module(
                    "examples.configmapgen", "--install-crd", "--concurrency=4",
                    f"--metrics-bind-address={ports[replica][0]}",
                    f"--health-probe-bind-address={ports[replica][1]}",
                    "--leader-elect", f"--leader-election-id={lease}", "--leader-election-namespace=default",
                ),
                KUBECONFIG=str(kubeconfig), KUBE_RUNTIME_LOG_FORMAT="json",
            )  # fmt: skip
        leaders: list[str] = []

        def one_leads() -> bool:
            status = {r: _scrape(ports[r][0]).get(master) for r in ports}
            leaders[:] = [r for r, value in status.items() if value == 1]
            return sorted(status.values(), key=str) == [0.0, 1.0] and all(_ready(ports[r][1]) for r in ports)

        procs.wait_for("one leader and two ready replicas", one_leads)
        (leader,) = leaders
        standby = "b" if leader == "a" else "a"
        procs.wait_for("the leader's store", lambda: _scrape(ports[leader][0]).get(store_ready) == 1)
        # A third replica, stopped while still a standby, exits cleanly too.
        third = python_module(
            "examples.configmapgen", "--leader-elect", f"--leader-election-id={lease}",
            "--metrics-bind-address=0", f"--health-probe-bind-address={free_port_address()}",
        )  # fmt: skip
        procs.start("c", third, KUBECONFIG=str(kubeconfig))
        procs.wait_for("the third replica", lambda: "waiting for the lease" in procs.log("c"))
        assert procs.stop("c") == 0, procs.log("c")[-3000:]
        standby_metrics = _scrape(ports[standby][0])
        assert store_ready not in standby_metrics
        assert not any(name.startswith("controller_runtime_reconcile") for name, _ in standby_metrics)
        assert _get(f"http://{ports[standby][1]}/livez")[0] == 200

        assert procs.stop(leader) == 0, procs.log(leader)[-3000:]
        procs.wait_for(
            "the standby to take over",
            lambda: (s := _scrape(ports[standby][0])).get(master) == 1 and s.get(store_ready) == 1,
        )
        assert procs.stop(standby) == 0, procs.log(standby)[-3000:]
