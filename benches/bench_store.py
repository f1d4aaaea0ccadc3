"""Store benchmarks: initial sync, steady watch ingest, bytes per cached object, GC pauses.

    nice -n 10 python benches/bench_store.py            # 10k and 100k
    nice -n 10 python benches/bench_store.py --quick    # 10k only

Part A runs end to end over HTTP against the embedded API server (in the same process, so the
server's CPU and objects are included: figures are a lower bound). Part B measures the store
alone on decoded ConfigMaps shaped like the server's (labels, an annotation, 128 bytes of data,
one managedFields entry): bytes per object with tracemalloc (stored from decoded objects, and
filled from list pages the way the watcher fills it), and the longest collector pause while
ingesting updates with 100k objects cached: the compact store (the default), and the dict store
with and without its default FreezeAfterSync policy, with the CPU each costs per stored write
(the policy's freezes included).

    nice -n 10 python benches/bench_store.py --store-only --objects 20000   # part B at 20k only
    nice -n 10 python benches/bench_store.py --sync-only --objects 100000   # part A at 100k only

Part A also syncs ``metadata_watcher`` listing raw (``Api.list_metadata_raw``, the default) and
decoded (``Api.list_metadata``, as before it existed) in the same run.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from typing import Any

import anyio
import anyio.lowlevel
import orjson

from kube_runtime.client.api import Api
from kube_runtime.client.resource import ApiResource
from kube_runtime.store import FreezeAfterSync, store
from kube_runtime.streams import drop_managed_fields
from kube_runtime.testing import ApiServer
from kube_runtime.watcher import Apply, InitApply, InitDone, WatcherConfig, metadata_watcher, watcher
from kube_runtime.watcher.event import INIT, INIT_DONE

CM = ApiResource.builtin("ConfigMap")


def configmap(i: int, rv: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": f"cm-{i}",
            "namespace": "bench",
            "uid": f"00000000-0000-4000-8000-{i:012d}",
            "resourceVersion": str(rv),
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "labels": {"app": "bench", "shard": f"s{i % 16}"},
            "annotations": {"bench/note": "x" * 32},
            "managedFields": [
                {
                    "manager": "bench",
                    "operation": "Update",
                    "apiVersion": "v1",
                    "time": "2024-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:data": {".": {}, "f:payload": {}}, "f:metadata": {"f:labels": {".": {}}}},
                }
            ],
        },
        "data": {"payload": "y" * 128},
    }


# -- part A: over HTTP ---------------------------------------------------------------------------


async def end_to_end(n: int) -> None:
    async with ApiServer(tls=False, history_size=200_000) as server:
        rtype = server.resource_type(CM)
        ns_type = server.resource_type("namespaces")
        server.ops.create(
            ns_type, None, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}
        )
        for i in range(n):
            body = configmap(i)
            del (
                body["metadata"]["managedFields"],
                body["metadata"]["uid"],
                body["metadata"]["resourceVersion"],
            )
            server.ops.create(rtype, "bench", body)
        api = Api(server.client, CM, "bench")
        for label, config in (
            ("paged 500", WatcherConfig()),
            ("streaming list", WatcherConfig().streaming_lists()),
        ):
            reader, writer = store(CM, gc_policy=None)
            stream = watcher(api, config).reflect(writer)
            t0 = time.perf_counter()
            c0 = time.process_time()
            async with stream:
                async for item in stream:
                    if isinstance(item, InitDone):
                        break
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(
                f"  initial sync {n:>7} CMs, {label:<14}: {wall:6.2f} s wall, {cpu:6.2f} s CPU "
                f"({n / wall:,.0f} objects/s), store len {len(reader)}"
            )

        await metadata_sync(api, n)

        # Steady ingest: updates committed on the server while the reflector applies them.
        reader, writer = store(CM, gc_policy=None)
        updates = min(n, 20_000)
        stream = watcher(api).reflect(writer)
        async with stream:
            async for item in stream:
                if isinstance(item, InitDone):
                    break
            done = anyio.Event()
            received = 0
            t0 = time.perf_counter()

            async def consume() -> None:
                nonlocal received
                async for item in stream:
                    if isinstance(item, Apply):
                        received += 1
                        if received == updates:
                            done.set()
                            return

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                for i in range(updates):
                    obj = {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": f"cm-{i}", "namespace": "bench"},
                        "data": {"payload": "z" * 128},
                    }
                    server.ops.update(rtype, "bench", f"cm-{i}", obj, require_rv=False)
                    if i % 500 == 0:
                        await anyio.lowlevel.checkpoint()
                await done.wait()
            wall = time.perf_counter() - t0
            print(
                f"  steady ingest with {n} cached: {updates} MODIFIED in {wall:.2f} s = "
                f"{updates / wall:,.0f} events/s "
                "(server commit + HTTP + decode + store, one process)"
            )


class DecodingMetadataApi:
    """``Api``'s metadata verbs without ``list_metadata_raw``: ``metadata_watcher`` then lists
    through ``list_metadata``, decoding every item (how it listed before ``list_metadata_raw``)."""

    def __init__(self, api: Api) -> None:
        self.list_metadata = api.list_metadata
        self.watch_metadata = api.watch_metadata


async def metadata_sync(api: Api, n: int) -> None:
    """``metadata_watcher`` into a compact store until ``InitDone``, listing raw (items kept as bytes)
    and decoded (every item a dict), alternately, twice each: the server encodes each object's
    PartialObjectMetadata once and caches it, so the first run pays that and is not compared."""
    runs = [("raw list", api), ("decoded list", DecodingMetadataApi(api))] * 2
    for label, watched in [("warm-up", api), *runs]:
        reader, writer = store(CM, gc_policy=None)
        gc.collect()
        t0 = time.perf_counter()
        c0 = time.process_time()
        async with metadata_watcher(watched, WatcherConfig()).reflect(writer) as stream:
            async for item in stream:
                if isinstance(item, InitDone):
                    break
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        if label != "warm-up":
            print(
                f"  metadata sync {n:>7} CMs, {label:<12}: {wall:6.2f} s wall, {cpu:6.2f} s CPU "
                f"({n / wall:,.0f} objects/s), store len {len(reader)}"
            )
        del reader, writer


# -- part B: the store alone -----------------------------------------------------------------------


def bytes_per_object(n: int, *, strip: bool, compact: bool = False) -> float:
    raw = [orjson.dumps(configmap(i)) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    reader, writer = store(CM, gc_policy=None, compact=compact)
    writer.apply_watcher_event(INIT)
    for b in raw:
        obj = orjson.loads(b)
        if strip:
            drop_managed_fields(obj)
        writer.apply_watcher_event(InitApply(obj))
    writer.apply_watcher_event(INIT_DONE)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(reader) == n
    return used / n


def bytes_per_listed_object(n: int, *, page: int = 500) -> float:
    """Bytes per object of a compact store filled as the watcher fills it: list pages (JSON bodies,
    built before measuring) decoded the way the watcher's list call decodes them, then its state
    machine's ``InitApply`` events (``Api.list_raw`` and raw slices where the runtime has them)."""
    from kube_runtime.watcher.state import Empty, InitPage, Listed, State, step

    try:
        from kube_runtime.client.head import RawList

        decode: Any = RawList.decode
    except ImportError:  # a runtime that decodes list pages whole
        decode = orjson.loads
    bodies = []
    for start in range(0, n, page):
        meta: dict[str, Any] = {"resourceVersion": "1"}
        if start + page < n:
            meta["continue"] = str(start + page)
        items = [configmap(i) for i in range(start, min(n, start + page))]
        for item in items:
            del item["kind"], item["apiVersion"]  # list items come without them
        bodies.append(
            orjson.dumps({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": meta, "items": items})
        )
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    reader, writer = store(CM, gc_policy=None, compact=True)
    state: State = Empty()
    for body in bodies:
        stepped = step(state, Listed(decode(body)))
        state = stepped.state
        for event in stepped.items:
            writer.apply_watcher_event(event)  # type: ignore[arg-type]
        del stepped
    assert not isinstance(state, InitPage)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(reader) == n
    return used / n


class PauseRecorder:
    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._start))

    def longest(self) -> float:
        return max((p for _, p in self.pauses), default=0.0)


def gc_pauses(n: int, *, freeze: bool, updates: int, compact: bool) -> dict[str, float]:
    """Collector pauses (seconds) with ``n`` objects cached.

    Steady watch ingest rarely triggers the collector by itself (orjson's dicts come from the dict
    free list), so the pause that matters is a full collection, which any allocation-heavy code can
    trigger: ``full`` is one measured after the sync and ``updates`` writes. ``sync`` is the longest
    collection during the sync (with the policy: its one-time freeze), ``ingest`` the longest
    during the updates (with the policy: its re-freezes). ``sync_cpu``/``ingest_cpu``: CPU seconds
    per stored object for the sync and for the updates (decode, store and collector together).
    """
    gc.collect()
    policy = FreezeAfterSync() if freeze else None
    # Decoded as they are applied, as a watcher does (objects decoded up front would already sit in
    # the old generation, and the first freeze would walk all of them).
    listed = [orjson.dumps(configmap(i)) for i in range(n)]
    new_versions = [orjson.dumps(configmap(i % n, 2)) for i in range(updates)]
    recorder = PauseRecorder()
    gc.callbacks.append(recorder)
    try:
        _reader, writer = store(CM, gc_policy=policy, compact=compact)
        c0 = time.process_time()
        writer.apply_watcher_event(INIT)
        for b in listed:
            writer.apply_watcher_event(InitApply(orjson.loads(b)))
        writer.apply_watcher_event(INIT_DONE)
        sync_cpu = (time.process_time() - c0) / n
        sync = recorder.longest()
        recorder.pauses.clear()
        c0 = time.process_time()
        for b in new_versions:
            writer.apply_watcher_event(Apply(orjson.loads(b)))
        ingest_cpu = (time.process_time() - c0) / updates
        ingest = recorder.longest()
        t0 = time.perf_counter()
        gc.collect()
        full = time.perf_counter() - t0
    finally:
        gc.callbacks.remove(recorder)
        gc.unfreeze()
    return {"sync": sync, "ingest": ingest, "full": full, "sync_cpu": sync_cpu, "ingest_cpu": ingest_cpu}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--store-only", action="store_true")
    parser.add_argument("--sync-only", action="store_true", help="part A only")
    parser.add_argument("--objects", type=int, default=None, help="one size instead of 10k (and 100k)")
    args = parser.parse_args()
    sizes = [args.objects] if args.objects else [10_000] if args.quick else [10_000, 100_000]
    if not args.store_only:
        print("Part A: end to end over HTTP (embedded API server in the same process)")
        for n in sizes:
            anyio.run(end_to_end, n)
    if args.sync_only:
        return
    print("Part B: the store alone")
    n = sizes[-1]
    json_size = len(orjson.dumps(configmap(1)))
    print(f"  ConfigMap JSON size: {json_size} bytes (with managedFields)")
    for compact in (False, True):
        for strip in (False, True):
            per = bytes_per_object(n, strip=strip, compact=compact)
            label = "managedFields dropped" if strip else "as received"
            store_kind = ", compact store" if compact else ""
            print(
                f"  bytes per cached object ({label}{store_kind}): {per:,.0f} ({per / json_size:.1f}x JSON)"
            )
    per = bytes_per_listed_object(n)
    label = "as the watcher lists them, compact store"
    print(f"  bytes per cached object ({label}): {per:,.0f} ({per / json_size:.1f}x JSON)")
    updates = 20_000
    for freeze, compact in ((False, True), (True, False), (False, False)):
        p = gc_pauses(n, freeze=freeze, updates=updates, compact=compact)
        label = (
            "compact store (default)"
            if compact
            else "dict store, FreezeAfterSync (its default)"
            if freeze
            else "dict store, no policy"
        )
        # Only pauses are given in ms (the benchmark harness reads every "<x> ms" as a pause).
        print(
            f"  GC, {n} cached, {label}: full collection {p['full'] * 1e3:.1f} ms; longest pause during "
            f"sync {p['sync'] * 1e3:.1f} ms, during {updates} updates {p['ingest'] * 1e3:.1f} ms; "
            f"CPU per object: sync {p['sync_cpu'] * 1e6:.1f} us, update {p['ingest_cpu'] * 1e6:.1f} us"
        )


if __name__ == "__main__":
    main()
