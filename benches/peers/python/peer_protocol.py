"""The benchmark peer protocol (benches/peers/README.md), shared by the Python peers."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

# The embedded API server's load generator stamps every churned object with its commit time
# (CLOCK_REALTIME nanoseconds, as a decimal string) under this annotation.
EMITTED = "kube-runtime.dev/emit-ns"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", default="default")
    p.add_argument("--resource", choices=["configmaps", "pods"], default="configmaps")
    p.add_argument("--mode", choices=["watch", "controller"], default="watch")
    p.add_argument("--concurrency", type=int, default=1)
    p.add_argument("--reconcile-ms", type=float, default=0.0, help="controller mode: reconcile duration")
    p.add_argument(
        "--variant",
        choices=["full", "strip", "metadata", "compact", "compact-strip", "dict", "dict-strip"],
        default="full",
        help="what the cache holds (peers without the option ignore it and say so in 'variant')",
    )
    return p.parse_args()


def emit_stamp(annotations: Mapping[str, str] | None) -> float | None:
    """The emit time (unix seconds) carried by an object's annotations, if any."""
    if not annotations:
        return None
    raw = annotations.get(EMITTED)
    if raw is None:
        return None
    try:
        return int(raw) / 1e9
    except ValueError:
        return None


class Stats:
    """Counts events after the initial sync and the lag from the emit stamp. Thread-safe.

    ``events`` is cumulative; the lag percentiles of each report cover only the lags observed
    since the previous report (a one-second window), so a harness can follow the lag over time.
    """

    def __init__(self) -> None:
        self.events = 0
        self.lags: list[float] = []
        self.lagged = 0
        self._lock = threading.Lock()

    def observe(self, obj: Any) -> None:
        """``obj`` is a dict or an object with ``metadata.annotations`` (official client models)."""
        now = time.time()
        if isinstance(obj, dict):
            annotations = (obj.get("metadata") or {}).get("annotations")
        else:
            annotations = getattr(getattr(obj, "metadata", None), "annotations", None)
        stamp = emit_stamp(annotations)
        with self._lock:
            self.events += 1
            if stamp is not None:
                self.lags.append(now - stamp)

    def report(self, final: bool = False) -> None:
        with self._lock:
            lags, self.lags = sorted(self.lags), []
            self.lagged += len(lags)
            events, lagged = self.events, self.lagged

        def pct(p: float) -> float | None:
            return lags[int((len(lags) - 1) * p)] if lags else None

        emit(
            {
                "events": events,
                "t": time.time(),
                "final": final,
                "lag_p50": pct(0.5),
                "lag_p99": pct(0.99),
                "lag_max": lags[-1] if lags else None,
                "window": len(lags),
                "lagged": lagged,
            }
        )


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def synced(count: int, **extra: Any) -> None:
    emit({"synced": count, "t": time.time(), **extra})


def dump_store(versions: Mapping[str, str]) -> None:
    """Write ``{"namespace/name": resourceVersion}`` of the cache to ``$BENCH_DUMP`` (if set).

    The harness compares it with the server's objects to count lost updates.
    """
    path = os.environ.get("BENCH_DUMP")
    if not path:
        return
    with open(path + ".tmp", "w") as f:
        json.dump(dict(versions), f)
    os.replace(path + ".tmp", path)
