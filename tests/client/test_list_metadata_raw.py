"""``Api.list_metadata_raw``: the same objects as ``list_metadata``, from the embedded API server
(paged, many objects) and from a scripted server that ignores the metadata-only request; a
malformed item is a typed error, from ``RawList.objects()`` and in ``metadata_watcher``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiResource, Client, ClientConfig
from kube_runtime.client.errors import ObjectDecodeError
from kube_runtime.testing import ApiServer
from kube_runtime.watcher import InitialListFailed, metadata_watcher
from tests.client.loopback import LoopbackServer, Received, Reply, json_reply

pytestmark = pytest.mark.usefixtures("anyio_backend")

CONFIGMAPS = ApiResource.builtin("ConfigMap")
META_LIST_ACCEPT = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


@pytest.fixture
async def server() -> AsyncIterator[ApiServer]:
    async with ApiServer() as server:
        yield server


@pytest.fixture
async def client(server: ApiServer, registry: CollectorRegistry) -> AsyncIterator[Client]:
    async with Client.from_kubeconfig(str(server.kubeconfig_path), metrics_registry=registry) as client:
        yield client


def _cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def _varied_cm(i: int) -> dict[str, Any]:
    """ConfigMaps whose metadata differs in shape: labels, annotations, finalizers, owners, or none."""
    obj = _cm(f"cm-{i:03d}", payload="p" * (i % 50))
    meta = obj["metadata"]
    if i % 2:
        meta["labels"] = {"i": str(i), "odd": "true"}
    if i % 3 == 0:
        meta["annotations"] = {"note": "x" * i, "unicode": "é✓"}
    if i % 7 == 0:
        meta["finalizers"] = ["example.com/keep"]
    if i % 11 == 0:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": f"u-{i}"}]
    return obj


async def test_list_metadata_raw_yields_the_items_list_metadata_returns(
    server: ApiServer, client: Client
) -> None:
    rtype = server.resource_type(CONFIGMAPS)
    for i in range(230):
        server.ops.create(rtype, "default" if i % 4 else "kube-system", _varied_cm(i))
    api = Api.all(client, CONFIGMAPS)
    token: str | None = None
    pages = listed = 0
    while True:
        decoded = await api.list_metadata(limit=40, continue_token=token)
        raw = await api.list_metadata_raw(limit=40, continue_token=token)
        assert (raw.kind, raw.apiVersion) == (decoded["kind"], decoded["apiVersion"])
        assert raw.metadata == decoded["metadata"]
        objects = raw.objects()
        assert not any(lazy.decoded for lazy in objects)
        assert [lazy.object for lazy in objects] == decoded["items"]
        assert all(lazy.meta.kind == "PartialObjectMetadata" for lazy in objects)
        assert all("data" not in lazy.object for lazy in objects)
        pages += 1
        listed += len(objects)
        token = raw.continue_token
        if token is None:
            break
    assert (pages, listed) == (6, 230)
    one = await api.list_metadata_raw(field_selector="metadata.name=cm-007", label_selector="odd=true")
    assert [lazy.object["metadata"]["finalizers"] for lazy in one.objects()] == [["example.com/keep"]]


async def test_list_metadata_raw_cuts_full_objects_down_as_list_metadata_does(
    registry: CollectorRegistry,
) -> None:
    items: list[Any] = [
        {"metadata": {"name": "a", "resourceVersion": "2", "labels": {"x": "y"}}, "data": {"big": "x" * 100}},
        {**_cm("b"), "data": {"n": 1}},
        {"kind": "PartialObjectMetadata", "metadata": {"name": "c"}},
        {"spec": {}},
        {"metadata": None, "status": {}},
    ]
    bad = False
    accepts: list[str] = []

    async def handler(req: Received) -> Reply:
        accepts.append(req.headers["accept"])
        listed = [*items, 7] if bad else items
        listing = {"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "3"}}
        return json_reply(200, orjson.dumps({**listing, "items": listed}))

    async with LoopbackServer(handler) as loopback:
        config = ClientConfig(server=loopback.url, token="t0k3n")
        async with Client(config, metrics_registry=registry) as client:
            api = Api(client, CONFIGMAPS, "ns")
            decoded = await api.list_metadata()
            raw = await api.list_metadata_raw()
            assert accepts == [META_LIST_ACCEPT] * 2
            assert (raw.kind, raw.apiVersion, raw.metadata) == (
                decoded["kind"],
                decoded["apiVersion"],
                decoded["metadata"],
            )
            objects = raw.objects()
            assert [lazy.object for lazy in objects] == decoded["items"]
            assert [lazy.meta.kind for lazy in objects] == ["PartialObjectMetadata"] * 5
            bad = True
            page = await api.list_metadata_raw()  # the body is a List: the bad item shows in objects()
            with pytest.raises(ObjectDecodeError):
                page.objects()
            with pytest.raises(ObjectDecodeError):
                (await api.list_raw()).objects()
            async with metadata_watcher(api) as stream:
                failed = await anext(stream)
            assert isinstance(failed, InitialListFailed)
            assert isinstance(failed.__cause__, ObjectDecodeError)
