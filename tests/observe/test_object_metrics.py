"""Per-object gauges: explicit removal and automatic pruning against the store, so deleted
objects leave no series behind."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kube_runtime.client.resource import ApiResource
from kube_runtime.observe.object_metrics import ObjectGauge
from kube_runtime.store.object_ref import ObjectRef
from kube_runtime.store.store import store
from kube_runtime.watcher.event import Delete, Init, InitApply, InitDone

MDV = ApiResource("view.example.io", "v1", "MarkdownView", "markdownviews", True)


def mdv(name: str, ns: str = "default") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}}  # list items often carry no kind


def series(registry: CollectorRegistry) -> dict[tuple[str, ...], float]:
    text = generate_latest(registry).decode()
    out: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[tuple(s.labels[k] for k in sorted(s.labels))] = s.value
    return out


def test_set_and_explicit_remove(registry: CollectorRegistry) -> None:
    gauge = ObjectGauge("markdownview_available", "Available condition", registry=registry)
    gauge.set(mdv("a"), 1)
    gauge.set(mdv("b", "other"), 0)
    gauge.set(ObjectRef.for_resource(MDV, "a", "default"), 0)  # same object via its ref
    assert series(registry) == {("a", "default"): 0.0, ("b", "other"): 0.0}
    assert gauge.remove(mdv("a")) is True
    assert gauge.remove(mdv("a")) is False
    assert series(registry) == {("b", "other"): 0.0}


def test_extra_labels_are_all_removed_with_the_object(registry: CollectorRegistry) -> None:
    gauge = ObjectGauge("mdv_condition", "Conditions", extra_labels=["type"], registry=registry)
    gauge.set(mdv("a"), 1, type="Available")
    gauge.set(mdv("a"), 0, type="Degraded")
    assert gauge.value(mdv("a"), type="Degraded") == 0
    with pytest.raises(KeyError):
        gauge.set(mdv("a"), 1)
    gauge.remove(mdv("a"))
    assert series(registry) == {}


def test_scrape_prunes_objects_missing_from_the_store(registry: CollectorRegistry) -> None:
    reader, writer = store(MDV, gc_policy=None)
    gauge = ObjectGauge("mdv_available", "Available", store=reader, resource=MDV, registry=registry)
    writer.apply_watcher_event(Init())
    for name in ("a", "b"):
        writer.apply_watcher_event(InitApply(mdv(name)))
        gauge.set(mdv(name), 1)
    assert len(series(registry)) == 2  # store not ready: nothing pruned yet
    writer.apply_watcher_event(InitDone())
    writer.apply_watcher_event(Delete(mdv("a")))
    assert series(registry) == {("b", "default"): 1.0}
    assert len(gauge) == 1


def test_objects_without_a_known_kind_are_never_pruned(registry: CollectorRegistry) -> None:
    reader, writer = store(MDV, gc_policy=None)
    writer.apply_watcher_event(Init())
    writer.apply_watcher_event(InitDone())
    gauge = ObjectGauge("mdv_unknown_kind", "x", store=reader, registry=registry)  # no resource given
    gauge.set(mdv("a"), 1)
    assert gauge.prune() == 0
    assert len(gauge) == 1
