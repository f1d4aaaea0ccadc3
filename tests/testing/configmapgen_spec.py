"""The configmapgen example as a :class:`ControllerSpec` (the worked example of docs/testing.md), and
a deliberately broken variant of its reconciler that the kit must catch."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

from examples.configmapgen.controller import (
    FIELD_MANAGER,
    FINALIZER,
    Context,
    build_controller,
    error_policy,
    owner_reference,
    reconcile,
)
from examples.configmapgen.crd import CONFIG_MAP, CONFIG_MAP_GENERATOR, install_crd
from kube_runtime.client import Api, Client
from kube_runtime.controller import Action
from kube_runtime.finalizer import FinalizerApply, FinalizerEvent, finalizer
from kube_runtime.testing.controller_harness import ClusterState, ControllerSpec, ControllerUnderTest
from kube_runtime.watcher import WatcherConfig


def generator(name: str, content: str) -> dict[str, Any]:
    return {
        "apiVersion": CONFIG_MAP_GENERATOR.api_version,
        "kind": CONFIG_MAP_GENERATOR.kind,
        "metadata": {"name": name},
        "spec": {"content": content},
    }


def every_generator_has_its_config_map(state: ClusterState) -> None:
    """Every generator that is not being deleted carries the finalizer and controls exactly one
    ConfigMap, named after it, holding its content."""
    for name, gen in state.objects.items():
        meta = gen["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        assert FINALIZER in (meta.get("finalizers") or []), f"{name}: no finalizer"
        child = state.children.get(name)
        assert child is not None, f"{name}: no ConfigMap"
        content = (child.get("data") or {}).get("content")
        assert content == gen["spec"]["content"], f"{name}: ConfigMap holds {content!r}, spec {gen['spec']}"
        owners = [o for o in child["metadata"].get("ownerReferences") or [] if o.get("controller")]
        assert [o["uid"] for o in owners] == [meta["uid"]], f"{name}: ConfigMap controlled by {owners}"


def build(client: Client, config: WatcherConfig) -> ControllerUnderTest:
    controller, ctx = build_controller(client, "default", config, registry=CollectorRegistry())
    return ControllerUnderTest(controller, reconcile, error_policy, ctx)


CONFIGMAPGEN = ControllerSpec(
    resource=CONFIG_MAP_GENERATOR,
    build=build,
    make_object=generator,
    content_patch=lambda content: {"spec": {"content": content}},
    child_resource=CONFIG_MAP,
    child_patch=lambda content: {"data": {"content": content}},
    invariants=[every_generator_has_its_config_map],
    setup=install_crd,
)


# -- the broken variant ------------------------------------------------------------------------------


async def reconcile_forgetting_updates(generator: dict[str, Any], ctx: Context) -> Action:
    """configmapgen with a bug: it creates a missing ConfigMap but never updates an existing one, so
    a changed ``spec.content`` (or an edited ConfigMap) is never written."""
    generators = Api(ctx.client, CONFIG_MAP_GENERATOR, generator["metadata"]["namespace"])

    async def handle(event: FinalizerEvent) -> Action:
        obj = event.object
        config_maps = Api(ctx.client, CONFIG_MAP, obj["metadata"]["namespace"])
        name = obj["metadata"]["name"]
        if not isinstance(event, FinalizerApply):
            await config_maps.delete(name)
            return Action.await_change()
        if await config_maps.get_opt(name) is None:  # the bug: an existing ConfigMap is left alone
            desired = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "ownerReferences": [owner_reference(obj)]},
                "data": {"content": obj["spec"]["content"]},
            }
            await config_maps.patch(
                name, desired, patch_type="apply", field_manager=FIELD_MANAGER, force=True
            )
        return Action.requeue(300)

    return await finalizer(generators, FINALIZER, generator, handle)  # type: ignore[arg-type]


def build_broken(client: Client, config: WatcherConfig) -> ControllerUnderTest:
    controller, ctx = build_controller(client, "default", config, registry=CollectorRegistry())
    return ControllerUnderTest(controller, reconcile_forgetting_updates, error_policy, ctx)


BROKEN_CONFIGMAPGEN = ControllerSpec(
    resource=CONFIG_MAP_GENERATOR,
    build=build_broken,
    make_object=generator,
    content_patch=lambda content: {"spec": {"content": content}},
    child_resource=CONFIG_MAP,
    child_patch=lambda content: {"data": {"content": content}},
    invariants=[every_generator_has_its_config_map],
    setup=install_crd,
)
