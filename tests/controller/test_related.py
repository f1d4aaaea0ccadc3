"""RelatedRequests: what owns/watches triggers remember so that a relist's silent deletes trigger."""

from __future__ import annotations

from typing import Any

from kube_runtime.client.json import KubeObject
from kube_runtime.controller.action import ReconcileRequest
from kube_runtime.controller.related import RelatedRequests
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.streams import DeletedObject
from kube_runtime.watcher import Apply, Delete, Init, InitApply, InitDone


def child(name: str, *owners: str) -> KubeObject:
    return {"metadata": {"name": name, "namespace": "ns", "owners": list(owners)}}


def mapper(seen: list[Any]) -> Any:
    def to_requests(obj: KubeObject) -> list[ReconcileRequest]:
        seen.append(obj)
        return [ReconcileRequest(ObjectRef("ConfigMap", o, "ns")) for o in obj["metadata"]["owners"]]

    return to_requests


def names(requests: Any) -> list[str]:
    return sorted(r.obj_ref.name for r in requests)


def test_objects_missing_from_a_relist_trigger_what_they_last_mapped_to() -> None:
    seen: list[Any] = []
    related = RelatedRequests(mapper(seen))
    for event in (Init(), InitApply(child("c1", "p")), InitApply(child("c2", "q")), InitDone()):
        related(event)
    assert names(related(Apply(child("c1", "p", "r")))) == ["p", "r"]
    assert names(related(Apply(child("c3", "s")))) == ["s"]
    assert names(related(Apply(child("c4")))) == []  # maps to nothing: not remembered
    assert len(related) == 3
    # Relist: c1 and c4 gone, c3 listed but no longer owned, c2 unchanged.
    assert names(related(Init())) == []
    assert names(related(InitApply(child("c2", "q")))) == ["q"]
    assert names(related(InitApply(child("c3")))) == []
    calls = len(seen)
    assert names(related(InitDone())) == ["p", "r"]  # c1's last owners; c3 still exists
    assert len(seen) == calls  # the mapper is not asked about vanished objects
    assert len(related) == 1
    assert names(related(Init())) + names(related(InitDone())) == ["q"]  # an empty relist


def test_a_delete_maps_the_deleted_object_and_forgets_it() -> None:
    seen: list[Any] = []
    related = RelatedRequests(mapper(seen))
    related(Apply(child("c1", "p")))
    assert names(related(Delete(child("c1", "p")))) == ["p"]
    assert isinstance(seen[-1], DeletedObject)
    assert len(related) == 0
    assert names(related(Init())) + names(related(InitDone())) == []


def test_reset_forgets_everything() -> None:
    related = RelatedRequests(mapper([]))
    related(Apply(child("c1", "p")))
    related(Init())
    related.reset()
    assert len(related) == 0
    assert names(related(InitDone())) == []
