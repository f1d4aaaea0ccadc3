"""Find the series selectors (metric name plus matched label names) in a PromQL expression.

This is a tokenizer, not a parser: syntax is checked by promtool, which runs Prometheus's own parser.
It only has to tell metric names apart from function names, keywords, label names and durations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Selector", "selectors"]

_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>\d+(?:ms|s|m|h|d|w|y)(?:\d+(?:ms|s|m|h|d|w|y))*\b)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<space>\s+)
  | (?P<punct>=~|!~|!=|==|<=|>=|[{}(),=<>+\-*/%^@])
    """,
    re.VERBOSE,
)
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "inf", "nan", "start", "end", "atan2"}
    | {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"}
    | {"bottomk", "topk", "quantile"}
    | _LABEL_LIST_KEYWORDS
)


@dataclass(frozen=True)
class Selector:
    name: str
    labels: frozenset[str]


def _tokens(expr: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ValueError(f"cannot tokenize PromQL at {expr[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append((kind, match.group()))
        pos = match.end()
    return out


def _matcher_labels(tokens: list[tuple[str, str]], start: int) -> tuple[frozenset[str], int]:
    """Label names inside `{...}` starting at tokens[start] == '{'; returns them and the index after '}'."""
    labels: set[str] = set()
    i = start + 1
    while tokens[i][1] != "}":
        kind, text = tokens[i]
        if kind == "ident":
            labels.add(text)
        i += 1
    return frozenset(labels), i + 1


def selectors(expr: str) -> list[Selector]:
    """The selectors of `expr`, in order. Raises ValueError on text that is not PromQL-shaped."""
    tokens = _tokens(expr)
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "punct" and text == "{":
            # A selector without a metric name, like {job="x"}.
            labels, i = _matcher_labels(tokens, i)
            found.append(Selector("", labels))
            continue
        if kind != "ident":
            i += 1
            continue
        if text in _LABEL_LIST_KEYWORDS:
            # Skip the label list that follows, e.g. by (namespace, job).
            if following == "(":
                i += 2
                while tokens[i][1] != ")":
                    i += 1
            i += 1
            continue
        if text in _KEYWORDS or following == "(":
            i += 1
            continue
        if following == "{":
            labels, i = _matcher_labels(tokens, i + 1)
            found.append(Selector(text, labels))
            continue
        found.append(Selector(text, frozenset()))
        i += 1
    return found
