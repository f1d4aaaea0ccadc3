"""kube_runtime.metric_families.PerRegistry: one build per registry, whoever asks and from where."""

from __future__ import annotations

import gc
import threading

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from kube_runtime.metric_families import PerRegistry


def test_builds_once_per_registry_and_defaults_to_the_global_one() -> None:
    built: list[CollectorRegistry] = []

    def build(registry: CollectorRegistry) -> list[CollectorRegistry]:
        built.append(registry)
        return [registry]

    families = PerRegistry(build)
    first, second = CollectorRegistry(), CollectorRegistry()
    assert families(first) is families(first)
    assert families(second) == [second]
    assert families() == [REGISTRY]
    assert families(None) is families(REGISTRY)
    assert built == [first, second, REGISTRY]


def test_concurrent_first_use_registers_the_family_once() -> None:
    registry = CollectorRegistry()
    families = PerRegistry(lambda reg: Counter("per_registry_race", "x", registry=reg))
    barrier = threading.Barrier(8)
    seen: list[Counter] = []

    def use() -> None:
        barrier.wait()
        seen.append(families(registry))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(counter) for counter in seen}) == 1


def test_a_family_registered_by_someone_else_is_a_real_conflict() -> None:
    registry = CollectorRegistry()
    Counter("taken", "someone else's", registry=registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PerRegistry(lambda reg: Counter("taken", "ours", registry=reg))(registry)


def test_a_collected_registry_takes_its_families_with_it() -> None:
    families = PerRegistry(lambda reg: object())
    registry = CollectorRegistry()
    families(registry)
    del registry
    gc.collect()
    assert len(families._by_registry) == 0
