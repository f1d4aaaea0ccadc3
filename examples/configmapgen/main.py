"""Run the configmapgen controller, with its metrics and health probes.

    python -m examples.configmapgen --embedded                # self-contained demo (embedded API server)
    python -m examples.configmapgen --embedded --keep-running # ... then keep serving for a scrape
    python -m examples.configmapgen                           # on the cluster of $KUBECONFIG / in-cluster

``--embedded`` starts the embedded API server in this process, installs the CRD, creates a sample
generator and walks it through an update, a deleted child and its own deletion, printing every
reconcile result. It exits 0 once the cluster converged at each step (1 if a step did not within
30 s); with ``--keep-running`` the controller goes on serving after the scenario until
SIGINT/SIGTERM. Without ``--embedded`` the controller runs until SIGINT/SIGTERM (a second signal
forces the stop; reconciles still running ``--graceful-shutdown-timeout`` seconds after the first
are cancelled); ``--install-crd`` installs the CRD first, ``--leader-elect`` reconciles only
while holding the Lease ``--leader-election-id`` in ``--leader-election-namespace``.

Both modes serve ``/metrics`` on ``--metrics-bind-address`` and ``/readyz``, ``/livez`` on
``--health-probe-bind-address`` (controller-runtime's flags and defaults ``:8080``/``:8081``;
``--embedded`` binds 127.0.0.1 unless told otherwise) and print the URLs at start. Logs go to
stderr, filtered by ``--log`` or ``$KUBE_RUNTIME_LOG`` (``info,kube_runtime.watcher=debug``) in
``--log-format`` or ``$KUBE_RUNTIME_LOG_FORMAT`` (``json``/``console``; console on a terminal).
Traces are exported when the OpenTelemetry environment asks for it (``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_TRACES_EXPORTER``). On a cluster, ``--webhook-cert-file``/``--webhook-key-file`` (and
``--webhook-bind-address``, default ``:9443``) also serve the admission webhook of
``examples/configmapgen/webhooks.py``. The Helm chart in ``charts/kube-runtime-controller`` passes
exactly these flags and variables.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Literal, cast

import anyio
import structlog

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from examples.configmapgen.controller import Context, build_controller, error_policy, reconcile
from examples.configmapgen.crd import CONFIG_MAP, CONFIG_MAP_GENERATOR, install_crd
from kube_runtime.client import Api, Client
from kube_runtime.controller import (
    Controller,
    ControllerError,
    ControllerOptions,
    Reconciled,
    shutdown_on_signals,
)
from kube_runtime.controller.shutdown import DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT
from kube_runtime.leader import LeaderElectionLost, LeaderElector
from kube_runtime.observe import Observability, ServerOptions, configure_logging, setup_tracing
from kube_runtime.webhooks.server import WebhookOptions

__all__ = ["CONTROLLER_NAME", "build_parser", "describe", "main", "run_demo"]

#: The ``controller`` label of the metrics, the name of the checks and the default Lease name.
CONTROLLER_NAME = "configmapgen"
#: Where ``--embedded`` serves unless told otherwise (loopback only: a demo is not a service).
EMBEDDED_METRICS_ADDRESS = "127.0.0.1:8080"
EMBEDDED_HEALTH_ADDRESS = "127.0.0.1:8081"

log = structlog.get_logger("examples.configmapgen")


def describe(item: Any) -> str:
    """One line per result item."""
    if isinstance(item, Reconciled):
        ref, action = item
        after = "await change" if action.requeue_after is None else f"requeue in {action.requeue_after:g}s"
        return f"reconciled {ref} ({item.reason}) in {item.duration * 1000:.1f} ms: {after}"
    if isinstance(item, ControllerError):
        return f"error: {item}"
    return repr(item)


async def wait_for(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the API server until ``check()`` holds (a demo watching from the outside, as a user
    would with kubectl); give up after 30 s."""
    with anyio.fail_after(30):
        while not await check():  # noqa: ASYNC110  (polls remote state, not an in-process flag)
            await anyio.sleep(0.05)
    print(f"--- converged: {what}", flush=True)


async def run_demo(
    client: Client,
    namespace: str = "default",
    *,
    observability: Observability | None = None,
    keep_running: bool = False,
    concurrency: int | None = None,
    name: str | None = None,
    graceful_shutdown_timeout: float | None = DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT,
) -> None:
    """Install the CRD, then drive a sample generator through its life while the controller runs.

    With ``observability`` the controller is wired to it (its probes and metrics; the caller
    runs it). With ``keep_running`` the controller goes on after the scenario until SIGINT/SIGTERM
    (main thread only); otherwise it shuts down gracefully once the scenario is done.
    """
    await install_crd(client)
    generators = Api(client, CONFIG_MAP_GENERATOR, namespace)
    config_maps = Api(client, CONFIG_MAP, namespace)
    controller, ctx = build_controller(client, namespace, **({"name": name} if name else {}))
    if concurrency is not None:
        controller.with_config(concurrency=concurrency)
    controller.with_graceful_shutdown_timeout(graceful_shutdown_timeout)
    if observability is not None:
        observability.add_controller(controller)  # before the run: /readyz waits for its store
    finished = anyio.Event()
    if keep_running:
        controller.shutdown_on_signal()
    else:
        controller.graceful_shutdown_on(finished)

    async def content_is(value: str) -> bool:
        cm = await config_maps.get_opt("sample")
        return cm is not None and (cm.get("data") or {}).get("content") == value

    async def scenario() -> None:
        try:
            sample = {
                "apiVersion": CONFIG_MAP_GENERATOR.api_version,
                "kind": CONFIG_MAP_GENERATOR.kind,
                "metadata": {"name": "sample"},
                "spec": {"content": "hello"},
            }
            await generators.create(sample)
            await wait_for("ConfigMap sample generated", lambda: content_is("hello"))
            await generators.patch("sample", {"spec": {"content": "hello again"}})
            await wait_for("ConfigMap sample updated", lambda: content_is("hello again"))
            await config_maps.delete("sample")
            await wait_for("deleted ConfigMap sample regenerated", lambda: content_is("hello again"))
            await generators.delete("sample")

            async def all_gone() -> bool:
                return (
                    await generators.get_opt("sample") is None and await config_maps.get_opt("sample") is None
                )

            await wait_for("generator and ConfigMap deleted", all_gone)
            if keep_running:
                print("--- scenario finished; still serving (SIGINT/SIGTERM to stop)", flush=True)
        finally:
            finished.set()

    def show(item: Any) -> None:
        print(describe(item), flush=True)

    async with anyio.create_task_group() as tg:
        tg.start_soon(scenario)
        if observability is not None:
            await observability.run(controller, reconcile, error_policy, ctx, on_item=show)
        else:
            async with controller.run(reconcile, error_policy, ctx) as results:
                async for item in results:
                    show(item)
        tg.cancel_scope.cancel()  # stopped by a signal: the scenario stops too


# -- command line ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m examples.configmapgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_argument_group("mode")
    mode.add_argument("--embedded", action="store_true", help="run the demo on an embedded API server")
    mode.add_argument(
        "--keep-running",
        action="store_true",
        help="with --embedded: keep the controller and its endpoints up after the scenario",
    )
    mode.add_argument(
        "--write-kubeconfig",
        metavar="PATH",
        default=None,
        help="with --embedded: write the embedded API server's kubeconfig here (for kubectl)",
    )
    mode.add_argument("--install-crd", action="store_true", help="install the CRD before starting")

    ctl = parser.add_argument_group("controller")
    # --concurrency, --namespace, --leader-elect, --leader-election-id, --leader-election-namespace
    ControllerOptions.add_arguments(ctl, leader_election_id=CONTROLLER_NAME)

    shards = parser.add_argument_group(
        "sharding (replaces --leader-elect: every replica reconciles its share)"
    )
    shards.add_argument("--shard-ring", default=None, help="join this ring (kube_runtime.sharding)")
    shards.add_argument(
        "--shard-identity",
        default=None,
        help="this replica's name in the ring (default: $POD_NAME, else hostname)",
    )

    server = parser.add_argument_group("metrics and health probes")
    ServerOptions.add_arguments(server)
    # None: ':8080'/':8081' normally, loopback with --embedded (resolved in main()).
    parser.set_defaults(metrics_bind_address=None, health_probe_bind_address=None)

    webhooks = parser.add_argument_group("admission webhook (served when --webhook-cert-file is given)")
    WebhookOptions.add_arguments(webhooks)
    parser.set_defaults(webhook_cert_file=None, webhook_key_file=None)

    logs = parser.add_argument_group("logging")
    logs.add_argument("--log", default=None, help="log filter (default: $KUBE_RUNTIME_LOG, else info)")
    logs.add_argument(
        "--log-format",
        choices=("json", "console"),
        default=None,
        help="default: $KUBE_RUNTIME_LOG_FORMAT, else console on a terminal and json otherwise",
    )
    logs.add_argument("-v", "--verbose", action="store_true", help="debug logs (overrides --log)")
    return parser


def _server_options(args: argparse.Namespace) -> ServerOptions:
    if args.metrics_bind_address is None:
        args.metrics_bind_address = EMBEDDED_METRICS_ADDRESS if args.embedded else ":8080"
    if args.health_probe_bind_address is None:
        args.health_probe_bind_address = EMBEDDED_HEALTH_ADDRESS if args.embedded else ":8081"
    return ServerOptions.from_arguments(args)


def _configure_logging(args: argparse.Namespace) -> None:
    log_filter = "debug,httpx=warning,httpcore=warning" if args.verbose else args.log
    fmt = args.log_format or os.environ.get("KUBE_RUNTIME_LOG_FORMAT", "").strip().lower() or None
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    configure_logging(log_filter, fmt=cast(Literal["json", "console"], fmt))


def _announce(obs: Observability) -> None:
    metrics, health = obs.server.metrics_url, obs.server.health_url
    lines = []
    if metrics:
        lines.append(f"metrics: {metrics}/metrics")
    if health:
        lines.append(f"health:  {health}/readyz {health}/livez")
    for line in lines:
        print(line, flush=True)
    log.info("serving", metrics=metrics and f"{metrics}/metrics", health=health)


def _validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if not args.embedded and (args.keep_running or args.write_kubeconfig):
        parser.error("--keep-running and --write-kubeconfig need --embedded")
    if args.metrics_secure:
        if args.embedded:
            parser.error("--metrics-secure needs a real API server (TokenReview and SubjectAccessReview)")
        if not (args.metrics_cert_file and args.metrics_key_file):
            parser.error(
                "--metrics-secure needs --metrics-cert-file and --metrics-key-file: "
                "bearer tokens must not travel in clear text"
            )
    if args.embedded and args.leader_elect:
        parser.error("--leader-elect makes no sense with --embedded (one process, one replica)")
    if args.shard_ring and (args.embedded or args.leader_elect):
        parser.error(
            "--shard-ring runs one replica of a ring on a cluster: not with --embedded or --leader-elect"
        )


async def run_embedded(args: argparse.Namespace) -> None:
    """The ``--embedded`` demo: API server, observability and controller in this process."""
    from kube_runtime.testing import ApiServer

    options = _server_options(args)
    controller_options = ControllerOptions.from_arguments(args)
    async with ApiServer(kubeconfig_path=args.write_kubeconfig) as server:
        print(f"embedded API server: {server.url} (kubeconfig {server.kubeconfig_path})", flush=True)
        async with Observability(options) as obs:
            _announce(obs)
            await run_demo(
                server.client,
                controller_options.namespace or "default",
                observability=obs,
                keep_running=args.keep_running,
                concurrency=controller_options.concurrency,
                name=CONTROLLER_NAME,
                graceful_shutdown_timeout=controller_options.graceful_shutdown_timeout,
            )


async def run_cluster(args: argparse.Namespace) -> None:
    """Run until SIGINT/SIGTERM against the cluster the environment points to."""
    options = _server_options(args)
    ctl = ControllerOptions.from_arguments(args)
    async with await Client.infer() as client:
        if args.install_crd:
            await install_crd(client)
        controller, ctx = build_controller(client, ctl.namespace, name=CONTROLLER_NAME)
        controller.with_config(concurrency=ctl.concurrency).shutdown_on_signal()
        controller.with_graceful_shutdown_timeout(ctl.graceful_shutdown_timeout)
        obs = Observability(options, client=client)  # client: reviews scrapes with --metrics-secure
        async with contextlib.AsyncExitStack() as stack:
            if args.webhook_cert_file:
                from examples.configmapgen.webhooks import build_webhooks

                webhook_server = WebhookOptions.from_arguments(args).server(build_webhooks())
                await stack.enter_async_context(webhook_server)
                obs.checks.add_readyz("webhooks", webhook_server.started_check())
            if args.shard_ring:
                await _run_shard(obs, controller, ctx, ctl, args.shard_ring, args.shard_identity)
            else:
                await _run_cluster_controller(obs, controller, ctx, ctl, client)


async def _run_shard(
    obs: Observability,
    controller: Controller,
    ctx: Context,
    ctl: ControllerOptions,
    ring: str,
    identity: str | None,
) -> None:
    """One replica of the ring: reconciles the generators labelled for it (see docs/sharding.md)."""
    sharded = controller.sharded(ring=ring, lease_namespace=ctl.lease_namespace(), identity=identity)
    obs.checks.add_store("shard", sharded)  # /readyz: member Lease held and the shard's store synced
    async with obs:
        _announce(obs)
        log.info("joining the ring", ring=ring, identity=sharded.identity)
        await obs.run(sharded, reconcile, error_policy, ctx, on_item=_log_reconciled)


async def _run_cluster_controller(
    obs: Observability, controller: Controller, ctx: Context, ctl: ControllerOptions, client: Client
) -> None:
    """The controller part of :func:`run_cluster` (with or without leader election)."""
    if not ctl.leader_elect:
        obs.add_controller(controller)
        async with obs:
            _announce(obs)
            await obs.run(controller, reconcile, error_policy, ctx, on_item=_log_reconciled)
        return

    lease, namespace = ctl.leader_election_id, ctl.lease_namespace()
    assert lease is not None  # ControllerOptions: --leader-elect comes with a Lease name
    waiting = anyio.CancelScope()
    # Registered for the whole run, so no signal falls between standby and leading: a signal
    # while standing by ends the wait; once leading, the controller's own registration stops it.
    with shutdown_on_signals(waiting.cancel, name="configmapgen standby"):
        async with LeaderElector(client, lease, namespace) as elector, obs:
            _announce(obs)
            log.info("waiting for the lease", lease=f"{namespace}/{lease}")
            with waiting:
                await elector.wait_until_leading()
            if waiting.cancelled_caught:
                log.info("stopping before leading")
                return
            controller.graceful_shutdown_on(elector.lost)
            await elector.run_while_leading(_lead, obs, controller, ctx)


async def _lead(obs: Observability, controller: Controller, ctx: Context) -> None:
    # Wired only once leading: a standby serves passing probes (so a rolling update can proceed)
    # and no controller series (its empty store would read as never synced).
    obs.add_controller(controller)
    await obs.run(controller, reconcile, error_policy, ctx, on_item=_log_reconciled)


def _log_reconciled(item: Any) -> None:
    if isinstance(item, Reconciled):
        log.info(describe(item))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(args, parser)
    _configure_logging(args)
    # Exports spans only when OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_TRACES_EXPORTER ask for it (the
    # chart's tracing values); otherwise spans still carry the trace ids the logs show.
    tracer_provider = setup_tracing(CONTROLLER_NAME)
    status = 0
    try:
        anyio.run(run_embedded if args.embedded else run_cluster, args)
    except* TimeoutError:
        print("did not converge in time", file=sys.stderr)
        status = 1
    except* OSError as group:  # e.g. a bind address in use
        print(f"error: {group.exceptions[0]}", file=sys.stderr)
        status = 1
    except* LeaderElectionLost as group:  # exit so that the pod restarts and campaigns again
        print(f"error: {group.exceptions[0]}", file=sys.stderr)
        status = 1
    finally:
        tracer_provider.shutdown()  # export the spans still queued
    return status


if __name__ == "__main__":
    sys.exit(main())
