"""Label and field selectors, parsed once per request and matched per object.

Semantics follow kube-apiserver: ``!=`` and ``notin`` also match objects that lack the key;
``!key`` matches objects without it; ``gt``/``lt`` compare integers. Field selectors support
``metadata.name`` and ``metadata.namespace`` for every type plus a few per-kind fields, and an
unknown field is a 400, as on the real server. Parse errors raise :class:`SelectorError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FieldSelector",
    "LabelSelector",
    "SelectorError",
    "parse_field_selector",
    "parse_label_selector",
]

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_KEY_RE = re.compile(rf"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?{_NAME}$")
_VALUE_RE = re.compile(rf"^({_NAME})?$")
_TOKEN_RE = re.compile(r"\s*(\(|\)|,|!=|==|=|!|<|>|[^\s(),!=<>]+)")


class SelectorError(ValueError):
    """A selector string that does not parse; the message is the server's error text."""


@dataclass(frozen=True, slots=True)
class _Requirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, gt, lt
    values: frozenset[str]

    def matches(self, labels: dict[str, Any]) -> bool:
        op = self.op
        present = self.key in labels
        if op == "exists":
            return present
        if op == "!exists":
            return not present
        if op in ("=", "in"):
            return present and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return not present or labels[self.key] not in self.values
        if not present:
            return False
        try:
            have = int(labels[self.key])
        except (TypeError, ValueError):
            return False
        bound = int(next(iter(self.values)))
        return have > bound if op == "gt" else have < bound


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A conjunction of label requirements; the empty selector matches everything."""

    requirements: tuple[_Requirement, ...]

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, obj: dict[str, Any]) -> bool:
        if not self.requirements:
            return True
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r.matches(labels) for r in self.requirements)


def _check_key(key: str) -> None:
    if not _KEY_RE.match(key) or len(key) > 317:
        raise SelectorError(
            f'unable to parse requirement: key: Invalid value: "{key}": name part must consist of '
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _VALUE_RE.match(value):
        raise SelectorError(
            f'unable to parse requirement: values[0][value]: Invalid value: "{value}": a valid label must be '
            "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end "
            "with an alphanumeric character"
        )


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``labelSelector`` syntax (``a=b,c!=d,e in (f,g),!h,i``)."""
    if not text or not text.strip():
        return LabelSelector(())
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            if text[pos:].strip() == "":
                break
            raise SelectorError(f"unable to parse requirement: unexpected text {text[pos:]!r}")
        tokens.append(m.group(1))
        pos = m.end()
    reqs: list[_Requirement] = []
    i = 0

    def peek() -> str | None:
        return tokens[i] if i < len(tokens) else None

    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            i += 1
            key = peek()
            if key is None or key in ("(", ")", ",", "=", "==", "!=", "!"):
                raise SelectorError("unable to parse requirement: found '!', expected: identifier")
            _check_key(key)
            reqs.append(_Requirement(key, "!exists", frozenset()))
            i += 1
        else:
            key = tok
            if key in ("(", ")", ",", "=", "==", "!=", "<", ">"):
                raise SelectorError(f"unable to parse requirement: found '{key}', expected: identifier")
            _check_key(key)
            i += 1
            op = peek()
            if op is None or op == ",":
                reqs.append(_Requirement(key, "exists", frozenset()))
            elif op in ("=", "==", "!="):
                i += 1
                value = peek()
                if value is None or value == ",":
                    value = ""
                else:
                    if value in ("(", ")", "=", "==", "!=", "!"):
                        raise SelectorError(
                            f"unable to parse requirement: found '{value}', expected: identifier"
                        )
                    i += 1
                _check_value(value)
                reqs.append(_Requirement(key, "!=" if op == "!=" else "=", frozenset((value,))))
            elif op in ("in", "notin"):
                i += 1
                if peek() != "(":
                    raise SelectorError(f"unable to parse requirement: found '{peek()}', expected: '('")
                i += 1
                values: list[str] = []
                while True:
                    t = peek()
                    if t is None:
                        raise SelectorError("unable to parse requirement: found '', expected: ')'")
                    i += 1
                    if t == ")":
                        break
                    if t == ",":
                        continue
                    _check_value(t)
                    values.append(t)
                if not values:
                    values.append("")
                reqs.append(_Requirement(key, op, frozenset(values)))
            elif op in ("<", ">"):
                i += 1
                value = peek()
                if value is None or not re.fullmatch(r"-?\d+", value):
                    raise SelectorError(
                        "unable to parse requirement: for 'Gt', 'Lt' operators, "
                        f"the value must be an integer: {value}"
                    )
                i += 1
                reqs.append(_Requirement(key, "gt" if op == ">" else "lt", frozenset((value,))))
            else:
                raise SelectorError(
                    f"unable to parse requirement: found '{op}', expected: in, notin, =, ==, !=, gt, lt"
                )
        t = peek()
        if t is None:
            break
        if t != ",":
            raise SelectorError(f"unable to parse requirement: found '{t}', expected: ','")
        i += 1
        if peek() is None:
            raise SelectorError("unable to parse requirement: found '', expected: identifier")
    return LabelSelector(tuple(reqs))


# Field selectors ---------------------------------------------------------------------------

_KIND_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    ("", "events"): (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
    ("", "nodes"): ("spec.unschedulable",),
    ("events.k8s.io", "events"): (
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "reason",
        "reportingController",
        "type",
    ),
}


def _field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    if path == "source" and isinstance(cur, dict):
        return str(cur.get("component") or "")
    return str(cur)


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of ``field=value`` / ``field!=value`` terms."""

    terms: tuple[tuple[str, bool, str], ...]  # (field, equal, value)

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, path) == value) == equal for path, equal, value in self.terms)

    def name_equals(self) -> str | None:
        """The name when the selector pins ``metadata.name=X`` (lets a watch skip other objects)."""
        for path, equal, value in self.terms:
            if path == "metadata.name" and equal:
                return value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_field_selector(
    text: str | None, storage_key: tuple[str, str], extra_fields: tuple[str, ...] = ()
) -> FieldSelector:
    """Parse ``fieldSelector`` for the resource stored under ``storage_key`` (``(group, plural)``)."""
    if not text or not text.strip():
        return FieldSelector(())
    kind_fields = _KIND_FIELDS.get(storage_key, ()) + extra_fields

    def allowed(f: str) -> bool:
        return f in ("metadata.name", "metadata.namespace") or f in kind_fields

    terms: list[tuple[str, bool, str]] = []
    for raw in _split_unescaped(text, ","):
        term = raw.strip()
        if not term:
            continue
        m = re.match(r"^([^=!]+?)\s*(==|!=|=)\s*(.*)$", term)
        if m is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = m.group(1).strip(), m.group(2), m.group(3).strip()
        if not allowed(field):
            raise SelectorError(f"field label not supported: {field}")
        terms.append((field, op != "!=", value))
    return FieldSelector(tuple(terms))
