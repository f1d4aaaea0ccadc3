"""PartialObjectMetadata: metadata-only lists and watches of any kind, typed."""

from __future__ import annotations

from kube_runtime.client import Api, ApiResource
from kube_runtime.resources import ObjectMeta, PartialObjectMetadata, to_dict
from kube_runtime.testing import ApiServer

PODS = ApiResource.builtin("Pod")


async def test_metadata_only_list_and_watch_items_are_typed(api_server: ApiServer) -> None:
    api = Api(api_server.client, PODS, "default")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "labels": {"app": "web"}, "finalizers": ["example.com/keep"]},
        "spec": {"containers": [{"name": "c", "image": "nginx"}]},
    }
    created = await api.create(pod)
    listed = await api.list_metadata()
    [item] = [PartialObjectMetadata.model_validate(i) for i in listed["items"]]
    assert item.kind == "PartialObjectMetadata"
    assert item.metadata.name == "web"
    assert item.metadata.labels == {"app": "web"}
    assert item.metadata.finalizers == ["example.com/keep"]
    assert item.metadata.uid == created["metadata"]["uid"]
    assert "spec" not in to_dict(item)

    async with api.watch_metadata(resource_version="0") as events:
        async for event in events:
            typed = PartialObjectMetadata.model_validate(event.object)
            assert typed.metadata == ObjectMeta.model_validate(event.object["metadata"])
            assert typed.metadata.name == "web"
            break
