"""Cells of a CRD's ``additionalPrinterColumns``, as kube-apiserver computes them for Table output.

A column is a JSONPath into the object (client-go's JSONPath, as ``kubectl get`` column definitions
write it) plus a type. The cell is the first value the path finds, or ``null`` when it finds none:

* ``string``: the value printed as client-go prints a JSONPath result (a string as it is, a number
  or boolean as Go prints it, an object or list as compact JSON);
* ``integer`` / ``number`` / ``boolean``: the value when it has that JSON type (numbers convert,
  a float is truncated to an integer), else ``null``;
* ``date``: the age of an RFC 3339 timestamp in ``kubectl``'s words (``5s``, ``3m2s``, ``4d``), or
  ``<invalid>`` for a string that is not one.

The JSONPath subset: ``.field`` and ``['field']`` steps, ``[n]`` (negative counts from the end),
``[*]`` and ``.*``, ``..field`` (recursive descent) and filters ``[?(@.a.b == "x")]`` with ``==``,
``!=``, ``<``, ``>``, ``<=``, ``>=`` against a string or number literal, or ``[?(@.a)]`` (present).
Guarantees: a malformed path or value never raises; the cell is then ``null`` (the real server
rejects such a CRD when it is created). Pitfall: unions (``[a,b]``) and slices (``[1:3]``) are not
supported and give ``null``.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from typing import Any

import orjson

from kube_runtime.testing.apiserver.crvalidate import go_float

__all__ = ["CREATION_TIMESTAMP_DOC", "cell", "find_first", "human_duration"]

CREATION_TIMESTAMP_DOC = (
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is "
    "not guaranteed to be set in happens-before order across separate operations. Clients may not set "
    "this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. "
    "Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)

_MISSING: Any = object()
_STEP = re.compile(
    r"""\.\.(?P<deep>[A-Za-z0-9_\-]+)
      | \.(?P<field>[A-Za-z0-9_\-]+|\*)
      | \[\s*'(?P<quoted>[^']*)'\s*\]
      | \[\s*"(?P<dquoted>[^"]*)"\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*(?P<all>\*)\s*\]
      | \[\?\(\s*@(?P<fpath>(?:\.[A-Za-z0-9_\-]+)+)\s*
            (?:(?P<op>==|!=|<=|>=|<|>)\s*(?P<lit>"[^"]*"|'[^']*'|-?\d+(?:\.\d+)?))?\s*\)\]""",
    re.VERBOSE,
)


def _parse(path: str) -> list[re.Match[str]] | None:
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[re.Match[str]] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            return None
        steps.append(m)
        pos = m.end()
    return steps


def _children(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return list(value)
    return []


def _descend(value: Any, key: str) -> Iterator[Any]:
    if isinstance(value, dict):
        if key in value:
            yield value[key]
        for child in value.values():
            yield from _descend(child, key)
    elif isinstance(value, list):
        for child in value:
            yield from _descend(child, key)


def _lookup(value: Any, dotted: str) -> Any:
    for key in dotted.strip(".").split("."):
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _compare(left: Any, op: str, literal: str) -> bool:
    right: Any = literal[1:-1] if literal[0] in "\"'" else float(literal)
    if isinstance(right, float):
        if isinstance(left, bool) or not isinstance(left, (int, float)):
            return False
    elif not isinstance(left, str):
        return op == "!="
    try:
        return bool(
            {
                "==": left == right,
                "!=": left != right,
                "<": left < right,
                ">": left > right,
                "<=": left <= right,
                ">=": left >= right,
            }[op]
        )
    except TypeError:
        return False


def _step(values: list[Any], m: re.Match[str]) -> list[Any]:
    out: list[Any] = []
    g = m.groupdict()
    for v in values:
        if g["deep"] is not None:
            out.extend(_descend(v, g["deep"]))
        elif g["field"] == "*" or g["all"] is not None:
            out.extend(_children(v))
        elif g["field"] is not None or g["quoted"] is not None or g["dquoted"] is not None:
            key = (
                g["field"]
                if g["field"] is not None
                else (g["quoted"] if g["quoted"] is not None else g["dquoted"])
            )
            if isinstance(v, dict) and key in v:
                out.append(v[key])
        elif g["index"] is not None:
            i = int(g["index"])
            if isinstance(v, list) and -len(v) <= i < len(v):
                out.append(v[i])
        elif g["fpath"] is not None:
            for item in _children(v):
                found = _lookup(item, g["fpath"])
                if found is _MISSING:
                    continue
                if g["op"] is None or _compare(found, g["op"], g["lit"]):
                    out.append(item)
    return out


def find_first(obj: Any, path: str) -> Any:
    """The first value ``path`` finds in ``obj``, or the module's missing marker (see :func:`cell`)."""
    steps = _parse(path)
    if steps is None:
        return _MISSING
    values = [obj]
    for m in steps:
        values = _step(values, m)
        if not values:
            return _MISSING
    return values[0]


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration``: how kubectl and kube-apiserver print an age."""
    secs = int(seconds)
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 120:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m{s}s" if s else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h{m}m" if m else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d{h}h" if h else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y{dy}d" if dy else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: Any) -> str:
    """The age of an RFC 3339 timestamp (``<invalid>`` for anything else)."""
    if not isinstance(timestamp, str):
        return "<invalid>"
    try:
        created = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<invalid>"
    if created.tzinfo is None:
        return "<invalid>"
    return human_duration((datetime.datetime.now(datetime.UTC) - created).total_seconds())


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    if value is None:
        return "<nil>"
    return str(value)


def cell(obj: dict[str, Any], column: dict[str, Any]) -> Any:
    """The Table cell of ``column`` (an additionalPrinterColumns entry) for ``obj``."""
    path = column.get("jsonPath")
    value = find_first(obj, path) if isinstance(path, str) else _MISSING
    if value is _MISSING:
        return None
    kind = column.get("type")
    if kind == "string":
        return _text(value)
    if value is None:
        return None
    if kind == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if kind == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind == "boolean" and isinstance(value, bool):
        return value
    if kind == "date" and isinstance(value, str):
        return age(value)
    return None
