"""TypedController on the embedded API server: reconcilers get models, an object that does not fit
is a typed error on the result stream while the others carry on, and status conditions written
every pass do not rewrite an unchanged object."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kube_runtime.client import Client
from kube_runtime.controller import Action, ObjectDecodeFailed, Reconciled
from kube_runtime.resources import (
    InvalidObject,
    ObjectMeta,
    TypedApi,
    TypedController,
    apply_status,
    find_condition,
    set_condition,
)
from kube_runtime.store import ObjectRef
from kube_runtime.testing import ApiServer

from .helpers import install
from .models import Widget, WidgetSpec, WidgetStatus
from .test_typed_api import LOOSE_CRD


def bad(name: str) -> dict[str, Any]:
    return {
        "apiVersion": Widget.api_resource.api_version,
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"replicas": "many", "ownerName": "x"},
    }


async def test_reconcile_gets_models_and_a_non_fitting_object_is_a_typed_error(api_server: ApiServer) -> None:
    client: Client = api_server.client
    await install(client, Widget, definition=LOOSE_CRD)
    widgets = TypedApi(client, Widget, "default")
    await widgets.create(Widget(metadata=ObjectMeta(name="one"), spec=WidgetSpec(replicas=1)))
    await widgets.raw.create(bad("broken"))
    await widgets.create(Widget(metadata=ObjectMeta(name="two"), spec=WidgetSpec(replicas=2)))

    seen: dict[str, int] = {}

    async def reconcile(obj: Widget, ctx: None) -> Action:
        assert isinstance(obj, Widget)
        seen[obj.name] = obj.spec.replicas
        return Action.await_change()

    controller = TypedController(widgets, name="typed-test")
    assert controller.store.model is Widget
    failures: list[ObjectDecodeFailed] = []
    reconciled: set[str] = set()
    async with controller.run(reconcile, None, None) as results:
        with anyio.fail_after(30):
            async for item in results:
                if isinstance(item, ObjectDecodeFailed):
                    failures.append(item)
                elif isinstance(item, Reconciled):
                    reconciled.add(item.obj_ref.name)
                if failures and {"one", "two"} <= reconciled:
                    break
            assert seen == {"one": 1, "two": 2}
            error = failures[0].error
            assert isinstance(error, InvalidObject)
            assert error.paths == ["spec.replicas"]
            assert (failures[0].obj_ref.name, failures[0].obj_ref.namespace) == ("broken", "default")
            assert "broken" in str(failures[0])
            assert "spec.replicas" in str(failures[0])
            assert controller.store.get(ObjectRef("Widget", "one", "default")) is not None
            assert [w.name for w in controller.store.state()] == ["one", "two"]  # broken left out

            # The controller keeps running: fixing the object reconciles it.
            await widgets.raw.patch("broken", {"spec": {"replicas": 7}})
            async for item in results:
                if isinstance(item, Reconciled) and item.obj_ref.name == "broken":
                    break
    assert seen["broken"] == 7


async def test_setting_the_same_conditions_again_writes_nothing(api_server: ApiServer) -> None:
    client: Client = api_server.client
    await install(client, Widget)
    widgets = TypedApi(client, Widget, "default")
    obj = await widgets.create(Widget(metadata=ObjectMeta(name="w"), spec=WidgetSpec()))

    async def one_pass(current: Widget, ready: bool, at: str) -> Widget:
        """What a reconciler does every pass: compute conditions, apply status."""
        status = current.status or WidgetStatus()
        conditions = set_condition(
            status.conditions,
            "Ready",
            ready,
            "Reconciled" if ready else "Waiting",
            observed_generation=current.metadata.generation,
            timestamp=at,
        )
        desired = WidgetStatus(ready_replicas=1, conditions=conditions)
        return await apply_status(widgets, current, desired, field_manager="widget-controller")

    first = await one_pass(obj, True, "2026-01-01T00:00:00Z")
    ready = find_condition(first.status.conditions if first.status else None, "Ready")
    assert ready is not None
    assert ready.last_transition_time == "2026-01-01T00:00:00Z"
    assert ready.observed_generation == obj.metadata.generation

    second = await one_pass(first, True, "2026-01-01T00:00:05Z")
    assert second.metadata.resource_version == first.metadata.resource_version  # no write
    assert second.status == first.status

    third = await one_pass(second, False, "2026-01-01T00:00:09Z")
    assert third.metadata.resource_version != second.metadata.resource_version
    flipped = find_condition(third.status.conditions if third.status else None, "Ready")
    assert flipped is not None
    assert flipped.status == "False"
    assert flipped.last_transition_time == "2026-01-01T00:00:09Z"


def test_set_condition_keeps_transition_time_only_while_status_holds() -> None:
    conditions = set_condition(None, "Ready", "Unknown", "Starting", timestamp="t0")
    conditions = set_condition(conditions, "Synced", True, "Done", timestamp="t1")
    same = set_condition(conditions, "Ready", "Unknown", "StillStarting", "msg", timestamp="t2")
    assert [(c.type, c.last_transition_time, c.reason) for c in same] == [
        ("Ready", "t0", "StillStarting"),
        ("Synced", "t1", "Done"),
    ]
    changed = set_condition(same, "Ready", True, "Up", timestamp="t3", observed_generation=4)
    assert changed[0].last_transition_time == "t3"
    assert changed[0].observed_generation == 4


@pytest.mark.parametrize("status", ["yes", ""])
def test_condition_status_is_checked(status: str) -> None:
    with pytest.raises(ValueError, match="status"):
        set_condition(None, "Ready", status, "R")  # type: ignore[arg-type]
