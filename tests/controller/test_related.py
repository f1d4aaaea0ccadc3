"""RelatedRequests: what owns/watches triggers remember so that a relist's silent deletes trigger."""

from __future__ import annotations

from typing import Any

import pytest

from kube_runtime.client.json import KubeObject
from kube_runtime.client.resource import ApiResource
from kube_runtime.controller.action import ReconcileRequest
from kube_runtime.controller.related import RelatedRequests
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.streams import DeletedObject, PredicateMemory
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
    assert names(related(InitApply(child("c3")))) == ["s"]  # no longer owned: its owner lost it
    calls = len(seen)
    assert names(related(InitDone())) == ["p", "r"]  # c1's last owners; c3 still exists
    assert len(seen) == calls  # the mapper is not asked about vanished objects
    assert len(related) == 1
    assert names(related(Init())) + names(related(InitDone())) == ["q"]  # an empty relist


@pytest.mark.anyio
async def test_an_object_that_stops_mapping_to_one_triggers_it_too() -> None:
    """A child moved to another owner, or orphaned, triggers the owner it left as well (as
    controller-runtime enqueues the old and the new owners); kube-rs triggered the new one only,
    so the owner that lost its child was never reconciled."""
    related = RelatedRequests(mapper([]), PredicateMemory(lambda obj: "same"))  # filters repeats
    assert names(related(Apply(child("c1", "a")))) == ["a"]  # new: passes
    assert names(related(Apply(child("c1", "b")))) == ["a"]  # moved: the one it left, unfiltered
    assert names(related(Apply(child("c1")))) == ["b"]  # orphaned
    assert names(related(Apply(child("c1")))) == []  # nothing left to leave
    unfiltered = RelatedRequests(mapper([]))
    unfiltered(Apply(child("c2", "a", "b")))
    assert sorted(names(unfiltered(Apply(child("c2", "b", "c"))))) == ["a", "b", "c"]


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


def test_an_owner_reference_of_another_version_of_the_owner_kind_names_the_owner() -> None:
    """A child left from before a CRD version migration refers to ``example.com/v1beta1``; the
    owner is the same object (controller-runtime matches group and kind). Another group or kind,
    or a malformed apiVersion, is not the owner."""
    widgets = ApiResource("example.com", "v1", "Widget", "widgets")
    expected = ObjectRef("Widget", "w", "ns", group="example.com", version="v1", uid="u1")
    for api_version in ("example.com/v1", "example.com/v1beta1"):
        owner = {"apiVersion": api_version, "kind": "Widget", "name": "w", "uid": "u1"}
        ref = ObjectRef.from_owner_ref("ns", owner, widgets)
        assert ref == expected
        assert ref is not None
        assert ref.version == "v1"
    for api_version, kind in (
        ("other.com/v1", "Widget"),
        ("example.com/v1", "Gadget"),
        ("v1", "Widget"),
        (None, "Widget"),
    ):
        owner = {"apiVersion": api_version, "kind": kind, "name": "w", "uid": "u1"}
        assert ObjectRef.from_owner_ref("ns", owner, widgets) is None
    core = ApiResource.builtin("ConfigMap")
    assert (
        ObjectRef.from_owner_ref("ns", {"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}, core)
        is not None
    )
