"""Two controllers fed by one watch: a SharedReflector and ``Controller.for_shared``.

    python -m examples.shared_reflector --embedded   # embedded API server, sample ConfigMaps, a demo
    python -m examples.shared_reflector              # the cluster of $KUBECONFIG / in-cluster config

Both controllers look at the ConfigMaps labelled ``example.com/summarize=true`` through one watch
and one cache:

* ``annotator`` writes a summary derived from the labels and data into the ``example.com/summary``
  annotation (``team=payments keys=2 bytes=7``);
* ``validator`` requires the ``example.com/team`` label and publishes a ``Warning`` Event
  (``MissingTeam``) on ConfigMaps without it. It only looks at labels, so its subscription is
  filtered with ``predicates.labels``: the annotator's writes do not re-trigger it.

``kube_runtime_watch_events_total{watch="configmaps",type="init"}`` counts one list for both, and
``kube_runtime_store_objects{store="configmaps"}`` the one cache once; the ``controller_runtime_*``
metrics are per controller. Logs are JSON lines on stderr (``KUBE_RUNTIME_LOG_FORMAT=console`` for
plain text). Both run on one :class:`~kube_runtime.manager.Manager` (the Helm chart's flags, the
shared cache, metrics and probes) and stop gracefully on SIGINT/SIGTERM (a second signal forces it)
or after ``--run-for`` seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import structlog

from kube_runtime import predicates
from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import Action, Controller
from kube_runtime.events import EventReport, EventType, Recorder, Reporter
from kube_runtime.manager import Manager, ManagerOptions
from kube_runtime.streams import drop_managed_fields
from kube_runtime.testing import ApiServer
from kube_runtime.watcher import WatcherConfig

__all__ = [
    "CONFIG_MAP",
    "SELECTOR",
    "SUMMARY",
    "TEAM",
    "Context",
    "annotate",
    "main",
    "summary_of",
    "validate",
]

CONFIG_MAP = ApiResource.builtin("ConfigMap")
SELECTOR = "example.com/summarize=true"  # only these ConfigMaps are watched and annotated
TEAM = "example.com/team"
SUMMARY = "example.com/summary"
EVENTS = ApiResource.builtin("Event", "events.k8s.io/v1")
log = structlog.get_logger("examples.shared_reflector")


@dataclass(slots=True)
class Context:
    client: Client
    recorder: Recorder


def summary_of(cm: dict[str, Any]) -> str:
    data: dict[str, str] = cm.get("data") or {}
    team = (cm["metadata"].get("labels") or {}).get(TEAM, "none")
    size = sum(len(value.encode()) for value in data.values())
    return f"team={team} keys={len(data)} bytes={size}"


async def annotate(cm: dict[str, Any], ctx: Context) -> Action:
    """Keep the summary annotation current (a no-op when it already is)."""
    meta = cm["metadata"]
    summary = summary_of(cm)
    if (meta.get("annotations") or {}).get(SUMMARY) != summary:
        patch = {"metadata": {"annotations": {SUMMARY: summary}}}
        await Api(ctx.client, CONFIG_MAP, meta["namespace"]).patch(meta["name"], patch)
        log.info("summary written", summary=summary)
    return Action.await_change()


async def validate(cm: dict[str, Any], ctx: Context) -> Action:
    """Warn about a ConfigMap without a team label (repeats are folded into one Event series)."""
    if TEAM in (cm["metadata"].get("labels") or {}):
        log.info("valid")
    else:
        note = f"label {TEAM} is required"
        await ctx.recorder.publish(EventReport(EventType.WARNING, "MissingTeam", "Validate", note), cm)
        log.warning("invalid", problem=note)
    return Action.await_change()


async def run(args: argparse.Namespace, options: ManagerOptions) -> None:
    async with AsyncExitStack() as stack:
        server: ApiServer | None = None
        if args.embedded:
            server = await stack.enter_async_context(ApiServer())
            client: Client = server.client
            await seed(client)
        else:
            client = await stack.enter_async_context(Client.infer())
        manager = Manager(client, options, name="shared-reflector")
        # One watch and one cache (kube_runtime_watch_*{watch="configmaps"}) ...
        config = WatcherConfig().labels(SELECTOR)
        shared = manager.shared(CONFIG_MAP, config, name="configmaps", modify=drop_managed_fields)
        # ... and two controllers subscribed to it; the validator only cares about label changes.
        annotator = Controller.for_shared(shared, name="annotator", registry=manager.registry)
        validator = Controller.for_shared(
            shared, name="validator", predicate=predicates.labels, registry=manager.registry
        )
        ctx = Context(client, Recorder(client, Reporter.with_hostname("shared-reflector")))
        # /readyz/<name>, /livez/<name> and reconcile metrics per controller; the cache is
        # published once, as kube_runtime_store_objects{store="configmaps"}.
        manager.add(annotator, annotate, None, ctx, store_name="configmaps")
        manager.add(validator, validate, None, ctx)

        async with anyio.create_task_group() as tg:
            if server is not None:
                tg.start_soon(demo, server)
            if args.run_for is not None:
                tg.start_soon(stop_after, manager, args.run_for)
            await manager.run()
            tg.cancel_scope.cancel()
        log.info("stopped", configmaps=len(annotator.store))


async def stop_after(manager: Manager, seconds: float) -> None:
    await anyio.sleep(seconds)
    manager.stop()


def sample(name: str, team: str | None, **data: str) -> dict[str, Any]:
    labels = {"example.com/summarize": "true"} | ({TEAM: team} if team else {})
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": data,
    }


async def seed(client: Client) -> None:
    api = Api(client, CONFIG_MAP, "default")
    await api.create(sample("payments-config", "payments", currency="EUR", limit="1000"))
    await api.create(sample("search-config", "search", engine="bm25"))
    await api.create(sample("orphan-config", None, debug="true"))
    unwatched = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated"}}
    await api.create(unwatched)


async def demo(server: ApiServer) -> None:
    """Wait for the annotations, give the orphan a team, and show that one watch served both."""
    api = Api(server.client, CONFIG_MAP, "default")

    async def annotated(name: str, summary: str) -> bool:
        cm = await api.get(name)
        return (cm["metadata"].get("annotations") or {}).get(SUMMARY) == summary

    await until(lambda: annotated("orphan-config", "team=none keys=1 bytes=4"))
    await api.patch("orphan-config", {"metadata": {"labels": {TEAM: "platform"}}})
    await until(lambda: annotated("orphan-config", "team=platform keys=1 bytes=4"))
    log.info(
        "demo finished: press Ctrl+C to stop",
        configmap_watches_open=server.watch_count(CONFIG_MAP),  # 1: both controllers share it
        warnings=[e["note"] for e in (await Api(server.client, EVENTS, "default").list())["items"]],
    )


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the API server (as a user with kubectl would) until ``check()`` holds; 30 s at most."""
    with anyio.fail_after(30):
        while not await check():  # noqa: ASYNC110  (remote state, not an in-process flag)
            await anyio.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = ManagerOptions.parser(name="shared_reflector", description=__doc__.splitlines()[0])
    parser.add_argument("--embedded", action="store_true", help="run on the embedded API server, with a demo")
    parser.add_argument("--run-for", type=float, default=None, metavar="SECONDS", help="stop after this long")
    args = parser.parse_args(argv)  # the chart's flags: --concurrency (per controller), --namespace, ...
    anyio.run(run, args, ManagerOptions.from_parsed(parser, args))
    return 0
