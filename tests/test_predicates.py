"""Predicates: which property each one fingerprints, and how they compose."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from kube_runtime import predicates
from kube_runtime.client.head import LazyObject


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


_string_map = st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=3)
_meta = st.fixed_dictionaries(
    {},
    optional={
        "generation": st.integers(0, 100),
        "resourceVersion": st.sampled_from(["", "1", "2"]),
        "labels": _string_map,
        "annotations": _string_map,
        "finalizers": st.lists(st.text(max_size=4), max_size=3),
        "deletionTimestamp": st.sampled_from(["", "2026-01-01T00:00:00Z"]),
    },
)
_ALL = (
    predicates.generation,
    predicates.resource_version,
    predicates.labels,
    predicates.annotations,
    predicates.finalizers,
    predicates.deletion,
)


@settings(max_examples=200, deadline=None)
@given(_meta, st.permutations(_ALL))
def test_every_head_form_gives_the_fingerprint_of_the_decoded_object(
    meta: dict[str, Any], order: Any
) -> None:
    decoded = obj(**meta)
    head = LazyObject.from_raw(orjson.dumps(decoded)).meta.metadata
    composed = [*_ALL, predicates.combine(*order[:3]), predicates.fallback(*order[:2])]
    for predicate in composed:
        form = predicates.head_form(predicate)
        assert form is not None
        assert form(head) == predicate(decoded)


def test_a_user_predicate_has_no_head_form() -> None:
    assert predicates.head_form(lambda o: o.get("spec")) is None
    assert predicates.head_form(predicates.combine(predicates.generation, lambda o: 1)) is None
