"""Typed resources: what a model costs beside the dict path, per reconcile and per cached object.

    nice -n 10 python benches/bench_typed.py             # 5k objects
    nice -n 10 python benches/bench_typed.py --objects 20000

Per reconcile: the controller reads its object from the compact store (an orjson decode) and, when
typed, validates it into the model (``Controller.decode_objects``). Reported: the store read
alone (the dict path), the read plus the model build (the typed path), and writing a model back
to its wire form (``to_dict``, what every typed write sends).

Per cached object: a typed controller keeps the same compact store (JSON bytes), so a model costs
nothing while cached; for comparison, tracemalloc's bytes per object of a cache of dicts and of a
cache of models, and the cost per object of reading the whole typed store (``TypedStore.state``).

The object is a custom resource shaped like a real one: labels, annotations, a finalizer, an
owner reference, one managedFields entry, a spec of a dozen fields with a nested list, and a
status with two conditions.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import Field

from kube_runtime.resources import Conditions, CustomResource, KubeModel, TypedStore, decoder, to_dict
from kube_runtime.store import ObjectRef, store
from kube_runtime.watcher import InitApply, InitDone
from kube_runtime.watcher.event import INIT


class Port(KubeModel):
    name: str
    port: int
    protocol: str = "TCP"


class BenchSpec(KubeModel):
    image: str
    replicas: Annotated[int, Field(ge=0)] = 1
    ports: list[Port] = []
    env: dict[str, str] | None = None
    paused: bool = False
    tier: str | None = None


class BenchStatus(KubeModel):
    ready_replicas: int | None = None
    conditions: Conditions | None = None


class Bench(CustomResource, group="bench.example.com", version="v1", kind="Bench"):
    spec: BenchSpec
    status: BenchStatus | None = None


def obj(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "bench.example.com/v1",
        "kind": "Bench",
        "metadata": {
            "name": f"b-{i}",
            "namespace": "bench",
            "uid": f"00000000-0000-4000-8000-{i:012d}",
            "resourceVersion": str(1000 + i),
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "bench", "shard": f"s{i % 16}"},
            "annotations": {"bench/note": "x" * 32},
            "finalizers": ["bench.example.com/cleanup"],
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "Namespace", "name": "bench", "uid": "u", "controller": True}
            ],
            "managedFields": [
                {
                    "manager": "bench",
                    "operation": "Apply",
                    "apiVersion": "bench.example.com/v1",
                    "time": "2026-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:spec": {"f:image": {}, "f:replicas": {}, "f:ports": {}}},
                }
            ],
        },
        "spec": {
            "image": "registry.example.com/app:1.2.3",
            "replicas": 3,
            "ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
            "env": {"MODE": "prod", "LEVEL": "info"},
            "tier": "gold",
        },
        "status": {
            "readyReplicas": 3,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Available",
                    "message": "all replicas ready",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 3,
                },
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "Done",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 3,
                },
            ],
        },
    }


def per_call(fn: Callable[[], object], seconds: float = 0.5) -> float:
    """Microseconds per call (best of 5 runs of at least ``seconds``/5 each)."""
    best = float("inf")
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        took = time.perf_counter() - start
        if took >= seconds / 5:
            break
        n *= 2
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def bytes_per_object(build: Callable[[], list[Any]], count: int) -> float:
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) / count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="typed decode cost beside the dict path")
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=0.5, help="timing budget per figure")
    args = parser.parse_args(argv)
    count, seconds = args.objects, args.seconds

    reader, writer = store(Bench.api_resource)  # compact, as a Controller's main store
    writer.apply_watcher_event(INIT)
    for i in range(count):
        writer.apply_watcher_event(InitApply(obj(i)))
    writer.apply_watcher_event(InitDone())
    ref = ObjectRef.for_resource(Bench.api_resource, "b-7", "bench")
    decode = decoder(Bench)
    model = decode(obj(7))
    typed = TypedStore(reader, Bench)

    read_dict = per_call(lambda: reader.get(ref), seconds)
    read_typed = per_call(lambda: decode(reader.get(ref)), seconds)  # type: ignore[arg-type]
    validate_only = per_call(lambda: decode(obj(7)), seconds)
    build_input = per_call(lambda: obj(7), seconds)
    write = per_call(lambda: to_dict(model), seconds)

    start = time.perf_counter()
    dicts = reader.state()
    state_dict = (time.perf_counter() - start) / count * 1e6
    start = time.perf_counter()
    models = typed.state()
    state_typed = (time.perf_counter() - start) / count * 1e6
    assert len(models) == len(dicts) == count
    del dicts, models

    def compact_store() -> list[Any]:
        _, fill = store(Bench.api_resource)
        fill.apply_watcher_event(INIT)
        for i in range(count):
            fill.apply_watcher_event(InitApply(obj(i)))
        fill.apply_watcher_event(InitDone())
        return [fill]

    as_compact = bytes_per_object(compact_store, count)
    as_dicts = bytes_per_object(lambda: [obj(i) for i in range(count)], count)
    as_models = bytes_per_object(lambda: [decode(obj(i)) for i in range(count)], count)

    print(f"typed resources bench: {count} cached objects, {len(str(obj(0)))} chars each (repr)")
    print("per reconcile (µs, best of 5):")
    print(f"  dict path: store read (orjson decode)       {read_dict:8.1f}")
    print(f"  typed path: store read + model build        {read_typed:8.1f}  (+{read_typed - read_dict:.1f})")
    print(f"  model build alone (validate a dict)         {validate_only - build_input:8.1f}")
    print(f"  write back: to_dict(model)                  {write:8.1f}")
    print("per cached object:")
    print(f"  compact store (dict and typed controllers)  {as_compact:8.0f} bytes/object (typed: +0)")
    print(f"  for scale: a cache of dicts would hold      {as_dicts:8.0f} bytes/object")
    print(f"             a cache of models would hold     {as_models:8.0f} bytes/object")
    print(f"  full read: store.state() dicts              {state_dict:8.1f} µs/object")
    print(f"             TypedStore.state() models        {state_typed:8.1f} µs/object")


if __name__ == "__main__":
    main()
