"""Run the configmapgen controller on a :class:`~kube_runtime.manager.Manager`.

    python -m examples.configmapgen --embedded                # self-contained demo (embedded API server)
    python -m examples.configmapgen --embedded --keep-running # ... then keep serving for a scrape
    python -m examples.configmapgen                           # on the cluster of $KUBECONFIG / in-cluster

``--embedded`` starts the embedded API server in this process, installs the CRD, creates a sample
generator and walks it through an update, a deleted child and its own deletion, printing every
reconcile result. It exits 0 once the cluster converged at each step (1 if a step did not within
30 s); with ``--keep-running`` the controller goes on serving after the scenario until
SIGINT/SIGTERM. Without ``--embedded`` the controller runs until SIGINT/SIGTERM; ``--install-crd``
installs the CRD first. Every other flag is the Manager's (the Helm chart's): controller-runtime's
``--metrics-bind-address``/``--health-probe-bind-address`` (``:8080``/``:8081``; ``--embedded``
binds 127.0.0.1), ``--concurrency``, ``--namespace``, ``--graceful-shutdown-timeout``,
``--leader-elect`` (Lease ``--leader-election-id`` in ``--leader-election-namespace``),
``--metrics-secure``, the ``--webhook-*`` flags (the admission webhook of
``examples/configmapgen/webhooks.py`` is served when a certificate is given), and ``--log``,
``--log-format`` (or ``$KUBE_RUNTIME_LOG``, ``$KUBE_RUNTIME_LOG_FORMAT``). Traces are exported when
the OpenTelemetry environment asks for it (``OTEL_EXPORTER_OTLP_ENDPOINT``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
from prometheus_client import CollectorRegistry

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.configmapgen.controller import Context, build_controller, error_policy, reconcile
from examples.configmapgen.crd import CONFIG_MAP, CONFIG_MAP_GENERATOR, install_crd
from examples.configmapgen.webhooks import build_webhooks
from kube_runtime.client import Api, Client
from kube_runtime.controller import ControllerError, Reconciled
from kube_runtime.leader import LeaderElectionLost
from kube_runtime.manager import Manager, ManagerOptions, run_event_loop
from kube_runtime.observe import ServerOptions

__all__ = ["CONTROLLER_NAME", "build_parser", "describe", "main", "run_demo"]

#: The ``controller`` label of the metrics, the name of the checks and the default Lease name.
CONTROLLER_NAME = "configmapgen"
EMBEDDED_METRICS, EMBEDDED_HEALTH = "127.0.0.1:8080", "127.0.0.1:8081"  # a demo is not a service


def describe(item: Any) -> str:
    """One line per result item."""
    if isinstance(item, Reconciled):
        ref, action = item
        after = "await change" if action.requeue_after is None else f"requeue in {action.requeue_after:g}s"
        return f"reconciled {ref} ({item.reason}) in {item.duration * 1000:.1f} ms: {after}"
    if isinstance(item, ControllerError):
        return f"error: {item}"
    return str(item)  # ObjectNotFound: a deleted object, not an error


def add_controller(manager: Manager) -> Context:
    """The configmapgen controller, added to ``manager``; returns its context."""
    controller, ctx = build_controller(
        manager.client, manager.namespace, name=CONTROLLER_NAME, registry=manager.registry
    )
    manager.add(controller, reconcile, error_policy, ctx, on_item=show)
    return ctx


def add_shard(manager: Manager, ring: str, identity: str | None) -> Context:
    """The controller as one replica of ``ring`` (kube_runtime.sharding): it reconciles the
    generators labelled for it; ``/readyz`` waits for its member Lease and its shard's store."""
    controller, ctx = build_controller(
        manager.client, manager.namespace, name=CONTROLLER_NAME, registry=manager.registry
    )
    namespace = manager.options.controller.lease_namespace()
    sharded = controller.sharded(ring, namespace, identity=identity, registry=manager.registry)
    manager.observability.checks.add_store("shard", sharded)
    manager.add(sharded, reconcile, error_policy, ctx, on_item=show)  # type: ignore[arg-type]
    return ctx


def show(item: Any) -> None:
    print(describe(item), flush=True)


async def wait_for(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the API server until ``check()`` holds (as a user would with kubectl); 30 s at most."""
    with anyio.fail_after(30):
        while not await check():  # noqa: ASYNC110  (polls remote state, not an in-process flag)
            await anyio.sleep(0.05)
    print(f"--- converged: {what}", flush=True)


async def scenario(client: Client, namespace: str) -> None:
    """A sample generator through its life: create, update, lose its ConfigMap, delete."""
    generators = Api(client, CONFIG_MAP_GENERATOR, namespace)
    config_maps = Api(client, CONFIG_MAP, namespace)

    async def content_is(value: str) -> bool:
        cm = await config_maps.get_opt("sample")
        return cm is not None and (cm.get("data") or {}).get("content") == value

    async def all_gone() -> bool:
        return await generators.get_opt("sample") is None and await config_maps.get_opt("sample") is None

    sample = {"apiVersion": CONFIG_MAP_GENERATOR.api_version, "kind": CONFIG_MAP_GENERATOR.kind}
    await generators.create({**sample, "metadata": {"name": "sample"}, "spec": {"content": "hello"}})
    await wait_for("ConfigMap sample generated", lambda: content_is("hello"))
    await generators.patch("sample", {"spec": {"content": "hello again"}})
    await wait_for("ConfigMap sample updated", lambda: content_is("hello again"))
    await config_maps.delete("sample")
    await wait_for("deleted ConfigMap sample regenerated", lambda: content_is("hello again"))
    await generators.delete("sample")
    await wait_for("generator and ConfigMap deleted", all_gone)


async def run_demo(
    client: Client, namespace: str = "default", *, manager: Manager | None = None, keep_running: bool = False
) -> None:
    """Install the CRD and run the scenario while ``manager`` (default: one serving nothing, on a
    private registry) runs the controller; stop it afterwards unless ``keep_running``."""
    await install_crd(client)
    if manager is None:
        quiet, registry = ManagerOptions(server=ServerOptions("0", "0")), CollectorRegistry()
        manager = Manager(
            client, quiet, name=CONTROLLER_NAME, registry=registry, configure_logs=False, tracing=False
        )
    add_controller(manager)

    async def drive(running: Manager) -> None:
        await running.serving.wait()
        served = running.observability.server
        if served.metrics_url:
            print(f"metrics: {served.metrics_url}/metrics", flush=True)
        if served.health_url:
            print(f"health:  {served.health_url}/readyz {served.health_url}/livez", flush=True)
        try:
            await scenario(client, namespace)
        finally:
            if not keep_running:
                running.stop()
        then = "still serving (SIGINT/SIGTERM to stop)" if keep_running else "stopping"
        print(f"--- scenario finished; {then}", flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(drive, manager)
        await manager.run()
        tg.cancel_scope.cancel()  # stopped by a signal: the scenario stops too


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.configmapgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_argument_group("mode")
    mode.add_argument("--embedded", action="store_true", help="run the demo on an embedded API server")
    mode.add_argument("--keep-running", action="store_true", help="with --embedded: keep serving afterwards")
    mode.add_argument("--write-kubeconfig", metavar="PATH", help="with --embedded: write its kubeconfig here")
    mode.add_argument("--install-crd", action="store_true", help="install the CRD before starting")
    ManagerOptions.add_arguments(parser, name=CONTROLLER_NAME)
    shards = parser.add_argument_group(
        "sharding (instead of --leader-elect: every replica reconciles its share)"
    )
    shards.add_argument("--shard-ring", default=None, help="join this ring (docs/sharding.md)")
    shards.add_argument(
        "--shard-identity", default=None, help="name in the ring (default: $POD_NAME, else hostname)"
    )
    # None: ':8080'/':8081' normally, loopback with --embedded (resolved in main()).
    parser.set_defaults(metrics_bind_address=None, health_probe_bind_address=None)
    return parser


def _options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> ManagerOptions:
    if not args.embedded and (args.keep_running or args.write_kubeconfig):
        parser.error("--keep-running and --write-kubeconfig need --embedded")
    if args.embedded and (args.metrics_secure or args.leader_elect):
        parser.error("--metrics-secure and --leader-elect need a real API server and replicas")
    if args.shard_ring and (args.embedded or args.leader_elect):
        parser.error(
            "--shard-ring runs one replica of a ring on a cluster: not with --embedded or --leader-elect"
        )
    if args.metrics_secure and not (args.metrics_cert_file and args.metrics_key_file):
        parser.error("--metrics-secure needs --metrics-cert-file and --metrics-key-file")
    options = ManagerOptions.from_arguments(args)
    metrics, health = (EMBEDDED_METRICS, EMBEDDED_HEALTH) if args.embedded else (":8080", ":8081")
    server = replace(
        options.server,
        metrics_bind_address=args.metrics_bind_address or metrics,
        health_probe_bind_address=args.health_probe_bind_address or health,
    )
    return replace(options, server=server)


async def run(args: argparse.Namespace, options: ManagerOptions) -> None:
    if args.embedded:
        from kube_runtime.testing import ApiServer

        async with ApiServer(kubeconfig_path=args.write_kubeconfig) as server:
            print(f"embedded API server: {server.url} (kubeconfig {server.kubeconfig_path})", flush=True)
            manager = Manager(server.client, options, name=CONTROLLER_NAME)
            await run_demo(server.client, options.controller.namespace or "default", manager=manager,
                           keep_running=args.keep_running)  # fmt: skip
        return
    async with Client.infer() as client:
        if args.install_crd:
            await install_crd(client)
        manager = Manager(client, options, name=CONTROLLER_NAME)
        if args.shard_ring:
            add_shard(manager, args.shard_ring, args.shard_identity)
        else:
            add_controller(manager)
        manager.serve_webhooks(build_webhooks())
        await manager.run()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    options = _options(args, parser)
    status = 0
    try:
        run_event_loop(run, args, options)  # uvloop where installed, as Manager.main
    except* TimeoutError:
        print("did not converge in time", file=sys.stderr)
        status = 1
    except* (OSError, LeaderElectionLost) as group:  # a bind address in use; a lost Lease: restart
        print(f"error: {group.exceptions[0]}", file=sys.stderr)
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
