"""Field ownership (``metadata.managedFields``) and server-side apply.

Field sets are sets of paths; a path is a tuple of fieldsV1 keys (``f:spec``, ``k:{"name":"c"}``).
Lists whose items have a known merge key are "list maps" (items addressed by key); other lists
are atomic (owned as a whole). Custom resources have no schema here, so their lists are atomic.

:func:`server_side_apply` merges an applied configuration, detects conflicts with other managers
(409 unless ``force``), removes fields the manager stopped applying when nobody else owns them,
and records the manager's Apply entry. :func:`record_update` attributes the fields a non-apply
write changed to its manager (an ``Update`` entry), taking them away from other managers.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

import orjson

from kube_runtime.testing.apiserver.patch import _merge_key

__all__ = ["ApplyConflict", "record_update", "server_side_apply"]

Path = tuple[str, ...]
_IGNORED_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
        "generateName",
    }
)


class ApplyConflict(Exception):
    """Applied fields owned by other managers with different values: ``(manager, field)`` pairs."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        super().__init__(f"{len(conflicts)} conflicts")
        self.conflicts = conflicts


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _key_token(key: str, value: Any) -> str:
    return "k:" + orjson.dumps({key: value}).decode()


def _leaves(value: Any, path: Path, out: dict[Path, Any], builtin: bool, field_path: tuple[str, ...]) -> None:
    if isinstance(value, dict):
        if not value and path:
            out[path] = value
        for k, v in value.items():
            if not path and k in ("apiVersion", "kind"):
                continue
            if path == ("f:metadata",) and k in _IGNORED_META:
                continue
            _leaves(v, (*path, f"f:{k}"), out, builtin, (*field_path, k))
        return
    if isinstance(value, list) and builtin and field_path:
        mk = _merge_key(field_path[-1], field_path)
        if mk is not None and value and all(isinstance(v, dict) and mk in v for v in value):
            for item in value:
                item_path = (*path, _key_token(mk, item[mk]))
                out[(*item_path, ".")] = None
                _leaves(item, item_path, out, builtin, field_path)
            return
        if field_path[-1] == "finalizers" and all(isinstance(v, str) for v in value):
            for v in value:
                out[(*path, "v:" + orjson.dumps(v).decode())] = v
            return
    out[path] = value


def field_values(obj: dict[str, Any], *, builtin: bool, skip_status: bool = False) -> dict[Path, Any]:
    """Leaf paths of ``obj`` (what a manager can own) with their values."""
    out: dict[Path, Any] = {}
    body = {k: v for k, v in obj.items() if not (skip_status and k == "status")}
    _leaves(body, (), out, builtin, ())
    out.pop((), None)
    return out


def to_fieldsv1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(part, {})
    return root


def from_fieldsv1(doc: Any, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if not isinstance(doc, dict) or not doc:
        if prefix:
            out.add(prefix)
        return out
    for k, v in doc.items():
        out |= from_fieldsv1(v, (*prefix, k))
    return out


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    mf = (obj.get("metadata") or {}).get("managedFields")
    return [e for e in mf if isinstance(e, dict)] if isinstance(mf, list) else []


def _owned(entry: dict[str, Any]) -> set[Path]:
    return from_fieldsv1(entry.get("fieldsV1"))


def _covers(owned: set[Path], path: Path) -> bool:
    """A manager owns ``path`` if it owns it or an atomic ancestor of it."""
    return any(path[:i] in owned for i in range(1, len(path) + 1))


def _write_entries(obj: dict[str, Any], entries: list[dict[str, Any]]) -> None:
    kept = [e for e in entries if e.get("fieldsV1")]
    meta = obj.setdefault("metadata", {})
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def _entry(
    manager: str, operation: str, api_version: str, paths: set[Path], sub: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": _now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fieldsv1(paths),
    }
    if sub:
        out["subresource"] = sub
    return out


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    api_version: str,
    *,
    builtin: bool,
    subresource: str | None = None,
) -> None:
    """Attribute what changed between ``old`` and ``new`` to ``manager`` (mutates ``new``)."""
    before = field_values(old, builtin=builtin) if old is not None else {}
    after = field_values(new, builtin=builtin)
    changed = {p for p, v in after.items() if p not in before or before[p] != v}
    removed = {p for p in before if p not in after}
    entries = _entries(new) if old is None else _entries(old)
    if not changed and not removed and old is not None:
        _write_entries(new, [copy.deepcopy(e) for e in entries])
        return
    out: list[dict[str, Any]] = []
    mine: set[Path] = set()
    for e in entries:
        owned = _owned(e)
        if (
            e.get("manager") == manager
            and e.get("operation") == "Update"
            and (e.get("subresource") or None) == subresource
        ):
            mine = owned
            continue
        owned = {p for p in owned if p not in changed and p not in removed}
        if owned:
            out.append({**e, "fieldsV1": to_fieldsv1(owned)})
    mine = {p for p in (mine | changed) if p in after}
    if mine:
        out.append(_entry(manager, "Update", api_version, mine, subresource))
    _write_entries(new, out)


def _apply_merge(live: Any, applied: Any, builtin: bool, field_path: tuple[str, ...]) -> Any:
    if not isinstance(applied, dict):
        if isinstance(applied, list) and builtin and field_path and isinstance(live, list):
            mk = _merge_key(field_path[-1], field_path)
            if mk is not None and all(isinstance(v, dict) and mk in v for v in applied):
                out = [copy.deepcopy(v) for v in live]
                for item in applied:
                    pos = next(
                        (i for i, v in enumerate(out) if isinstance(v, dict) and v.get(mk) == item[mk]), None
                    )
                    if pos is None:
                        out.append(copy.deepcopy(item))
                    else:
                        out[pos] = _apply_merge(out[pos], item, builtin, field_path)
                return out
            if field_path[-1] == "finalizers":
                return list(live) + [v for v in applied if v not in live]
        return copy.deepcopy(applied)
    base = dict(live) if isinstance(live, dict) else {}
    for k, v in applied.items():
        if v is None:
            continue
        base[k] = _apply_merge(base.get(k), v, builtin, (*field_path, k))
    return base


def _remove_path(obj: Any, path: Path) -> None:
    """Delete the field at ``path`` (a leaf or a keyed list item) if present."""
    if not path:
        return
    if path[-1] == ".":
        path = path[:-1]
    node = obj
    for part in path[:-1]:
        node = _step(node, part)
        if node is None:
            return
    last = path[-1]
    if isinstance(node, dict) and last.startswith("f:"):
        node.pop(last[2:], None)
    elif isinstance(node, list):
        if last.startswith("k:"):
            want = orjson.loads(last[2:])
            node[:] = [
                v for v in node if not (isinstance(v, dict) and all(v.get(k) == x for k, x in want.items()))
            ]
        elif last.startswith("v:"):
            want_v = orjson.loads(last[2:])
            node[:] = [v for v in node if v != want_v]


def _step(node: Any, part: str) -> Any:
    if isinstance(node, dict) and part.startswith("f:"):
        return node.get(part[2:])
    if isinstance(node, list) and part.startswith("k:"):
        want = orjson.loads(part[2:])
        for v in node:
            if isinstance(v, dict) and all(v.get(k) == x for k, x in want.items()):
                return v
    return None


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    api_version: str,
    *,
    force: bool,
    builtin: bool,
    subresource: str | None = None,
) -> dict[str, Any]:
    """The object after ``manager`` applies ``applied``; raises :class:`ApplyConflict`."""
    base = copy.deepcopy(live) if live is not None else {}
    entries = _entries(base)
    applied_fields = field_values(applied, builtin=builtin)
    live_fields = field_values(base, builtin=builtin) if live is not None else {}
    conflicts: list[tuple[str, str]] = []
    stripped: list[dict[str, Any]] = []
    previous: set[Path] = set()
    previous_time: Any = None
    for e in entries:
        owned = _owned(e)
        is_me = (
            e.get("manager") == manager
            and e.get("operation") == "Apply"
            and ((e.get("subresource") or None) == subresource)
        )
        if is_me:
            previous, previous_time = owned, e.get("time")
            continue
        taken: set[Path] = set()
        for p, value in applied_fields.items():
            if p[-1] == ".":
                continue
            if _covers(owned, p) and (p not in live_fields or live_fields[p] != value):
                if force:
                    taken.add(p)
                else:
                    conflicts.append((str(e.get("manager", "")), _describe(p)))
            elif p in owned and force:
                pass
        kept = owned - taken
        if kept:
            stripped.append({**e, "fieldsV1": to_fieldsv1(kept)})
    if conflicts:
        raise ApplyConflict(conflicts)
    others: set[Path] = set()
    for e in stripped:
        others |= _owned(e)
    result: dict[str, Any] = _apply_merge(base, applied, builtin, ())
    for p in sorted(previous - set(applied_fields), key=len, reverse=True):
        if not _covers(others, p):
            _remove_path(result, p)
    mine = set(applied_fields)
    entry = _entry(manager, "Apply", api_version, mine, subresource)
    meta = result.setdefault("metadata", {})
    meta.pop("managedFields", None)
    if previous_time and _unchanged(result, live):
        # As in kube-apiserver, the time moves only with the object's values: an apply that
        # changes no value keeps it (a repeated apply stays a no-op, with no new resourceVersion
        # and no watch event, however much later it comes; a claim of fields already holding the
        # applied values is written, with the old time).
        entry["time"] = previous_time
    stripped.append(entry)
    _write_entries(result, stripped)
    return result


def _unchanged(obj: dict[str, Any], live: dict[str, Any] | None) -> bool:
    """Whether ``obj`` equals ``live`` apart from ``metadata.managedFields``."""
    if live is None:
        return False
    meta = {k: v for k, v in (live.get("metadata") or {}).items() if k != "managedFields"}
    return {**live, "metadata": meta} == obj


def _describe(path: Path) -> str:
    parts: list[str] = []
    for p in path:
        if p.startswith("f:"):
            parts.append("." + p[2:])
        elif p.startswith("k:"):
            parts.append("[" + p[2:] + "]")
        elif p.startswith("v:"):
            parts.append("[=" + p[2:] + "]")
    return "".join(parts)
