"""Predicates: which property each one fingerprints, and how they compose."""

from __future__ import annotations

from typing import Any

from kube_runtime import predicates


def obj(**meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": "a", "namespace": "ns", **meta}}


def test_generation_is_none_for_kinds_without_one() -> None:
    assert predicates.generation(obj()) is None
    assert predicates.generation(obj(generation=3)) == 3


def test_resource_version() -> None:
    assert predicates.resource_version(obj()) is None
    assert predicates.resource_version(obj(resourceVersion="7")) == "7"


def test_labels_and_annotations_ignore_order_and_are_never_none() -> None:
    assert predicates.labels(obj()) == predicates.labels(obj(labels={}))
    assert predicates.labels(obj(labels={"a": "1", "b": "2"})) == predicates.labels(
        obj(labels={"b": "2", "a": "1"})
    )
    assert predicates.labels(obj(labels={"a": "1"})) != predicates.labels(obj(labels={"a": "2"}))
    assert predicates.annotations(obj()) is not None
    assert predicates.annotations(obj(annotations={"x": "1"})) != predicates.annotations(obj())


def test_finalizers_keep_order() -> None:
    assert predicates.finalizers(obj()) == ()
    assert predicates.finalizers(obj(finalizers=["a", "b"])) != predicates.finalizers(
        obj(finalizers=["b", "a"])
    )


def test_combine_changes_when_either_changes_and_is_none_only_if_all_are() -> None:
    both = predicates.combine(predicates.generation, predicates.labels)
    base = both(obj(generation=1, labels={"a": "1"}))
    assert both(obj(generation=2, labels={"a": "1"})) != base
    assert both(obj(generation=1, labels={"a": "2"})) != base
    assert both(obj(generation=1, labels={"a": "1"})) == base
    assert predicates.combine(predicates.generation, predicates.resource_version)(obj()) is None


def test_fallback_takes_the_first_available_property() -> None:
    gen_or_rv = predicates.fallback(predicates.generation, predicates.resource_version)
    assert gen_or_rv(obj(generation=4, resourceVersion="9")) == 4
    assert gen_or_rv(obj(resourceVersion="9")) == "9"
    assert gen_or_rv(obj()) is None
