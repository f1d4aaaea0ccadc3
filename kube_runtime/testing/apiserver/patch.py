"""Patch formats: JSON merge (RFC 7386), JSON patch (RFC 6902) and strategic merge.

All functions take ownership of their ``target`` argument (pass a copy) and return the result.
Failures raise :class:`PatchError` (a malformed patch, 400) or :class:`PatchFailed` (a well-formed
patch that cannot be applied, such as a failed ``test`` op, 422), like the real server.

Strategic merge knows the merge keys of the built-in fields a controller usually patches
(containers, env, ports, volumes, conditions, ownerReferences, finalizers, ...) and honours the
``$patch`` (``replace``/``delete``/``merge``) and ``$deleteFromPrimitiveList`` directives;
``$setElementOrder`` and ``$retainKeys`` are accepted and ignored.

Order of a merged list (merge key or merged primitives), as on kube-apiserver: the items the patch
names come in the patch's order; each item only the live list has keeps its order among those and
goes just before the first patch item (after the one placed before it) that the live list had
after it, or at the end. So new items lead when the patch names no live item after them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

__all__ = ["PatchError", "PatchFailed", "json_merge_patch", "json_patch", "strategic_merge_patch"]


class PatchError(ValueError):
    """The patch document itself is malformed (400)."""


class PatchFailed(ValueError):
    """The patch is well-formed but cannot be applied to this object (422)."""


def json_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = json_merge_patch(target.get(key), value)
    return target


# JSON patch --------------------------------------------------------------------------------


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f'JSON pointer must start with "/": {path!r}')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if token == "-" and for_add:
        return len(container)
    if not token.isdigit() or (token.startswith("0") and token != "0"):
        raise PatchFailed(f"invalid array index: {token!r}")
    idx = int(token)
    limit = len(container) if for_add else len(container) - 1
    if idx > limit:
        raise PatchFailed(f"array index out of bounds: {idx}")
    return idx


def _parent(doc: Any, tokens: list[str], op: str) -> Any:
    cur = doc
    for token in tokens[:-1]:
        if isinstance(cur, dict):
            if token not in cur:
                raise PatchFailed(
                    f'{op} operation does not apply: doc is missing path: "/{"/".join(tokens)}"'
                )
            cur = cur[token]
        elif isinstance(cur, list):
            cur = cur[_index(cur, token, for_add=False)]
        else:
            raise PatchFailed(f'{op} operation does not apply: doc is missing path: "/{"/".join(tokens)}"')
    return cur


def _get(doc: Any, tokens: list[str], op: str) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchFailed(f'{op} operation does not apply: doc is missing key: "/{"/".join(tokens)}"')
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_add=False)]
    raise PatchFailed(f'{op} operation does not apply: doc is missing path: "/{"/".join(tokens)}"')


def _test_value(doc: Any, tokens: list[str]) -> Any:
    """The value a ``test`` op compares: a missing object key reads as null, as in
    kube-apiserver's JSON patch library (evanphx/json-patch v4), so ``test /metadata/finalizers ==
    null`` holds on an object without finalizers (kube-rs's finalizer add relies on this). A missing
    parent still fails the op."""
    if tokens:
        parent = _parent(doc, tokens, "test")
        if isinstance(parent, dict):
            return parent.get(tokens[-1])
    return _get(doc, tokens, "test")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens, "add")
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_add=True), value)
    else:
        raise PatchFailed(f'add operation does not apply: doc is missing path: "/{"/".join(tokens)}"')
    return doc


def _remove(doc: Any, tokens: list[str], op: str = "remove") -> tuple[Any, Any]:
    if not tokens:
        raise PatchFailed(f"{op} operation cannot remove the whole document")
    parent = _parent(doc, tokens, op)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchFailed(f'{op} operation does not apply: doc is missing key: "/{"/".join(tokens)}"')
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, for_add=False))
    raise PatchFailed(f'{op} operation does not apply: doc is missing path: "/{"/".join(tokens)}"')


def json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 operation list; a failed ``test`` raises :class:`PatchFailed`."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    for op in ops:
        if not isinstance(op, dict) or not isinstance(op.get("op"), str):
            raise PatchError(f"invalid json patch operation: {op!r}")
        kind = op["op"]
        tokens = _pointer(op.get("path"))
        if kind in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"missing value for {kind} operation")
        if kind == "add":
            doc = _add(doc, tokens, copy.deepcopy(op["value"]))
        elif kind == "remove":
            doc, _ = _remove(doc, tokens)
        elif kind == "replace":
            _get(doc, tokens, "replace")
            if tokens:
                doc, _ = _remove(doc, tokens, "replace")
            doc = _add(doc, tokens, copy.deepcopy(op["value"]))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from"))
            if kind == "move":
                doc, value = _remove(doc, source, "move")
            else:
                value = copy.deepcopy(_get(doc, source, "copy"))
            doc = _add(doc, tokens, value)
        elif kind == "test":
            have = _test_value(doc, tokens)
            if have != op["value"]:
                raise PatchFailed(f"testing value /{'/'.join(tokens)} failed: test failed")
        else:
            raise PatchError(f"unexpected json patch operation: {kind!r}")
    return doc


# Strategic merge ---------------------------------------------------------------------------

_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "conditions": "type",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "readinessGates": "conditionType",
    "secrets": "name",
}
_MERGED_PRIMITIVE_LISTS = frozenset({"finalizers"})


def _merge_key(field: str, path: tuple[str, ...]) -> str | None:
    if field == "ports":
        return "containerPort" if any(p in ("containers", "initContainers") for p in path) else "port"
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            current = target.get(field)
            if isinstance(current, list) and isinstance(value, list):
                target[field] = [v for v in current if v not in value]
            continue
        if value is None:
            target.pop(key, None)
        elif isinstance(value, list):
            target[key] = _merge_list(target.get(key), value, key, (*path, key))
        else:
            merged = strategic_merge_patch(target.get(key), value, (*path, key))
            if merged is None:
                target.pop(key, None)
            else:
                target[key] = merged
    return target


def _merge_list(current: Any, patch: list[Any], field: str, path: tuple[str, ...]) -> list[Any]:
    if not isinstance(current, list):
        current = []
    if field in _MERGED_PRIMITIVE_LISTS:
        named = [copy.deepcopy(v) for i, v in enumerate(patch) if v not in patch[:i]]
        prim_rank = {_hashable(v): i for i, v in reversed(list(enumerate(current)))}
        return _interleave(
            named, [v for v in current if v not in named], lambda v: prim_rank.get(_hashable(v))
        )
    key = _merge_key(field, path)
    if key is None or not all(isinstance(v, dict) for v in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and v.get("$patch"))]
    if any(isinstance(v, dict) and v.get("$patch") == "replace" and key not in v for v in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and "$patch" in v)]
    out = [copy.deepcopy(v) for v in current]
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item!r} does not contain declared merge key: {key}")
        pos = next((i for i, v in enumerate(out) if isinstance(v, dict) and v.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if pos is not None:
                out.pop(pos)
            continue
        if pos is None:
            out.append(strategic_merge_patch({}, item, path))
        else:
            out[pos] = strategic_merge_patch(out[pos], item, path)
    keys = [item[key] for item in patch if item.get("$patch") != "delete"]
    named = [v for v in out if isinstance(v, dict) and v.get(key) in keys]
    named.sort(key=lambda v: keys.index(v.get(key)))
    live = [v for v in out if not (isinstance(v, dict) and v.get(key) in keys)]
    ranks = [v.get(key) if isinstance(v, dict) else None for v in current]

    def rank(v: Any) -> int | None:
        found = v.get(key) if isinstance(v, dict) else None
        return ranks.index(found) if found is not None and found in ranks else None

    return _interleave(named, live, rank)


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else repr(value)


def _interleave(named: list[Any], live: list[Any], rank: Callable[[Any], int | None]) -> list[Any]:
    """``named`` (the patch's items, in its order) with ``live`` (the rest, in live order) placed
    among them: each before the first later ``named`` item that ``rank`` (the live position) puts
    after it, else at the end."""
    out = list(named)
    at = 0
    for item in live:
        mine = rank(item)
        while at < len(out):
            other = rank(out[at])
            if mine is not None and other is not None and mine < other:
                break
            at += 1
        out.insert(at, item)
        at += 1
    return out
