"""Controllers on one SharedReflector: one cache, and a predicate per controller so one controller's
own writes do not re-trigger another."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from kube_runtime import predicates
from kube_runtime.client import Api
from kube_runtime.controller import Action, Controller, Reconciled
from kube_runtime.store import SharedReflector, store
from kube_runtime.watcher import WatcherConfig, watcher
from tests.controller.conftest import CONFIG_MAP, config_map

pytestmark = pytest.mark.anyio


class Seen:
    """Names each controller reconciled, in order, with a wake-up on every result."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {"annotator": [], "validator": []}
        self._changed = anyio.Event()

    def add(self, controller: str, item: Any) -> None:
        if isinstance(item, Reconciled):
            self.names[controller].append(item.obj_ref.name)
            self._changed.set()
            self._changed = anyio.Event()

    async def until(self, check: Callable[[], bool]) -> None:
        with anyio.fail_after(60):
            while not check():
                await self._changed.wait()


async def test_a_predicate_keeps_one_controllers_writes_from_triggering_another(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    _, writer = store(CONFIG_MAP)
    shared = SharedReflector(writer, watcher(config_maps).default_backoff())
    annotator = Controller.for_shared(shared, name="annotator")
    validator = Controller.for_shared(shared, predicate=predicates.labels, name="validator")
    validator.with_config(concurrency=1)
    assert annotator.store is validator.store  # one reader of the one cache
    seen = Seen()

    async def annotate(obj: dict[str, Any], _ctx: None) -> Action:
        if not (obj["metadata"].get("annotations") or {}).get("summary"):
            patch = {"metadata": {"annotations": {"summary": "done"}}}
            await config_maps.patch(obj["metadata"]["name"], patch)
        return Action.await_change()

    async def validate(_obj: dict[str, Any], _ctx: None) -> Action:
        return Action.await_change()

    async def consume(controller: Controller, reconcile: Any) -> None:
        async with controller.run(reconcile, None, None) as results:
            async for item in results:
                seen.add(controller.name, item)

    async with shared, anyio.create_task_group() as tg:
        tg.start_soon(consume, annotator, annotate)
        tg.start_soon(consume, validator, validate)
        # The annotator writes "a" once and is triggered again by its own write.
        await seen.until(lambda: seen.names["annotator"] == ["a", "a"] and seen.names["validator"] == ["a"])
        # A label change (the marker, created after the annotation landed) reaches both; the
        # annotation write before it did not reach the validator, which takes one object at a time.
        await config_maps.create(
            {**config_map("marker"), "metadata": {"name": "marker", "labels": {"x": "y"}}}
        )
        await seen.until(lambda: "marker" in seen.names["validator"])
        assert seen.names["validator"] == ["a", "marker"]
        await config_maps.patch("a", {"metadata": {"labels": {"team": "x"}}})
        await seen.until(lambda: seen.names["validator"].count("a") == 2)
        tg.cancel_scope.cancel()
    assert seen.names["validator"] == ["a", "marker", "a"]


async def test_controllers_on_a_shared_store_report_its_deletes(config_maps: Api) -> None:
    for name in ("a", "b"):
        await config_maps.create(config_map(name))
    _, writer = store(CONFIG_MAP)
    shared = SharedReflector(writer, watcher(config_maps).default_backoff())
    one = Controller.for_shared(shared, name="one")
    other = Controller.for_shared(shared, predicate=predicates.labels, name="other")
    deleted: dict[str, list[str]] = {"one": [], "other": []}
    both = anyio.Event()
    reconciled: set[tuple[str, str]] = set()
    ready = anyio.Event()

    def listener(controller: str) -> Callable[[Any], None]:
        def on_deleted(ref: Any) -> None:
            deleted[controller].append(ref.name)
            if all(names == ["a"] for names in deleted.values()):
                both.set()

        return on_deleted

    one.on_object_deleted(listener("one"))
    other.on_object_deleted(listener("other"))

    async def consume(controller: Controller) -> None:
        async def noop(_obj: dict[str, Any], _ctx: None) -> Action:
            return Action.await_change()

        async with controller.run(noop, None, None) as results:
            async for item in results:
                if isinstance(item, Reconciled):
                    reconciled.add((controller.name, item.obj_ref.name))
                    if len(reconciled) == 4:
                        ready.set()

    async with shared, anyio.create_task_group() as tg:
        tg.start_soon(consume, one)
        tg.start_soon(consume, other)
        with anyio.fail_after(30):
            await ready.wait()
            await config_maps.delete("a")
            await both.wait()
        tg.cancel_scope.cancel()
    assert deleted == {"one": ["a"], "other": ["a"]}


async def test_a_controller_started_after_the_shared_store_synced_reconciles_every_object(
    config_maps: Api,
) -> None:
    """The run subscribes when it starts: one started after the sync (or run again after one
    ended) reconciled only the changes made after that, and lost the rest."""
    names = [f"cm-{i}" for i in range(300)]
    for name in names:
        await config_maps.create(config_map(name))
    reader, writer = store(CONFIG_MAP)
    shared = SharedReflector(
        writer, watcher(config_maps, WatcherConfig().with_page_size(50)).default_backoff()
    )
    controller = Controller.for_shared(shared, name="late")
    seen: dict[str, str] = {}

    async def record(obj: dict[str, Any], _ctx: None) -> Action:
        meta = obj["metadata"]
        seen[meta["name"]] = meta["resourceVersion"]
        return Action.await_change()

    async def run_until(done: Callable[[], bool]) -> None:
        with anyio.fail_after(60):
            async with controller.run(record, None, None) as results:
                async for _ in results:
                    if done():
                        break

    async with shared:
        await reader.wait_until_ready()
        await run_until(lambda: len(seen) == len(names))
        assert sorted(seen) == sorted(names)
        # Changed while no run is active: the next run catches up on the store as it is now.
        changed = names[:40]
        versions: dict[str, str] = {}
        async with shared.subscribe() as changes:  # to know when the store shows every change
            for name in changed:
                await config_maps.patch(name, {"data": {"v": "2"}})
            with anyio.fail_after(60):
                async for obj in changes:
                    if obj.get("data") == {"v": "2"}:
                        versions[obj["metadata"]["name"]] = obj["metadata"]["resourceVersion"]
                        if len(versions) == len(changed):
                            break
        seen.clear()
        await run_until(lambda: all(seen.get(name) == version for name, version in versions.items()))
    assert all(seen[name] == version for name, version in versions.items())
