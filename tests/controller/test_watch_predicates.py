"""Predicates on a Controller's own watches: ``Controller(api, predicates=...)``, ``owns(...,
predicates=...)`` and ``watches(..., predicates=...)`` filter triggers; the store sees every change.

Ordering device: with ``concurrency=1`` the scheduler runs due objects in trigger order, so once a
marker object changed after the change under test has been reconciled, a reconcile that change
triggered would already have been yielded. Each filtering case has an unfiltered twin that shows
the change does trigger without the predicate."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from kube_runtime import predicates
from kube_runtime.client import Api, ApiResource
from kube_runtime.controller import Action, Controller, QueueError, Reconciled
from kube_runtime.finalizer import FinalizerCleanup, FinalizerEvent, finalizer
from kube_runtime.predicates import Predicate
from kube_runtime.store import SharedReflector, store
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.testing.server import ApiServer
from kube_runtime.watcher import watcher
from tests.controller.conftest import CONFIG_MAP, SECRET, config_map, take_until

pytestmark = pytest.mark.anyio

DEPLOYMENT = ApiResource.builtin("Deployment")


def deployment(name: str, replicas: int = 1) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }


async def await_change(_obj: dict[str, Any], _ctx: None) -> Action:
    return Action.await_change()


def reconciled(items: list[Any]) -> list[str]:
    return [item[0].name for item in items if isinstance(item, Reconciled)]


def done_with(name: str) -> Any:
    return lambda items: name in reconciled(items)


@pytest.mark.parametrize("filters", [(), (predicates.generation,)], ids=["unfiltered", "generation"])
async def test_main_watch_predicate_drops_status_only_updates(
    api_server: ApiServer, filters: tuple[Predicate, ...]
) -> None:
    deployments = Api(api_server.client, DEPLOYMENT, "default")
    await deployments.create(deployment("a"))
    controller = Controller(deployments, predicates=filters).with_config(concurrency=1)
    async with controller.run(await_change, None, None) as results:
        assert reconciled(await take_until(results, done_with("a"))) == ["a"]
        await deployments.patch_status("a", {"status": {"observedGeneration": 1}})
        await deployments.create(deployment("marker"))
        after_status = reconciled(await take_until(results, done_with("marker")))
        assert after_status == (["a", "marker"] if not filters else ["marker"])
        await deployments.patch("a", {"spec": {"replicas": 2}})  # a new generation always passes
        assert reconciled(await take_until(results, done_with("a"))) == ["a"]
    stored = controller.store.get(ObjectRef.for_resource(DEPLOYMENT, "a", "default"))
    assert stored is not None
    assert stored["status"]["observedGeneration"] == 1  # the store saw the filtered update


@pytest.mark.parametrize("filters", [(), (predicates.labels,)], ids=["unfiltered", "labels"])
async def test_owns_predicate_filters_child_changes_but_not_deletes(
    api_server: ApiServer, filters: tuple[Predicate, ...]
) -> None:
    config_maps = Api(api_server.client, CONFIG_MAP, "default")
    secrets = Api(api_server.client, SECRET, "default")
    owners = {}
    for name in ("owner", "marker"):
        owners[name] = await config_maps.create(config_map(name))
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owners["owner"]["metadata"]["uid"],
    }
    marker_ref = dict(ref, name="marker", uid=owners["marker"]["metadata"]["uid"])
    child = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "child", "ownerReferences": [ref]}}
    marker = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "m", "ownerReferences": [marker_ref]},
    }
    controller = (
        Controller(config_maps, name="owner").owns(secrets, predicates=filters).with_config(concurrency=1)
    )
    async with controller.run(await_change, None, None) as results:
        await take_until(results, lambda items: {"owner", "marker"} <= set(reconciled(items)))
        await secrets.create(child)  # new children pass any predicate
        await secrets.create(marker)
        assert reconciled(await take_until(results, done_with("marker"))) == ["owner", "marker"]
        await secrets.patch("child", {"metadata": {"annotations": {"a": "1"}}})
        await secrets.patch("m", {"metadata": {"labels": {"bump": "1"}}})
        after_annotation = reconciled(await take_until(results, done_with("marker")))
        assert after_annotation == (["owner", "marker"] if not filters else ["marker"])
        await secrets.patch("child", {"metadata": {"labels": {"l": "1"}}})
        assert reconciled(await take_until(results, done_with("owner"))) == ["owner"]
        await secrets.delete("child")
        assert reconciled(await take_until(results, done_with("owner"))) == ["owner"]


@pytest.mark.parametrize("filters", [(), (predicates.labels,)], ids=["unfiltered", "labels"])
async def test_watches_predicate_filters_mapped_changes(
    api_server: ApiServer, filters: tuple[Predicate, ...]
) -> None:
    config_maps = Api(api_server.client, CONFIG_MAP, "default")
    secrets = Api(api_server.client, SECRET, "default")
    for name in ("target", "marker"):
        await config_maps.create(config_map(name))

    def same_name(obj: dict[str, Any]) -> list[ObjectRef]:
        return [ObjectRef.for_resource(CONFIG_MAP, obj["metadata"]["name"], "default")]

    controller = (
        Controller(config_maps, name="w")
        .watches(secrets, None, same_name, predicates=filters)
        .with_config(concurrency=1)
    )
    async with controller.run(await_change, None, None) as results:
        await take_until(results, lambda items: {"target", "marker"} <= set(reconciled(items)))
        for name in ("target", "marker"):  # created after the lists, so nothing else is queued
            await secrets.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}})
        assert reconciled(await take_until(results, done_with("marker"))) == ["target", "marker"]
        await secrets.patch("target", {"metadata": {"annotations": {"a": "1"}}})
        await secrets.patch("marker", {"metadata": {"labels": {"bump": "1"}}})
        after_annotation = reconciled(await take_until(results, done_with("marker")))
        assert after_annotation == (["target", "marker"] if not filters else ["marker"])


FINALIZER = "example.com/cleanup"


@pytest.mark.parametrize(
    ("filters", "cleans_up"),
    [
        ((predicates.labels,), False),
        ((predicates.labels, predicates.deletion), True),
        ((predicates.generation,), True),  # kube-apiserver bumps the generation on deletion
    ],
    ids=["labels", "labels+deletion", "generation"],
)
async def test_finalizer_recipe_needs_a_predicate_that_sees_the_deletion(
    api_server: ApiServer, filters: tuple[Predicate, ...], cleans_up: bool
) -> None:
    """docs/troubleshooting.md "Finalizer stuck": a predicate that ignores deletionTimestamp hides
    the delete from a finalizer controller; adding ``predicates.deletion`` shows it."""
    resource = DEPLOYMENT
    api = Api(api_server.client, resource, "default")
    cleaned: list[str] = []

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        async def handle(event: FinalizerEvent) -> Action:
            if isinstance(event, FinalizerCleanup):
                cleaned.append(event.object["metadata"]["name"])
            return Action.await_change()

        return await finalizer(api, FINALIZER, obj, handle)

    await api.create(deployment("a"))
    controller = Controller(api, predicates=filters).with_config(concurrency=1)
    async with controller.run(reconcile, None, None) as results:
        await take_until(results, done_with("a"))  # it added the finalizer
        await api.delete("a")
        await api.create(deployment("marker"))
        await take_until(results, done_with("marker"))
    assert cleaned == (["a"] if cleans_up else [])


def labelled(name: str, team: str | None = None) -> dict[str, Any]:
    obj = config_map(name)
    if team is not None:
        obj["metadata"]["labels"] = {"team": team}
    return obj


@pytest.mark.parametrize("shared", [False, True], ids=["main watch", "for_shared"])
async def test_a_raising_predicate_is_a_queue_error_and_the_controller_keeps_going(
    api_server: ApiServer, shared: bool
) -> None:
    """A predicate that raises on one object (a label it lacks) used to end the main watch's
    chain: one QueueError, then no reconcile and no store update ever again."""
    config_maps = Api(api_server.client, CONFIG_MAP, "default")

    def team(obj: dict[str, Any]) -> str:
        return str(obj["metadata"]["labels"]["team"])

    await config_maps.create(labelled("a", "x"))
    async with contextlib.AsyncExitStack() as stack:
        if shared:
            _, writer = store(CONFIG_MAP)
            reflector = SharedReflector(writer, watcher(config_maps).default_backoff())
            await stack.enter_async_context(reflector)
            controller = Controller.for_shared(reflector, predicate=team)
        else:
            controller = Controller(config_maps, predicates=[team])
        results = await stack.enter_async_context(controller.run(await_change, None, None))
        assert reconciled(await take_until(results, done_with("a"))) == ["a"]
        await config_maps.create(labelled("bare"))  # the predicate raises on it
        items = await take_until(results, lambda items: any(isinstance(i, QueueError) for i in items))
        error = next(i for i in items if isinstance(i, QueueError))
        assert isinstance(error.watcher_error, predicates.PredicateFailed)
        await config_maps.patch("a", {"metadata": {"labels": {"team": "y"}}})
        await config_maps.create(labelled("b", "x"))
        later = reconciled(await take_until(results, lambda items: {"a", "b"} <= set(reconciled(items))))
        assert sorted(later) == ["a", "b"]
        assert len(controller.store) == 3  # the store followed the server all along
