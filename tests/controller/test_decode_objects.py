"""Controller.decode_objects: reconcilers and error policies get the decoded object; an object that
fails to decode is an ObjectDecodeFailed result and the others carry on (virtual time)."""

from __future__ import annotations

from typing import Any

import pytest

from kube_runtime.client import Api
from kube_runtime.controller import Action, Controller, ObjectDecodeFailed, Reconciled, ReconcilerFailed
from kube_runtime.watcher import WatcherConfig
from tests.controller.conftest import config_map, take_until

pytestmark = pytest.mark.anyio


def decode(obj: dict[str, Any]) -> tuple[str, int]:
    """A toy decoder: (name, int(data.n)); raises ValueError for a non-integer."""
    return obj["metadata"]["name"], int(obj["data"]["n"])


async def test_decoded_objects_reach_the_reconciler_and_failures_are_results(config_maps: Api) -> None:
    await config_maps.create(config_map("one", n="1"))
    await config_maps.create(config_map("bad", n="x"))
    await config_maps.create(config_map("fails", n="3"))
    seen: list[Any] = []
    policy_saw: list[Any] = []

    async def reconcile(obj: Any, ctx: None) -> Action:
        seen.append(obj)
        if obj[0] == "fails":
            raise RuntimeError("boom")
        return Action.await_change()

    def error_policy(obj: Any, error: Exception, ctx: None) -> Action:
        policy_saw.append(obj)
        return Action.await_change()

    controller = Controller(config_maps, WatcherConfig()).decode_objects(decode)
    async with controller.run(reconcile, error_policy, None) as results:
        items = await take_until(results, lambda items: len(items) == 3)
        (failed,) = [item for item in items if isinstance(item, ObjectDecodeFailed)]
        assert failed.obj_ref.name == "bad"
        assert isinstance(failed.error, ValueError)
        assert "bad" in str(failed)
        assert [item.obj_ref.name for item in items if isinstance(item, Reconciled)] == ["one"]
        assert [item.obj_ref.name for item in items if isinstance(item, ReconcilerFailed)] == ["fails"]
        assert sorted(seen) == [("fails", 3), ("one", 1)]
        assert policy_saw == [("fails", 3)]  # decoded for the error policy too; never for "bad"
        assert controller.store.get(failed.obj_ref) is not None  # the store keeps the raw dict

        await config_maps.patch("bad", {"data": {"n": "2"}})
        (fixed,) = await take_until(results, lambda items: isinstance(items[-1], Reconciled))
        assert fixed.obj_ref.name == "bad"
    assert ("bad", 2) in seen
