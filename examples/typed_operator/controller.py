"""The Website reconciler: render the page into an owned ConfigMap (server-side apply), report a
``Ready`` condition, and run a cleanup behind a finalizer before the Website goes away.

Every pass applies the same ConfigMap and the same status when nothing changed; both are
server-side applies, so an unchanged Website costs no write and triggers no further reconcile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from examples.typed_operator.resources import Website, WebsiteStatus
from kube_runtime.client import Client
from kube_runtime.controller import Action
from kube_runtime.finalizer import FinalizerApply, FinalizerEvent, finalizer
from kube_runtime.resources import (
    ConfigMap,
    ObjectMeta,
    TypedApi,
    TypedController,
    apply_status,
    owner_reference,
    set_condition,
    to_dict,
)
from kube_runtime.watcher import WatcherConfig

__all__ = ["FIELD_MANAGER", "FINALIZER", "Context", "build_controller", "reconcile", "render"]

FIELD_MANAGER = "typed-operator"
FINALIZER = "demo.kube-runtime.dev/cleanup"
log = structlog.get_logger("examples.typed_operator")


@dataclass(slots=True)
class Context:
    client: Client
    #: Names of the Websites whose cleanup ran (what a real operator would release outside).
    cleaned_up: list[str] = field(default_factory=list)


def render(site: Website) -> ConfigMap:
    """The ConfigMap serving ``site``: owned by it, so it goes when the Website goes."""
    page = f"<html><title>{site.spec.title}</title><body>{site.spec.body}</body></html>"
    return ConfigMap(
        metadata=ObjectMeta(
            name=f"{site.name}-site",
            namespace=site.namespace,
            owner_references=[owner_reference(site)],
        ),
        data={"index.html": page, "replicas": str(site.spec.replicas)},
    )


async def reconcile(site: Website, ctx: Context) -> Action:
    websites = TypedApi(ctx.client, Website, site.namespace)

    async def handle(event: FinalizerEvent) -> Action:
        if isinstance(event, FinalizerApply):
            return await publish(site, websites, ctx)
        ctx.cleaned_up.append(site.name)
        log.info("website cleaned up", website=site.name)
        return Action.await_change()

    # The finalizer helper works on dicts: hand it the wire form and the dict Api.
    return await finalizer(websites.raw, FINALIZER, to_dict(site), handle)


async def publish(site: Website, websites: TypedApi[Website], ctx: Context) -> Action:
    child = render(site)
    config_maps = TypedApi(ctx.client, ConfigMap, site.namespace)
    await config_maps.apply(child, field_manager=FIELD_MANAGER, force=True)
    page = (child.data or {})["index.html"]
    status = site.status or WebsiteStatus()
    conditions = set_condition(
        status.conditions,
        "Ready",
        True,
        "Published",
        f"served from ConfigMap {child.metadata.name}",
        observed_generation=site.metadata.generation,
    )
    updated = await apply_status(
        websites, site, WebsiteStatus(pages=len(page), conditions=conditions), field_manager=FIELD_MANAGER
    )
    log.info(
        "website published",
        website=site.name,
        title=site.spec.title,
        bytes=len(page),
        resource_version=updated.metadata.resource_version,
    )
    return Action.requeue(300)


def build_controller(
    client: Client, namespace: str | None, name: str = "website"
) -> TypedController[Website]:
    """The controller: Websites, and the ConfigMaps they own (a deleted page is re-rendered)."""
    return TypedController(TypedApi(client, Website, namespace), WatcherConfig(), name=name).owns(
        TypedApi(client, ConfigMap, namespace)
    )
