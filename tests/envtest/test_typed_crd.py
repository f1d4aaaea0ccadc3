"""The generated CRD against a real kube-apiserver: accepted, and the API server enforces the
model's constraints and CEL rules."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kube_runtime.client import ApiError, Client
from kube_runtime.resources import ObjectMeta, TypedApi
from kube_runtime.testing.envtest import Envtest
from tests.resources.helpers import install
from tests.resources.models import DoohickeyV1, DoohickeyV2, Gadget, ThingSpec, Widget, WidgetSpec

pytestmark = [pytest.mark.envtest, pytest.mark.anyio]


@pytest.fixture
async def client(shared_envtest: Envtest) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(shared_envtest.kubeconfig_path)) as client:
        yield client


def valid() -> dict[str, Any]:
    return {
        "apiVersion": Widget.api_resource.api_version,
        "kind": "Widget",
        "metadata": {"name": "valid"},
        "spec": {
            "replicas": 2,
            "size": "large",
            "ports": [{"name": "http", "port": 8080}, {"name": "named", "port": "web"}],
            "memory": "1Gi",
            "window": {"low": 1, "high": 3},
            "config": {"anything": {"goes": [1, 2]}},
            "even": 4,
            "ownerName": "alice",
            "tags": ["a", "b"],
        },
    }


async def test_real_apiserver_accepts_the_crd_and_enforces_constraints_and_cel_rules(client: Client) -> None:
    await install(client, Widget)
    widgets = TypedApi(client, Widget, "default")

    created = await widgets.raw.create(valid())
    assert created["spec"]["config"] == {"anything": {"goes": [1, 2]}}  # preserved, not pruned
    typed = widgets.decode(created)
    assert typed.spec.window is not None
    assert typed.spec.window.high == 3
    defaulted = await widgets.create(Widget(metadata=ObjectMeta(name="defaults"), spec=WidgetSpec()))
    assert defaulted.spec.mode == "safe"

    def variant(name: str, **spec: Any) -> dict[str, Any]:
        obj = copy.deepcopy(valid())
        obj["metadata"]["name"] = name
        obj["spec"].update(spec)
        return obj

    rejections = {
        "too-many": ({"replicas": 11}, "spec.replicas"),  # Field(le=10)
        "bad-enum": ({"size": "huge"}, "spec.size"),
        "bad-pattern": ({"ownerName": "Alice"}, "spec.ownerName"),
        "bad-quantity": ({"memory": "lots"}, "spec.memory"),
        "duplicate-tags": ({"tags": ["a", "a"]}, "spec.tags[1]"),  # set[str]: a set list
        "odd": ({"even": 3}, "even must be even"),  # CEL on a field
        "inverted": ({"window": {"low": 5, "high": 1}}, "low must not exceed high"),  # CEL on a model
    }
    for name, (spec, expected) in rejections.items():
        with pytest.raises(ApiError) as caught:
            await widgets.raw.create(variant(name, **spec))
        assert caught.value.code == 422, name
        assert expected in str(caught.value), (name, str(caught.value))
    assert [w.name for w in (await widgets.list()).items] == ["defaults", "valid"]


async def test_real_apiserver_accepts_a_cluster_scoped_crd_and_a_multi_version_crd(client: Client) -> None:
    await install(client, Gadget)
    gadgets = TypedApi(client, Gadget)
    made = await gadgets.create(Gadget(metadata=ObjectMeta(name="g"), spec=ThingSpec(replicas=3)))
    assert made.metadata.namespace is None
    assert made.spec.replicas == 3

    await install(client, DoohickeyV1, DoohickeyV2)
    old = await TypedApi(client, DoohickeyV1, "default").create(
        DoohickeyV1(metadata=ObjectMeta(name="d"), spec=ThingSpec(tier="gold"))
    )
    assert old.api_version.endswith("/v1")
    new = await TypedApi(client, DoohickeyV2, "default").get("d")  # stored as v2, served as both
    assert new.spec.tier == "gold"
