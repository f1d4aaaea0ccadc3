"""A reflector without a controller: keep a local cache of Pods and report how it changes.

    python -m examples.pod_reflector --embedded   # embedded API server, a few sample Pods, a demo
    python -m examples.pod_reflector              # the cluster of $KUBECONFIG / in-cluster config

The watch feeds a store (``managedFields`` stripped before caching, an index of Pods per node);
every change is logged with the store size, and ``/readyz`` turns ready once the first list is
cached. ``/metrics`` has the watch and store metrics (``kube_runtime_watch_*``,
``kube_runtime_store_objects{store="pods"}``). Logs are JSON lines on stderr; set
``KUBE_RUNTIME_LOG_FORMAT=console`` for plain text. Stops on SIGINT/SIGTERM or after ``--run-for``
seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Hashable, Iterable
from contextlib import AsyncExitStack
from typing import Any

import anyio
import structlog

from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import shutdown_on_signals
from kube_runtime.observe import Observability, ServerOptions, configure_logging, observe_watch, track_store
from kube_runtime.store import Store, store
from kube_runtime.streams import EventItem, WatchStream, drop_managed_fields
from kube_runtime.testing import ApiServer
from kube_runtime.watcher import Apply, Delete, InitDone, WatcherConfig, watcher

__all__ = ["POD", "main", "node_of", "pods_per_node", "reflect_pods"]

POD = ApiResource.builtin("Pod")
BY_NODE = "node"
log = structlog.get_logger("examples.pod_reflector")


def node_of(pod: dict[str, Any]) -> Iterable[Hashable]:
    """Index key: the node a Pod is scheduled on (unscheduled Pods are not indexed)."""
    node = (pod.get("spec") or {}).get("nodeName")
    return (node,) if node else ()


def pods_per_node(pods: Store) -> dict[str, int]:
    return {str(node): len(pods.index(BY_NODE, node)) for node in sorted(pods.index_values(BY_NODE), key=str)}


def reflect_pods(client: Client, namespace: str | None) -> tuple[Store, WatchStream[EventItem]]:
    """A Pod store and the event stream that fills it: the store moves only while it is iterated."""
    reader, writer = store(POD)
    writer.add_index(BY_NODE, node_of)
    events = watcher(Api(client, POD, namespace), WatcherConfig().any_semantic())
    stream = (
        observe_watch(events, "pods")  # kube_runtime_watch_* metrics
        .default_backoff()
        .modify(drop_managed_fields)
        .reflect(writer)
    )
    return reader, stream


async def report(pods: Store, stream: WatchStream[EventItem]) -> None:
    """Log every change the store takes, with its size."""
    async with stream:
        async for event in stream:
            if isinstance(event, Exception):
                log.warning("watch error, retrying", error=str(event))
            elif isinstance(event, InitDone):
                log.info("store ready", pods=len(pods), per_node=pods_per_node(pods))
            elif isinstance(event, Apply | Delete):
                meta = event.object["metadata"]
                log.info(
                    "pod deleted" if isinstance(event, Delete) else "pod applied",
                    pod=f"{meta.get('namespace')}/{meta['name']}",
                    node=(event.object.get("spec") or {}).get("nodeName"),
                    pods=len(pods),
                    per_node=pods_per_node(pods),
                )


def sample_pod(name: str, node: str, app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": app}},
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": f"{app}:1"}]},
    }


async def demo(client: Client, pods: Store) -> None:
    """Once the cache is ready: schedule a Pod, then delete one."""
    api = Api(client, POD, "default")
    await pods.wait_until_ready()
    await api.create(sample_pod("worker-2", "node-b", "worker"))
    await api.delete("web-1")
    log.info("demo finished: press Ctrl+C to stop")


async def run(args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        if args.embedded:
            server = await stack.enter_async_context(ApiServer())
            client: Client = server.client
            for name, node, app in (
                ("web-1", "node-a", "web"),
                ("web-2", "node-b", "web"),
                ("worker-1", "node-a", "worker"),
            ):
                await Api(client, POD, "default").create(sample_pod(name, node, app))
        else:
            client = await stack.enter_async_context(Client.infer())

        pods, stream = reflect_pods(client, args.namespace)
        obs = Observability(ServerOptions.from_arguments(args), client=client)
        obs.checks.add_store("pods", pods)  # /readyz fails until the first list is cached
        track_store("pods", pods)  # kube_runtime_store_objects / _ready

        async with obs, anyio.create_task_group() as tg:
            log.info("serving", metrics=obs.server.metrics_url, probes=obs.server.health_url)
            if args.embedded:
                tg.start_soon(demo, client, pods)
            # SIGINT/SIGTERM: the process-wide handler controllers use, here stopping everything.
            with shutdown_on_signals(tg.cancel_scope.cancel, name="pod reflector"):
                with anyio.move_on_after(args.run_for if args.run_for is not None else float("inf")):
                    await report(pods, stream)
            tg.cancel_scope.cancel()
        log.info("stopped", pods=len(pods))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pod_reflector", description=__doc__.splitlines()[0])
    parser.add_argument("--embedded", action="store_true", help="run on the embedded API server, with a demo")
    # Only --namespace of ControllerOptions applies (no controller here: no --concurrency).
    parser.add_argument("--namespace", default=None, help="watch one namespace (default: all)")
    parser.add_argument("--run-for", type=float, default=None, metavar="SECONDS", help="stop after this long")
    ServerOptions.add_arguments(parser)  # --metrics-bind-address, --health-probe-bind-address, ...
    args = parser.parse_args(argv)
    configure_logging()  # $KUBE_RUNTIME_LOG, $KUBE_RUNTIME_LOG_FORMAT
    anyio.run(run, args)
    return 0
