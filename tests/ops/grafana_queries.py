"""Pull every PromQL expression out of a Grafana dashboard and make it concrete.

Grafana variables ($job, ${namespace}, [[controller]], $__rate_interval, ...) are not PromQL, so each one
is replaced by a value a real query would carry before the expression goes to promtool.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["GRAFANA_VARIABLE_VALUES", "DashboardQuery", "concrete", "dashboard_queries", "iter_panels"]

# Values Grafana would substitute; regex-valued variables get the "All" value (.*).
GRAFANA_VARIABLE_VALUES: dict[str, str] = {
    "__rate_interval": "1m",
    "__interval": "30s",
    "__range": "3h",
    "job": "kube-runtime",
    "namespace": ".*",
    "controller": ".*",
    "instance": ".*",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.*),\s*)?(?P<label>\w+)\s*\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class DashboardQuery:
    where: str  # "panel 'Title' target B" or "variable namespace"
    expr: str  # as written in the dashboard, variables included


def iter_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """All panels, including those nested in collapsed rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(dashboard: dict[str, Any]) -> list[DashboardQuery]:
    queries: list[DashboardQuery] = []
    for panel in iter_panels(dashboard):
        for target in panel.get("targets", []):
            if "expr" in target:
                queries.append(
                    DashboardQuery(f"panel {panel['title']!r} target {target['refId']}", target["expr"])
                )
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text)
        if match is None:
            queries.append(DashboardQuery(f"variable {variable['name']}", text))
        elif match.group("selector"):
            queries.append(
                DashboardQuery(f"variable {variable['name']} (label_values)", match.group("selector"))
            )
    return queries


def concrete(expr: str) -> str:
    """`expr` with every Grafana variable replaced; raises KeyError naming an unknown variable."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in GRAFANA_VARIABLE_VALUES:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return GRAFANA_VARIABLE_VALUES[name]

    return _VARIABLE.sub(value, expr)
