"""The Website operator: each ``Website`` owns a ConfigMap with its page and a Deployment serving
it, reports ``status`` through server-side apply, cleans up behind a finalizer and publishes
events. ``python -m examples.website [--install-crd] [--leader-elect] ...`` takes the Helm chart's
flags (:class:`~kube_runtime.manager.ManagerOptions`) and serves metrics, probes and traces."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field

from kube_runtime import predicates
from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.controller import Action
from kube_runtime.events import EventReport, EventType, Recorder, Reporter
from kube_runtime.finalizer import FinalizerApply, FinalizerEvent, finalizer
from kube_runtime.manager import Manager
from kube_runtime.resources import (
    Conditions,
    CustomResource,
    KubeModel,
    TypedApi,
    TypedController,
    apply_status,
    install_crd,
    set_condition,
    to_dict,
)

NAME = "website-operator"
FINALIZER = "website.kube-runtime.dev/cleanup"
CONFIG_MAP, DEPLOYMENT = ApiResource.builtin("ConfigMap"), ApiResource.builtin("Deployment")


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

    return await finalizer(websites.raw, FINALIZER, to_dict(site), handle)


async def setup(manager: Manager) -> None:
    if manager.arguments.install_crd:
        await install_crd(manager.client, Website, field_manager=NAME)
    sites = TypedApi(manager.client, Website, manager.namespace)
    only_changes = [predicates.generation, predicates.finalizers]  # not our own status writes
    controller = TypedController(sites, predicates=only_changes, registry=manager.registry)
    controller.owns(manager.api(CONFIG_MAP)).owns(manager.api(DEPLOYMENT), predicates=[predicates.generation])
    ctx = Context(manager.client, Recorder(manager.client, Reporter.with_hostname(NAME)))
    manager.add(controller.controller, controller.reconciler(reconcile), None, ctx)


def flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--install-crd", action="store_true", help="install the Website CRD first")


def main(argv: list[str] | None = None) -> int:
    return Manager.main(NAME, setup, argv, add_arguments=flags, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
