"""``meta.k8s.io/v1`` Table rendering (``kubectl get`` asks for it).

Built-in kinds get Name and Age columns only. A custom resource gets what kube-apiserver serves for
it: Name, then its version's ``additionalPrinterColumns`` (cells computed by :mod:`printer`), or
Age alone when the CRD defines none. Each row carries the object's metadata as
PartialObjectMetadata (the server's default ``includeObject=Metadata``).
"""

from __future__ import annotations

import datetime
from typing import Any

import orjson

from kube_runtime.testing.apiserver.printer import CREATION_TIMESTAMP_DOC, cell
from kube_runtime.testing.apiserver.resources import ResourceType
from kube_runtime.testing.apiserver.storage import Record

__all__ = ["table_bytes"]

_COLUMNS = [
    {"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0},
    {"name": "Age", "type": "string", "format": "", "description": "Time since creation", "priority": 0},
]
_NAME_DOC = (
    "Name must be unique within a namespace. Is required when creating resources, although some resources "
    "may allow a client to request the generation of an appropriate name automatically. Name is primarily "
    "intended for creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
)
_CUSTOM_NAME = {"name": "Name", "type": "string", "format": "name", "description": _NAME_DOC, "priority": 0}
_DEFAULT_CUSTOM = (
    {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": CREATION_TIMESTAMP_DOC,
    },
)


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


def _metadata_row(r: Record, cells: list[Any]) -> dict[str, Any]:
    return {
        "cells": cells,
        "object": {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": r.obj.get("metadata") or {},
        },
    }


def _custom_columns(rtype: ResourceType) -> tuple[list[dict[str, Any]], tuple[dict[str, Any], ...]]:
    columns = rtype.printer_columns or _DEFAULT_CUSTOM
    definitions = [_CUSTOM_NAME] + [
        {
            "name": c.get("name", ""),
            "type": c.get("type", ""),
            "format": c.get("format", ""),
            "description": c.get("description")
            or f"Custom resource definition column (in JSONPath format): {c.get('jsonPath', '')}",
            "priority": c.get("priority", 0),
        }
        for c in columns
    ]
    return definitions, columns


def table_bytes(
    records: list[Record],
    list_meta: dict[str, Any] | None,
    rtype: ResourceType | None = None,
    *,
    columns: bool = True,
) -> bytes:
    """A Table of ``records`` of type ``rtype`` (custom resources get their printer columns).

    ``list_meta`` is the list's metadata; None for a single object, whose Table then carries the
    object's resourceVersion for a custom resource (as kube-apiserver's does). ``columns=False``
    leaves ``columnDefinitions`` null, as kube-apiserver does on every watch event but the first.
    """
    if rtype is not None and rtype.custom:
        definitions, printed = _custom_columns(rtype)
        rows = [_metadata_row(r, [r.key[1], *(cell(r.obj, c) for c in printed)]) for r in records]
        if list_meta is None:
            rv = (records[0].obj.get("metadata") or {}).get("resourceVersion") if records else None
            list_meta = {"resourceVersion": rv} if rv else {}
    else:
        definitions = _COLUMNS
        rows = [
            _metadata_row(r, [r.key[1], _age((r.obj.get("metadata") or {}).get("creationTimestamp"))])
            for r in records
        ]
    return orjson.dumps(
        {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": list_meta or {},
            "columnDefinitions": definitions if columns else None,
            "rows": rows,
        }
    )
