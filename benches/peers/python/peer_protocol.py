"""The benchmark peer protocol (benches/peers/README.md), shared by the Python peers."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

EMITTED = "bench.kube-runtime.io/emitted"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", default="default")
    p.add_argument("--resource", choices=["configmaps", "pods"], default="configmaps")
    p.add_argument("--mode", choices=["watch", "controller"], default="watch")
    p.add_argument("--concurrency", type=int, default=1)
    return p.parse_args()


class Stats:
    """Counts events after the initial sync and the lag from the emit stamp. Thread-safe."""

    def __init__(self) -> None:
        self.events = 0
        self.lags: list[float] = []
        self._lock = threading.Lock()

    def observe(self, obj: Any) -> None:
        """``obj`` is a dict or an object with ``metadata.annotations`` (official client models)."""
        now = time.time()
        if isinstance(obj, dict):
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
        else:
            annotations = getattr(getattr(obj, "metadata", None), "annotations", None) or {}
        stamp = annotations.get(EMITTED)
        with self._lock:
            self.events += 1
            if stamp is not None:
                self.lags.append(now - float(stamp))

    def report(self, final: bool = False) -> None:
        with self._lock:
            lags = sorted(self.lags)
            events = self.events

        def pct(p: float) -> float | None:
            return lags[int((len(lags) - 1) * p)] if lags else None

        emit({"events": events, "t": time.time(), "final": final, "lag_p50": pct(0.5),
              "lag_p99": pct(0.99), "lagged": len(lags)})


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def synced(count: int) -> None:
    emit({"synced": count, "t": time.time()})
