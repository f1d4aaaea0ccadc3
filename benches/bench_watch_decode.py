"""Raw watch decoding throughput: our splitter + decoder vs a ``json.loads`` loop on the same bytes.

Builds a watch body of Pod-sized events (about 1.3 KB per line), cuts it into chunks as the network
would hand them over (64 KiB, httpcore's read size, and 1 KiB to stress reassembly), and measures:

* ``kube_runtime``: ``LineSplitter.feed`` per chunk, ``decode_event`` per line (the event type, the
  object's bytes and head, ``WatchEvent`` objects; on runtimes before heads, a whole orjson decode)
  -- what ``Api.watch`` does; and the same with every event's ``object`` read (decoded whole);
* ``json.loads loop``: ``json.loads`` on every line of the same body, already split (the standard
  library's decode cost alone, without any reassembly or checks);
* ``msgspec variant``: the same splitter feeding ``msgspec.json.Decoder`` into a typed struct that
  decodes whole objects (skipped if msgspec is not installed).

Also times one 10 MB line delivered in 64 KiB chunks (linear reassembly check).

Then the whole watch-mode pipeline of ``benches/peers/python/kube_runtime_peer.py``
(``reflector(writer, watcher(api, WatcherConfig())).default_backoff()``) on a fake ``Api`` whose
watch body is a byte stream of MODIFIED events for cached ConfigMaps (``configmap_template``,
about 1.3 KB per line), cut into chunks of 64 KiB, of 4 events and of 1 event (a slow stream hands
over about one event per socket read). It reports CPU microseconds per event, after the initial
list, into the default store, a compact store and a writer that drops everything (our layers
alone), beside the raw loop of ``benches/peers/python/raw_peer.py`` (``bytes.find`` +
``orjson.loads`` + a dict insert) fed the same chunks by the same async iterator. The
collector-off columns isolate the code paths; the collector-on pair adds what a default store's GC
policy (FreezeAfterSync) and the collector itself cost.

Last, the scope httpcore puts around every socket read (``anyio.fail_after(read timeout)``), with a
deadline and without: why watches read without a read timeout and leave the idle timeout to the
per-stream watchdog of ``kube_runtime.client.idle``.

Times are process CPU time (best of N): the box is shared, and wall time under contention measures
the neighbours; under contention the figures still swing by 30% or more from run to run, so
compare runs made back to back (or count instructions: ``valgrind --tool=cachegrind`` on two event
counts, the difference divided by the extra events, is stable to about 1%). Usage:
``python benches/bench_watch_decode.py [--quick] [--pipeline-only]``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import orjson
from harness.workload import configmap_template

from kube_runtime.client.api import WatchEventStream
from kube_runtime.client.idle import IdleWatchdog
from kube_runtime.client.json import KubeObject
from kube_runtime.client.lines import LineSplitter, WatchEvent, decode_event
from kube_runtime.store import reflector, store
from kube_runtime.watcher import Apply, InitDone, WatcherConfig, watcher
from kube_runtime.watcher.event import WatcherEvent


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"web-{i}",
            "namespace": "default",
            "uid": f"00000000-0000-0000-0000-{i:012d}",
            "resourceVersion": str(100_000 + i),
            "labels": {"app": "web", "tier": "frontend", "pod-template-hash": "5d8f7c9b6"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2024-01-01T00:00:00Z"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-5d8f7c9b6",
                    "uid": "u",
                    "controller": True,
                }
            ],
            "creationTimestamp": "2024-01-01T00:00:00Z",
        },
        "spec": {
            "containers": [
                {
                    "name": "web",
                    "image": "nginx:1.25",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "env": [{"name": f"VAR_{k}", "value": "value-" * 3} for k in range(8)],
                }
            ],
            "nodeName": f"node-{i % 50}",
            "serviceAccountName": "default",
        },
        "status": {
            "phase": "Running",
            "podIP": f"10.0.{i // 250 % 250}.{i % 250}",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        },
    }


def build_body(events: int) -> bytes:
    kinds = ("ADDED", "MODIFIED", "MODIFIED", "DELETED")
    return b"".join(orjson.dumps({"type": kinds[i % 4], "object": pod(i)}) + b"\n" for i in range(events))


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def ours(chunks: list[bytes]) -> int:
    """What ``WatchStream`` does: split each chunk, decode each line when it is consumed."""
    splitter = LineSplitter()
    count = 0
    for chunk in chunks:
        for line in splitter.feed(chunk):
            if type(decode_event(line)) is WatchEvent:
                count += 1
    return count


def ours_decoded(chunks: list[bytes]) -> int:
    """:func:`ours`, then every event's whole object read (``event.object``), as a consumer that
    needs the dict pays (on a runtime that decodes whole lines, ``object`` is already there)."""
    splitter = LineSplitter()
    count = 0
    for chunk in chunks:
        for line in splitter.feed(chunk):
            event = decode_event(line)
            if type(event) is WatchEvent and event.object:
                count += 1
    return count


def json_loop(lines: list[bytes]) -> int:
    count = 0
    loads = json.loads
    for line in lines:
        event = loads(line)
        if event["type"]:
            count += 1
    return count


def msgspec_variant() -> Callable[[list[bytes]], int] | None:
    try:
        import msgspec
    except ImportError:
        return None

    class WireEvent(msgspec.Struct):
        type: str
        object: dict[str, Any]

    decode = msgspec.json.Decoder(WireEvent).decode

    def run(chunks: list[bytes]) -> int:
        splitter = LineSplitter()
        count = 0
        for chunk in chunks:
            for line in splitter.feed(chunk):
                event = decode(line)
                if event.type in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
                    WatchEvent(event.type, event.object)
                    count += 1
        return count

    return run


def best_of(repeats: int, fn: Callable[[Any], int], arg: Any) -> tuple[float, int]:
    best = float("inf")
    result = 0
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        result = fn(arg)
        best = min(best, time.process_time() - started)
    return best, result


# -- the whole watch-mode pipeline ---------------------------------------------------------------

NAMESPACE = "bench"


def configmaps(count: int) -> list[dict[str, Any]]:
    """``count`` ConfigMaps shaped like the benchmark server's (``configmap_template``)."""
    objects = []
    for i in range(count):
        obj = copy.deepcopy(configmap_template())
        meta = obj["metadata"]
        meta.update(
            name=f"cm-{i:06d}",
            namespace=NAMESPACE,
            uid=f"00000000-0000-4000-8000-{i:012d}",
            resourceVersion=str(1000 + i),
            creationTimestamp="2025-01-01T00:00:00Z",
        )
        objects.append(obj)
    return objects


def modified_lines(objects: list[dict[str, Any]], events: int) -> list[bytes]:
    """``events`` MODIFIED lines cycling over ``objects``, each with a fresh resourceVersion and the
    churn's emit-time annotation (what the benchmark server's churn writes)."""
    lines = []
    for i in range(events):
        obj = copy.deepcopy(objects[i % len(objects)])
        obj["metadata"]["resourceVersion"] = str(100_000 + i)
        obj["metadata"]["annotations"]["kube-runtime.dev/emit-ns"] = str(1_700_000_000_000_000_000 + i)
        lines.append(orjson.dumps({"type": "MODIFIED", "object": obj}) + b"\n")
    return lines


def chunks_of_events(lines: list[bytes], per_chunk: int) -> list[bytes]:
    return [b"".join(lines[i : i + per_chunk]) for i in range(0, len(lines), per_chunk)]


class _Body:
    """Stands in for ``client.ResponseStream``: the chunks, then the end of the body, each read
    bracketed by the same idle watchdog a real watch body has."""

    __slots__ = ("_chunks", "_watchdog", "headers")

    def __init__(self, chunks: list[bytes], idle_timeout: float | None) -> None:
        self._chunks = iter(chunks)
        self.headers = {"content-type": "application/json"}
        self._watchdog = IdleWatchdog(idle_timeout) if idle_timeout is not None else None

    @property
    def url(self) -> str:
        return "/api/v1/configmaps"

    @property
    def idle_timeout(self) -> float | None:
        return self._watchdog.timeout if self._watchdog is not None else None

    @property
    def idle_timed_out(self) -> bool:
        return self._watchdog is not None and self._watchdog.timed_out

    def set_idle_timeout(self, seconds: float) -> None:
        if self._watchdog is not None:
            self._watchdog.retime(seconds)

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        watchdog = self._watchdog
        if watchdog is not None:
            watchdog.begin()
        try:
            for chunk in self._chunks:
                return chunk
            raise StopAsyncIteration
        finally:
            if watchdog is not None:
                watchdog.end()


class _FakeApi:
    """``list`` serves ``objects`` in pages of the requested size; ``watch`` serves ``chunks``."""

    def __init__(self, objects: list[dict[str, Any]], chunks: list[bytes]) -> None:
        self._objects = objects
        self._chunks = chunks

    async def list(self, *, limit: int | None = None, continue_token: str | None = None, **_: Any) -> Any:
        start = int(continue_token or 0)
        end = len(self._objects) if limit is None else min(start + limit, len(self._objects))
        meta: dict[str, Any] = {"resourceVersion": "99999"}
        if end < len(self._objects):
            meta["continue"] = str(end)
        return {
            "kind": "ConfigMapList",
            "apiVersion": "v1",
            "metadata": meta,
            "items": self._objects[start:end],
        }

    def watch(self, *, idle_timeout: float | None = None, **_: Any) -> Any:
        return self._watch(idle_timeout)

    @asynccontextmanager
    async def _watch(self, idle_timeout: float | None) -> AsyncIterator[WatchEventStream]:
        yield WatchEventStream(_Body(self._chunks, idle_timeout))  # type: ignore[arg-type]


class _DroppingWriter:
    def apply_watcher_event(self, event: WatcherEvent[KubeObject]) -> None:
        pass


async def _pipeline(api: _FakeApi, writer: Any, events: int) -> float:
    """CPU seconds the peer's watch loop spends on ``events`` watch events after the initial list."""
    stream = reflector(writer, watcher(api, WatcherConfig())).default_backoff()  # type: ignore[arg-type]
    started: float | None = None
    count = 0
    async with stream:
        async for item in stream:
            if started is None:
                if type(item) is InitDone:
                    started = time.process_time()
            elif type(item) is Apply:
                count += 1
                if count == events:
                    break
    assert started is not None
    assert count == events, count
    return time.process_time() - started


async def _raw_loop(chunks: list[bytes], cache: dict[tuple[str, str], Any], events: int) -> float:
    """``raw_peer.py``'s watch loop (minus its stats) on the same chunks."""
    loads = orjson.loads
    started = time.process_time()
    buf = b""
    count = 0
    async for chunk in _Body(chunks, None):
        buf += chunk
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            ev = loads(buf[start:end])
            start = end + 1
            obj = ev["object"]
            if ev["type"] == "ERROR":
                continue
            meta = obj["metadata"]
            if ev["type"] == "BOOKMARK":
                continue
            if ev["type"] == "DELETED":
                cache.pop((meta["namespace"], meta["name"]), None)
            else:
                cache[(meta["namespace"], meta["name"])] = obj
            count += 1
        buf = buf[start:]
    assert count == events
    return time.process_time() - started


def run_pipelines(cached: int, events: int, repeats: int) -> None:
    objects = configmaps(cached)
    lines = modified_lines(objects, events)
    per_event = sum(map(len, lines)) / events
    print(
        f"\nwatch-mode pipeline: {cached} ConfigMaps cached, {events} MODIFIED events of {per_event:.0f} B; "
        f"CPU us/event, best of {repeats}"
    )
    gc.freeze()  # the fixtures stay out of the collector's way, as a long-running peer's heap would
    splits = {
        "64 KiB": chunks_of_events(lines, max(1, 65536 // round(per_event))),
        "4 events": None,
        "1 event": None,
    }
    splits["4 events"] = chunks_of_events(lines, 4)
    splits["1 event"] = chunks_of_events(lines, 1)
    # (name, writer factory or None for the raw loop, collector on): the collector-off columns isolate
    # the code paths; the collector-on pair shows what a default store's GC policy adds.
    columns: list[tuple[str, Callable[[], Any] | None, bool]] = [
        ("raw loop", None, False),
        ("ours, no store", _DroppingWriter, False),
        ("ours, compact", lambda: store(compact=True)[1], False),
        ("raw loop +gc", None, True),
        ("ours, default +gc", lambda: store()[1], True),
    ]
    print(f"{'chunks':<10}" + "".join(f"{name:>19}" for name, _, _ in columns))
    for split, chunks in splits.items():
        assert chunks is not None
        cells = []
        raw: dict[bool, float] = {}
        for _, make_writer, collect in columns:
            best = float("inf")
            for _ in range(repeats):
                gc.collect()
                if not collect:
                    gc.disable()
                try:
                    if make_writer is None:
                        cache = {(NAMESPACE, o["metadata"]["name"]): o for o in objects}
                        elapsed = anyio.run(_raw_loop, chunks, cache, events)
                    else:
                        elapsed = anyio.run(_pipeline, _FakeApi(objects, chunks), make_writer(), events)
                finally:
                    gc.enable()
                best = min(best, elapsed)
            if make_writer is None:
                raw[collect] = best
                cells.append(f"{best / events * 1e6:>19.2f}")
            else:
                cells.append(f"{best / events * 1e6:>12.2f} ({best / raw[collect]:3.1f}x)")
        print(f"{split:<10}" + "".join(cells))
    gc.unfreeze()


async def _read_scopes(reads: int) -> dict[str, float]:
    """CPU seconds of ``reads`` enters and exits of the scope httpcore puts around every socket read
    (``anyio.fail_after(read timeout)``), with and without a deadline."""
    figures = {}
    for label, delay in (("no read timeout", None), ("read timeout", 295.0)):
        started = time.process_time()
        for _ in range(reads):
            with anyio.fail_after(delay):  # noqa: ASYNC100  # the scope alone is measured
                pass
        figures[label] = time.process_time() - started
    return figures


def run_read_scopes(reads: int, repeats: int) -> None:
    best: dict[str, float] = {}
    for _ in range(repeats):
        for label, elapsed in anyio.run(_read_scopes, reads).items():
            best[label] = min(best.get(label, float("inf")), elapsed)
    cells = ", ".join(f"{label}: {elapsed / reads * 1e6:.2f} us" for label, elapsed in best.items())
    print(f"\nhttpcore's scope per socket read (a slow watch reads about once per event): {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and repeats")
    parser.add_argument("--pipeline-only", action="store_true", help="only the watch-mode pipeline")
    args = parser.parse_args()
    if args.pipeline_only:
        run_pipelines(20_000, 10_000 if args.quick else 40_000, 3 if args.quick else 5)
        run_read_scopes(20_000, 3 if args.quick else 5)
        return
    events = 5_000 if args.quick else 50_000
    repeats = 3 if args.quick else 7
    body = build_body(events)
    megabytes = len(body) / 1e6
    lines = body.splitlines()
    per_event = len(body) / events
    print(f"watch body: {events} events, {megabytes:.1f} MB, {per_event:.0f} B/event; best of {repeats}")

    rows: list[tuple[str, float]] = []
    baseline, n = best_of(repeats, json_loop, lines)
    assert n == events
    rows.append(("json.loads loop (pre-split lines)", baseline))
    for size in (65536, 1024):
        elapsed, n = best_of(repeats, ours, chunked(body, size))
        assert n == events
        rows.append((f"kube_runtime splitter+decoder, {size // 1024} KiB chunks", elapsed))
    elapsed, n = best_of(repeats, ours_decoded, chunked(body, 65536))
    assert n == events
    rows.append(("kube_runtime, every object read, 64 KiB", elapsed))
    variant = msgspec_variant()
    if variant is not None:
        elapsed, n = best_of(repeats, variant, chunked(body, 65536))
        assert n == events
        rows.append(("msgspec variant, 64 KiB chunks", elapsed))

    print(f"{'decoder':<44} {'events/s':>12} {'MB/s':>9} {'x json':>7}")
    for name, elapsed in rows:
        print(f"{name:<44} {events / elapsed:>12,.0f} {megabytes / elapsed:>9.1f} {baseline / elapsed:>7.2f}")

    big = orjson.dumps(
        {"type": "MODIFIED", "object": {"metadata": {"name": "big"}, "data": {"b": "x" * 10_000_000}}}
    )
    big_chunks = chunked(big + b"\n", 65536)
    elapsed, n = best_of(repeats, ours, big_chunks)
    assert n == 1
    rate = len(big) / 1e6 / elapsed
    print(f"one 10 MB line in {len(big_chunks)} chunks of 64 KiB: {elapsed * 1000:.1f} ms ({rate:.0f} MB/s)")
    run_pipelines(20_000, 10_000 if args.quick else 40_000, 3 if args.quick else 5)
    run_read_scopes(20_000, 3 if args.quick else 5)


if __name__ == "__main__":
    main()
