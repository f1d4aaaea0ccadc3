"""The Website operator of examples/website written against the API as it was before the Manager,
predicates on a controller's own watches and the typing fixes: the same model, reconcile and
flags, with the wiring a user wrote by hand (after examples/configmapgen/main.py of that time).
Kept runnable (tests/examples/test_website.py runs both as processes) so that the comparison of
their sizes compares two operators that work. Not an example to copy."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

import anyio
import structlog
from prometheus_client import REGISTRY
from pydantic import Field

from kube_runtime import predicates
from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import (
    Action,
    Controller,
    ControllerOptions,
    Reconciler,
    shutdown_on_signals,
)
from kube_runtime.events import EventReport, EventType, Recorder, Reporter
from kube_runtime.finalizer import FinalizerApply, FinalizerEvent, PatchableApi, finalizer
from kube_runtime.leader import LeaderElectionLost, LeaderElector
from kube_runtime.observe import Observability, ServerOptions, configure_logging, setup_tracing
from kube_runtime.observe.watch_metrics import observe_watch
from kube_runtime.resources import (
    Conditions,
    CustomResource,
    KubeModel,
    TypedApi,
    apply_status,
    crd,
    set_condition,
    to_dict,
)
from kube_runtime.store import store
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.streams import predicate_filter
from kube_runtime.wait import await_condition, is_crd_established
from kube_runtime.watcher import WatcherConfig, WatchProgress, watcher

NAME = "website-operator"
CONTROLLER = "website"
FINALIZER = "website.kube-runtime.dev/cleanup"
CONFIG_MAP, DEPLOYMENT = ApiResource.builtin("ConfigMap"), ApiResource.builtin("Deployment")
log = structlog.get_logger("website")


class WebsiteSpec(KubeModel):
    content: str
    replicas: Annotated[int, Field(ge=0, le=10)] = 1


class WebsiteStatus(KubeModel):
    conditions: Conditions | None = None


class Website(CustomResource, group="website.kube-runtime.dev", version="v1", kind="Website"):
    spec: WebsiteSpec
    status: WebsiteStatus | None = None


@dataclass
class Context:
    client: Client
    recorder: Recorder


def children(site: Website) -> list[tuple[ApiResource, dict[str, Any]]]:
    """The ConfigMap and the Deployment ``site`` owns (garbage-collected with it)."""
    name, labels = site.name, {"app.kubernetes.io/instance": site.name}
    owner = {"apiVersion": site.api_version, "kind": site.kind, "name": name, "uid": site.metadata.uid}
    meta = {"name": name, "labels": labels, "ownerReferences": [{**owner, "controller": True}]}
    pod = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "volumeMounts": [
            {"name": "page", "mountPath": "/usr/share/nginx/html"}]}],
            "volumes": [{"name": "page", "configMap": {"name": name}}]},
    }  # fmt: skip
    deployment = {"replicas": site.spec.replicas, "selector": {"matchLabels": labels}, "template": pod}
    return [
        (CONFIG_MAP, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                      "data": {"index.html": site.spec.content}}),
        (DEPLOYMENT, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta, "spec": deployment}),
    ]  # fmt: skip


async def reconcile(site: Website, ctx: Context) -> Action:
    websites = TypedApi(ctx.client, Website, site.namespace)

    async def handle(event: FinalizerEvent) -> Action:
        if not isinstance(event, FinalizerApply):  # Cleanup: the children go with the garbage collector
            deleted = EventReport(EventType.NORMAL, "Deleted", "Cleanup", "cleaned up")
            await ctx.recorder.publish(deleted, event.object)
            return Action.await_change()
        for resource, child in children(site):
            api = Api(ctx.client, resource, site.namespace)
            await api.patch(site.name, child, patch_type="apply", field_manager=NAME, force=True)
        status = site.status or WebsiteStatus()
        generation = site.metadata.generation
        ready = set_condition(status.conditions, "Ready", True, "Applied", observed_generation=generation)
        await apply_status(websites, site, WebsiteStatus(conditions=ready), field_manager=NAME)
        applied = EventReport(EventType.NORMAL, "Applied", "Reconcile", "children applied")
        await ctx.recorder.publish(applied, event.object)
        return Action.requeue(300)

    # Api.patch narrows patch_type to a Literal, which the helper's protocol (str) does not accept.
    return await finalizer(cast(PatchableApi, websites.raw), FINALIZER, to_dict(site), handle)


async def install_crd(client: Client) -> None:
    crds = Api(client, ApiResource.builtin("CustomResourceDefinition"))
    definition = crd(Website)
    await crds.patch(definition["metadata"]["name"], definition, patch_type="apply", field_manager=NAME)
    await await_condition(crds, definition["metadata"]["name"], is_crd_established(), timeout=30)


def build_controller(client: Client, namespace: str | None) -> Controller:
    """The main watch filtered by generation and finalizers, keeping its watch metrics (bookmarks
    and progress), then the owned ConfigMaps, then the owned Deployments filtered by generation."""
    websites = TypedApi(client, Website, namespace)
    reader, writer = store(websites.raw.resource)
    progress = WatchProgress()
    main_watch = watcher(websites.raw, WatcherConfig(), progress=progress)
    observed = observe_watch(main_watch, f"{CONTROLLER}/Website", registry=REGISTRY, progress=progress)
    synced = observed.default_backoff().reflect(writer).synced_objects(reader)
    filtered = synced.predicate_filter(predicates.combine(predicates.generation, predicates.finalizers))
    controller = Controller.for_stream(websites.raw.resource, filtered, reader, name=CONTROLLER)
    controller.decode_objects(websites.decode).owns(Api(client, CONFIG_MAP, namespace))
    deployments = watcher(Api(client, DEPLOYMENT, namespace), WatcherConfig()).default_backoff()
    changed = predicate_filter(deployments.applied_objects(), predicates.generation)

    async def owners() -> Any:
        async for obj in changed:
            if isinstance(obj, Exception):
                yield obj
                continue
            for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
                if ref.get("kind") == "Website":
                    namespace_ = obj["metadata"].get("namespace")
                    yield ObjectRef.for_resource(websites.raw.resource, ref["name"], namespace_)

    return controller.reconcile_on(owners())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__)
    parser.add_argument("--install-crd", action="store_true", help="install the Website CRD first")
    ControllerOptions.add_arguments(parser.add_argument_group("controller"), leader_election_id=NAME)
    ServerOptions.add_arguments(parser.add_argument_group("metrics and health probes"))
    logs = parser.add_argument_group("logging")
    logs.add_argument("--log", default=None, help="log filter (default: $KUBE_RUNTIME_LOG, else info)")
    logs.add_argument("--log-format", choices=("json", "console"), default=None)
    logs.add_argument("-v", "--verbose", action="store_true", help="debug logs (overrides --log)")
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    log_filter = "debug,httpx=warning,httpcore=warning" if args.verbose else args.log
    fmt = args.log_format or os.environ.get("KUBE_RUNTIME_LOG_FORMAT", "").strip().lower() or None
    if fmt is None:
        fmt = "console" if sys.stderr.isatty() else "json"
    configure_logging(log_filter, fmt=cast(Literal["json", "console"], fmt))


async def run(args: argparse.Namespace) -> None:
    ctl = ControllerOptions.from_arguments(args)
    async with await Client.infer() as client:
        if args.install_crd:
            await install_crd(client)
        controller = build_controller(client, ctl.namespace)
        controller.with_config(concurrency=ctl.concurrency).shutdown_on_signal()
        controller.with_graceful_shutdown_timeout(ctl.graceful_shutdown_timeout)
        ctx = Context(client, Recorder(client, Reporter.with_hostname(NAME)))
        obs = Observability(ServerOptions.from_arguments(args), client=client)
        run_reconcile = cast(Reconciler[Context], reconcile)
        if not ctl.leader_elect:
            obs.add_controller(controller)
            async with obs:
                log.info("serving", metrics=obs.server.metrics_url, probes=obs.server.health_url)
                await obs.run(controller, run_reconcile, None, ctx)
            return
        lease, namespace = ctl.leader_election_id, ctl.lease_namespace()
        assert lease is not None
        waiting = anyio.CancelScope()
        # Registered for the whole run, so no signal falls between standby and leading.
        with shutdown_on_signals(waiting.cancel, name="website standby"):
            async with LeaderElector(client, lease, namespace) as elector, obs:
                log.info("serving", metrics=obs.server.metrics_url, probes=obs.server.health_url)
                with waiting:
                    await elector.wait_until_leading()
                if waiting.cancelled_caught:
                    return
                controller.graceful_shutdown_on(elector.lost)

                async def lead() -> None:
                    # Wired only once leading: a standby's empty store would read as never synced.
                    obs.add_controller(controller)
                    await obs.run(controller, run_reconcile, None, ctx)

                await elector.run_while_leading(lead)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.metrics_secure and not (args.metrics_cert_file and args.metrics_key_file):
        parser.error("--metrics-secure needs --metrics-cert-file and --metrics-key-file")
    _configure_logging(args)
    tracer_provider = setup_tracing(NAME)
    status = 0
    try:
        anyio.run(run, args)
    except* (OSError, LeaderElectionLost) as group:
        print(f"error: {group.exceptions[0]}", file=sys.stderr)
        status = 1
    finally:
        tracer_provider.shutdown()
    return status


if __name__ == "__main__":
    sys.exit(main())
