"""TypedApi against the embedded API server: the generated CRD is accepted, objects come back as
models, unknown fields survive a round trip, and a non-fitting object is a typed error."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from kube_runtime.client import Api, Client
from kube_runtime.resources import (
    ConfigMap,
    InvalidObject,
    Lease,
    LeaseSpec,
    ObjectMeta,
    Secret,
    TypedApi,
    TypedStore,
    TypedWatchEvent,
    crd,
    to_dict,
    typed_watcher,
)
from kube_runtime.store import store
from kube_runtime.testing import ApiServer
from kube_runtime.watcher import Apply, InitApply, InitDone
from kube_runtime.watcher.event import INIT

from .helpers import CRDS, install
from .models import Port, Size, Widget, WidgetSpec

#: A CRD for Widget that accepts anything in spec, so the server can hold objects the model rejects.
LOOSE_CRD: dict[str, Any] = {
    **crd(Widget),
    "spec": {
        **crd(Widget)["spec"],
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                },
                "subresources": {"status": {}},
            }
        ],
    },
}


def widget(name: str, metadata_namespace: str | None = None, **spec: Any) -> Widget:
    return Widget(metadata=ObjectMeta(name=name, namespace=metadata_namespace), spec=WidgetSpec(**spec))


def bad_widget(name: str, namespace: str | None = None) -> dict[str, Any]:
    """A Widget whose spec.replicas the model rejects (the loose CRD accepts it)."""
    metadata = {"name": name, "namespace": namespace} if namespace else {"name": name}
    return {
        "apiVersion": "typed.example.com/v1",
        "kind": "Widget",
        "metadata": metadata,
        "spec": {"replicas": "many"},
    }


async def test_embedded_server_accepts_the_generated_crd_and_valid_objects(api_server: ApiServer) -> None:
    client: Client = api_server.client
    await install(client, Widget)
    stored = await Api(client, CRDS).get("widgets.typed.example.com")
    assert stored["spec"]["versions"][0]["schema"] == crd(Widget)["spec"]["versions"][0]["schema"]
    widgets = TypedApi(client, Widget, "default")

    created = await widgets.create(
        widget("a", replicas=3, size=Size.LARGE, ports=[Port(name="http", port=80)])
    )
    assert isinstance(created, Widget)
    assert created.metadata.uid
    assert created.spec.size is Size.LARGE
    assert created.spec.ports[0].port == 80
    got = await widgets.get("a")
    assert got.spec.replicas == 3
    assert got.metadata.resource_version == created.metadata.resource_version
    page = await widgets.list()
    assert [w.name for w in page.items] == ["a"]
    assert page.resource_version
    assert await widgets.get_opt("absent") is None

    got.spec.replicas = 4
    replaced = await widgets.replace(got)
    assert replaced.spec.replicas == 4
    applied = await widgets.apply(widget("a", replicas=5), field_manager="test", force=True)
    assert applied.spec.replicas == 5
    assert await widgets.delete("a") is None


async def test_unknown_fields_survive_a_read_modify_write_round_trip(api_server: ApiServer) -> None:
    client: Client = api_server.client
    await install(client, Widget, definition=LOOSE_CRD)
    widgets = TypedApi(client, Widget, "default")
    await widgets.raw.create(
        {
            "apiVersion": Widget.api_resource.api_version,
            "kind": "Widget",
            "metadata": {"name": "future", "labels": {"a": "b"}},
            "spec": {
                "replicas": 1,
                "fromTheFuture": {"nested": [1, None, "x"]},
                "legacy": None,
                "ports": [{"name": "p", "port": 80, "retired": None}],
            },
            "topLevelExtra": True,
            "topLevelNull": None,
        }
    )
    obj = await widgets.get("future")
    obj.spec.replicas = 2
    written = await widgets.replace(obj)
    assert written.spec.replicas == 2
    back = await widgets.raw.get("future")
    assert back["spec"]["fromTheFuture"] == {"nested": [1, None, "x"]}
    # Undeclared fields read as null are written back as null, at every depth.
    assert "legacy" in back["spec"]
    assert back["spec"]["legacy"] is None
    assert back["spec"]["ports"] == [{"name": "p", "port": 80, "retired": None}]
    assert "topLevelNull" in back
    assert back["topLevelNull"] is None
    assert back["topLevelExtra"] is True
    assert back["metadata"]["labels"] == {"a": "b"}
    assert to_dict(obj)["spec"]["fromTheFuture"] == {"nested": [1, None, "x"]}


async def test_an_object_that_does_not_fit_is_invalid_object_naming_the_field(api_server: ApiServer) -> None:
    client: Client = api_server.client
    await install(client, Widget, definition=LOOSE_CRD)
    widgets = TypedApi(client, Widget, "default")
    await widgets.raw.create(
        {
            "apiVersion": "typed.example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "bad"},
            "spec": {"replicas": "many"},
        }
    )
    with pytest.raises(InvalidObject) as caught:
        await widgets.get("bad")
    assert caught.value.paths == ["spec.replicas"]
    assert "Widget default/bad" in str(caught.value)
    assert "spec.replicas" in str(caught.value)


async def test_watch_yields_models_and_invalid_objects_as_values(api_server: ApiServer) -> None:
    client: Client = api_server.client
    await install(client, Widget, definition=LOOSE_CRD)
    widgets = TypedApi(client, Widget, "default")
    start = (await widgets.list()).resource_version
    await widgets.create(widget("good", replicas=2))
    await widgets.raw.create(
        {
            "apiVersion": "typed.example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "bad"},
            "spec": {"replicas": -1},
        }
    )
    await widgets.create(widget("after", replicas=3))
    seen: list[Any] = []
    with anyio.fail_after(30):
        async with widgets.watch(resource_version=start) as events:
            async for item in events:
                seen.append(item)
                if len(seen) == 3:
                    break
    assert isinstance(seen[0], TypedWatchEvent)
    assert seen[0].type == "ADDED"
    assert seen[0].object.spec.replicas == 2
    assert isinstance(seen[1], InvalidObject)
    assert seen[1].paths == ["spec.replicas"]
    assert seen[2].object.name == "after"


async def test_builtin_models_round_trip(api_server: ApiServer) -> None:
    client: Client = api_server.client
    config_maps = TypedApi(client, ConfigMap, "default")
    made = await config_maps.create(ConfigMap(metadata=ObjectMeta(name="cm"), data={"k": "v"}))
    assert made.data == {"k": "v"}
    assert made.kind == "ConfigMap"
    secrets = TypedApi(client, Secret, "default")
    secret = await secrets.create(Secret(metadata=ObjectMeta(name="s"), data={"k": "dg=="}, type="Opaque"))
    assert secret.type == "Opaque"
    leases = TypedApi(client, Lease, "default")
    lease = await leases.create(Lease(metadata=ObjectMeta(name="l"), spec=LeaseSpec(holder_identity="me")))
    assert lease.spec.holder_identity == "me"
    assert (await leases.get("l")).spec.holder_identity == "me"


async def test_typed_watcher_decodes_events_and_reports_misfits_in_place(api_server: ApiServer) -> None:
    client: Client = api_server.client
    await install(client, Widget, definition=LOOSE_CRD)
    widgets = TypedApi(client, Widget, "default")
    await widgets.create(widget("good", replicas=2))
    await widgets.raw.create(bad_widget("bad"))
    items: list[Any] = []
    with anyio.fail_after(30):
        async for item in typed_watcher(widgets):
            items.append(item)
            if isinstance(item, InitDone):
                await widgets.patch("good", {"spec": {"replicas": 3}})
            if isinstance(item, Apply):
                break
    kinds = [type(item).__name__ for item in items]
    assert kinds[0] == "Init"
    assert sorted(kinds[1:3]) == ["InitApply", "InvalidObject"]
    assert kinds[3:] == ["InitDone", "Apply"]
    (first,) = [item for item in items[1:3] if isinstance(item, InitApply)]
    assert isinstance(first.object, Widget)
    assert first.object.spec.replicas == 2
    assert items[-1].object.spec.replicas == 3


def test_to_dict_leaves_out_declared_nones_and_keeps_undeclared_nulls() -> None:
    obj = Widget.model_validate(
        {
            "metadata": {"name": "w"},
            "spec": {"ports": [{"name": "p", "port": "http", "gone": None}], "old": None},
            "extra": None,
        }
    )
    assert obj.spec.labels is None
    assert obj.status is None
    wire = to_dict(obj)
    assert "labels" not in wire["spec"]
    assert "status" not in wire
    assert wire["extra"] is None
    assert wire["spec"]["old"] is None
    assert wire["spec"]["ports"] == [{"name": "p", "port": "http", "gone": None}]


def test_typed_store_builds_models_on_read_and_keeps_misfits_out_of_bulk_reads() -> None:
    reader, writer = store(Widget.api_resource)
    writer.apply_watcher_event(INIT)
    writer.apply_watcher_event(InitApply(to_dict(widget("good", replicas=4, metadata_namespace="ns"))))
    writer.apply_watcher_event(InitApply(bad_widget("bad", namespace="ns")))
    writer.apply_watcher_event(InitDone())
    typed = TypedStore(reader, Widget)
    assert len(typed) == 2
    got = typed.get_by_key("good", "ns")
    assert got is not None
    assert got.spec.replicas == 4
    assert got is not typed.get_by_key("good", "ns")  # a fresh model per read
    assert [w.name for w in typed.state()] == ["good"]
    with pytest.raises(InvalidObject, match=r"spec\.replicas"):
        typed.state_strict()
    with pytest.raises(InvalidObject):
        typed.get_by_key("bad", "ns")
