"""Raw watch decoding throughput: our splitter + decoder vs a ``json.loads`` loop on the same bytes.

Builds a watch body of Pod-sized events (about 1.3 KB per line), cuts it into chunks as the network
would hand them over (64 KiB, httpcore's read size, and 1 KiB to stress reassembly), and measures:

* ``kube_runtime``: ``LineSplitter.feed`` per chunk, ``decode_event`` per line (orjson, event
  checks, ``WatchEvent`` objects) -- what ``Api.watch`` does;
* ``json.loads loop``: ``json.loads`` on every line of the same body, already split (the standard
  library's decode cost alone, without any reassembly or checks);
* ``msgspec variant``: the same splitter feeding ``msgspec.json.Decoder`` into a typed struct, to
  record why orjson is the decoder (skipped if msgspec is not installed).

Also times one 10 MB line delivered in 64 KiB chunks (linear reassembly check).

Times are process CPU time (best of N): the box is shared, and wall time under contention measures
the neighbours. Usage: ``python benches/bench_watch_decode.py [--quick]``. Prints events/s, MB/s
and the ratio to the json.loads loop.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from collections.abc import Callable
from typing import Any

import orjson

from kube_runtime.client.lines import LineSplitter, WatchEvent, decode_event


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

    class Event(msgspec.Struct):
        type: str
        object: dict[str, Any]

    decode = msgspec.json.Decoder(Event).decode

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events and repeats")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
