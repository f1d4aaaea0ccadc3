"""The configmapgen controller: every ``ConfigMapGenerator`` owns a ConfigMap with its content.

Behaviour (kube-rs's ``configmapgen_controller`` example, plus a finalizer and events):

* Apply: server-side apply of ``ConfigMap/<generator name>`` with ``data.content = spec.content``
  and a controller owner reference, then a ``Normal``/``Generated`` event; requeue after 5 minutes.
* The controller owns ConfigMaps: editing or deleting a generated ConfigMap reconciles its
  generator, which puts it back.
* Cleanup (the generator is being deleted): delete the ConfigMap, publish ``Deleted``, and let the
  finalizer go so the generator disappears.
* Failures are retried with the per-object exponential backoff and reported as a ``Warning`` event.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from examples.configmapgen.crd import CONFIG_MAP, CONFIG_MAP_GENERATOR
from kube_runtime.client import Api, ApiError, Client
from kube_runtime.controller import Action, Controller
from kube_runtime.events import EventReport, EventType, Recorder, Reporter
from kube_runtime.finalizer import FinalizerApply, FinalizerEvent, finalizer
from kube_runtime.watcher import WatcherConfig

__all__ = ["FIELD_MANAGER", "FINALIZER", "Context", "build_controller", "error_policy", "reconcile"]

FINALIZER = "configmapgenerators.nullable.se/cleanup"
FIELD_MANAGER = "configmapgen"
REQUEUE_SECONDS = 300.0


@dataclass(slots=True)
class Context:
    client: Client
    recorder: Recorder


def owner_reference(generator: dict[str, Any]) -> dict[str, Any]:
    meta = generator["metadata"]
    return {
        "apiVersion": CONFIG_MAP_GENERATOR.api_version,
        "kind": CONFIG_MAP_GENERATOR.kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


async def reconcile(generator: dict[str, Any], ctx: Context) -> Action:
    namespace = generator["metadata"]["namespace"]
    generators = Api(ctx.client, CONFIG_MAP_GENERATOR, namespace)

    async def handle(event: FinalizerEvent) -> Action:
        if isinstance(event, FinalizerApply):
            return await apply(event.object, ctx)
        return await cleanup(event.object, ctx)

    return await finalizer(generators, FINALIZER, generator, handle)


async def apply(generator: dict[str, Any], ctx: Context) -> Action:
    meta = generator["metadata"]
    config_maps = Api(ctx.client, CONFIG_MAP, meta["namespace"])
    desired = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": meta["name"], "ownerReferences": [owner_reference(generator)]},
        "data": {"content": generator["spec"]["content"]},
    }
    current = await config_maps.get_opt(meta["name"])
    if current is None or current.get("data") != desired["data"]:
        await config_maps.patch(
            meta["name"], desired, patch_type="apply", field_manager=FIELD_MANAGER, force=True
        )
        note = f"wrote ConfigMap {meta['name']}"
        await ctx.recorder.publish(EventReport(EventType.NORMAL, "Generated", "Reconcile", note), generator)
    return Action.requeue(REQUEUE_SECONDS)


async def cleanup(generator: dict[str, Any], ctx: Context) -> Action:
    meta = generator["metadata"]
    config_maps = Api(ctx.client, CONFIG_MAP, meta["namespace"])
    try:
        await config_maps.delete(meta["name"])
    except ApiError as err:
        if err.code != 404:
            raise
    note = f"deleted ConfigMap {meta['name']}"
    await ctx.recorder.publish(EventReport(EventType.NORMAL, "Deleted", "Cleanup", note), generator)
    return Action.await_change()


async def error_policy(generator: dict[str, Any], error: Exception, ctx: Context) -> Action:
    note = str(error)[:1000]
    with contextlib.suppress(Exception):  # an event is best effort; the retry below matters
        await ctx.recorder.publish(
            EventReport(EventType.WARNING, "ReconcileFailed", "Reconcile", note), generator
        )
    return Action.requeue_with_backoff()


def build_controller(
    client: Client,
    namespace: str | None = None,
    watcher_config: WatcherConfig | None = None,
    **kwargs: Any,
) -> tuple[Controller, Context]:
    """The controller and its context. ``watcher_config`` (default ``WatcherConfig()``) is used for
    both watches; ``kwargs`` go to :class:`Controller` (``name``, ``registry``)."""
    generators = Api(client, CONFIG_MAP_GENERATOR, namespace)
    config_maps = Api(client, CONFIG_MAP, namespace)
    config = watcher_config or WatcherConfig()
    controller = Controller(generators, config, **kwargs).owns(config_maps, config)
    recorder = Recorder(client, Reporter.with_hostname(FIELD_MANAGER))
    return controller, Context(client, recorder)
