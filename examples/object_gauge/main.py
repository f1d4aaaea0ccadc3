"""A controller exporting a gauge series per object, removed when the object is deleted.

    python -m examples.object_gauge --embedded   # embedded API server, sample ConfigMaps, a demo
    python -m examples.object_gauge              # the cluster of $KUBECONFIG / in-cluster config

For every ConfigMap, ``/metrics`` has ``configmap_data_keys{name,namespace}`` and
``configmap_data_bytes{name,namespace}`` (decoded size of ``data`` and ``binaryData``), set by the
reconciler. A deleted ConfigMap's series disappear: deletes do not trigger reconciles, so the gauges
are given the controller's store and drop, at each scrape, the series of objects no longer in it
(which also covers objects deleted while the controller was down). An object being deleted behind
a finalizer has its series removed by the reconciler at once.

Logs are JSON lines on stderr (``KUBE_RUNTIME_LOG_FORMAT=console`` for plain text). Stops gracefully
on SIGINT/SIGTERM (a second signal forces it) or after ``--run-for`` seconds.
"""

from __future__ import annotations

import argparse
import base64
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import structlog
from prometheus_client import REGISTRY, generate_latest

from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import Action, Controller, ControllerOptions
from kube_runtime.observe import ObjectGauge, Observability, ServerOptions, configure_logging, setup_tracing
from kube_runtime.store import ObjectRef, Store
from kube_runtime.testing import ApiServer
from kube_runtime.watcher import WatcherConfig

__all__ = ["CONFIG_MAP", "Gauges", "data_size", "main", "reconcile"]

CONFIG_MAP = ApiResource.builtin("ConfigMap")
log = structlog.get_logger("examples.object_gauge")


@dataclass(slots=True)
class Gauges:
    """The reconciler's context: one gauge family per measurement, a series per ConfigMap."""

    keys: ObjectGauge
    size: ObjectGauge

    @classmethod
    def pruned_by(cls, store: Store) -> Gauges:
        """Gauges whose series go away with the objects of ``store`` (the controller's cache)."""
        return cls(
            ObjectGauge("configmap_data_keys", "Keys in a ConfigMap", store=store, resource=CONFIG_MAP),
            ObjectGauge("configmap_data_bytes", "Bytes of ConfigMap data", store=store, resource=CONFIG_MAP),
        )


def data_size(cm: dict[str, Any]) -> int:
    data: dict[str, str] = cm.get("data") or {}
    binary: dict[str, str] = cm.get("binaryData") or {}
    return sum(len(v.encode()) for v in data.values()) + sum(
        len(base64.b64decode(v)) for v in binary.values()
    )


async def reconcile(cm: dict[str, Any], gauges: Gauges) -> Action:
    if cm["metadata"].get("deletionTimestamp"):  # going away (held by a finalizer): drop its series now
        gauges.keys.remove(cm)
        gauges.size.remove(cm)
        return Action.await_change()
    keys = len(cm.get("data") or {}) + len(cm.get("binaryData") or {})
    size = data_size(cm)
    gauges.keys.set(cm, keys)
    gauges.size.set(cm, size)
    log.info("gauges set", keys=keys, bytes=size)
    return Action.await_change()


async def run(args: argparse.Namespace) -> None:
    options = ControllerOptions.from_arguments(args)
    async with AsyncExitStack() as stack:
        server: ApiServer | None = None
        if args.embedded:
            server = await stack.enter_async_context(ApiServer())
            client: Client = server.client
            for name, data in SAMPLES.items():
                await Api(client, CONFIG_MAP, "default").create(config_map(name, data))
        else:
            client = await stack.enter_async_context(Client.infer())

        controller = (
            Controller(Api(client, CONFIG_MAP, options.namespace), WatcherConfig().any_semantic())
            .with_config(concurrency=options.concurrency)
            .shutdown_on_signal()
        )
        if args.run_for is not None:
            controller.graceful_shutdown_on(anyio.sleep(args.run_for))
        gauges = Gauges.pruned_by(controller.store)

        obs = Observability(ServerOptions.from_arguments(args), client=client)
        obs.add_controller(controller)  # /readyz/configmap, /livez/configmap, reconcile metrics

        async with obs, anyio.create_task_group() as tg:
            log.info("serving", metrics=obs.server.metrics_url, probes=obs.server.health_url)
            if server is not None:
                tg.start_soon(demo, client, controller.store, gauges)
            await obs.run(controller, reconcile, None, gauges)  # until SIGINT/SIGTERM or --run-for
            tg.cancel_scope.cancel()
        log.info("stopped")


SAMPLES = {"web": {"listen": ":80", "workers": "4"}, "db": {"url": "postgres://db"}, "cache": {}}


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def demo(client: Client, configmaps: Store, gauges: Gauges) -> None:
    """Grow one ConfigMap, delete another, and show the series as a scrape would."""
    api = Api(client, CONFIG_MAP, "default")
    web, db = (ObjectRef.for_resource(CONFIG_MAP, name, "default") for name in ("web", "db"))
    await until(lambda: gauges.keys.value(web) == 2 and gauges.keys.value(db) == 1)
    await api.patch("web", {"data": {"timeout": "30s"}})
    await until(lambda: gauges.keys.value(web) == 3)
    await api.delete("db")
    await until(lambda: configmaps.get(db) is None)
    series = [
        line for line in generate_latest(REGISTRY).decode().splitlines() if line.startswith("configmap_")
    ]
    log.info("demo finished: press Ctrl+C to stop", series=series)


async def until(check: Callable[[], bool]) -> None:
    """Poll ``check()`` (the demo watches from outside the controller); 30 s at most."""
    with anyio.fail_after(30):
        while not check():  # noqa: ASYNC110  (the demo has no event to wait on)
            await anyio.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="object_gauge", description=__doc__.splitlines()[0])
    parser.add_argument("--embedded", action="store_true", help="run on the embedded API server, with a demo")
    parser.add_argument("--run-for", type=float, default=None, metavar="SECONDS", help="stop after this long")
    ControllerOptions.add_arguments(parser)  # --concurrency, --namespace
    ServerOptions.add_arguments(parser)  # --metrics-bind-address, --health-probe-bind-address, ...
    args = parser.parse_args(argv)
    configure_logging()  # $KUBE_RUNTIME_LOG, $KUBE_RUNTIME_LOG_FORMAT
    # Reconcile and HTTP spans; exported over OTLP only when an endpoint is configured (the chart's
    # tracing.otlpEndpoint sets OTEL_EXPORTER_OTLP_ENDPOINT).
    tracing = setup_tracing("object-gauge")
    try:
        anyio.run(run, args)
    finally:
        tracing.shutdown()  # export the spans still queued
    return 0
