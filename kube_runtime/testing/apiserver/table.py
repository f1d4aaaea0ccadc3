"""``meta.k8s.io/v1`` Table rendering (``kubectl get`` asks for it; Name and Age columns only)."""

from __future__ import annotations

import datetime
from typing import Any

import orjson

from kube_runtime.testing.apiserver.storage import Record

__all__ = ["table_bytes"]

_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0},
    {"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0},
]


def _age(timestamp: Any) -> str:
    if not isinstance(timestamp, str):
        return "<unknown>"
    try:
        created = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return "<unknown>"
    secs = max(0, int((datetime.datetime.now(datetime.UTC) - created).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    if secs < 7200:
        return f"{secs // 60}m"
    if secs < 172800:
        return f"{secs // 3600}h"
    return f"{secs // 86400}d"


def table_bytes(records: list[Record], list_meta: dict[str, Any] | None) -> bytes:
    """A Table of ``records``; each row carries the object's metadata as PartialObjectMetadata."""
    rows = [
        {
            "cells": [r.key[1], _age((r.obj.get("metadata") or {}).get("creationTimestamp"))],
            "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": r.obj.get("metadata") or {},
            },
        }
        for r in records
    ]
    return orjson.dumps(
        {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta or {},
            "columnDefinitions": _COLUMNS,
            "rows": rows,
        }
    )
