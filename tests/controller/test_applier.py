"""The hard-mode pieces used without the Controller builder: triggers fed to an applier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from kube_runtime.client import Api
from kube_runtime.controller import (
    Action,
    ApplierSpec,
    ObjectNotFound,
    QueueError,
    Reconciled,
    ReconcileRequest,
    Trigger,
    applier,
    trigger_self,
    trigger_with,
)
from kube_runtime.store import store
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.streams import DeletedObject
from kube_runtime.watcher import WatcherConfig, watcher
from tests.controller.conftest import CONFIG_MAP, config_map, take_until


async def await_change(obj: dict[str, Any], ctx: Any) -> Action:
    return Action.await_change()


async def items(*values: Any) -> AsyncIterator[Any]:
    for value in values:
        yield value


async def test_trigger_self_maps_objects_skips_deletes_and_passes_errors() -> None:
    error = ValueError("watch failed")
    stream = trigger_self(items(config_map("a"), DeletedObject(config_map("b")), error), CONFIG_MAP)
    got = [item async for item in stream]
    assert got[0] == ReconcileRequest(ObjectRef.from_obj(config_map("a"), CONFIG_MAP))
    assert got[1:] == [error]


async def test_trigger_with_yields_a_mapper_failure_and_goes_on() -> None:
    def mapper(n: int) -> list[ReconcileRequest]:
        if n == 1:
            raise KeyError(n)
        return [ReconcileRequest(ObjectRef.from_obj(config_map(f"o{n}-{i}"), CONFIG_MAP)) for i in range(n)]

    got = [item async for item in trigger_with(items(2, 1, 0, 1), mapper)]
    assert [str(item.obj_ref.name) if isinstance(item, ReconcileRequest) else type(item) for item in got] == [
        "o2-0",
        "o2-1",
        KeyError,
        KeyError,
    ]


async def test_an_applier_runs_a_spec_built_from_triggers(config_maps: Api) -> None:
    await config_maps.create(config_map("a"))
    reader, writer = store(CONFIG_MAP)
    refs_seen: list[Any] = [
        ObjectRef.from_obj(
            {**config_map("gone"), "metadata": {"name": "gone", "namespace": "default"}}, CONFIG_MAP
        ),
        RuntimeError("bad ref"),
    ]

    def open_main() -> Any:
        synced = (
            watcher(config_maps, WatcherConfig()).default_backoff().reflect(writer).synced_objects(reader)
        )
        return trigger_self(synced, CONFIG_MAP)

    spec = ApplierSpec(
        name="applier-test",
        store=reader,
        triggers=(
            Trigger("main", open_main),
            Trigger("refs", lambda: trigger_with(items(*refs_seen), lambda ref: [ReconcileRequest(ref)])),
        ),
    )
    async with applier(spec, await_change, None, None) as results:
        got = await take_until(results, lambda seen: len(seen) == 3)
    kinds = sorted(type(item).__name__ for item in got)
    assert kinds == sorted([Reconciled.__name__, ObjectNotFound.__name__, QueueError.__name__])
    assert any(isinstance(item, Reconciled) and item.obj_ref.name == "a" for item in got)


async def test_a_body_exception_leaves_the_run_unwrapped(config_maps: Api) -> None:
    reader, _writer = store(CONFIG_MAP)
    spec = ApplierSpec(name="applier-body", store=reader, triggers=())

    async def body() -> None:
        async with applier(spec, await_change, None, None):
            await anyio.lowlevel.checkpoint()
            raise LookupError("body")

    with pytest.raises(LookupError):
        await body()
