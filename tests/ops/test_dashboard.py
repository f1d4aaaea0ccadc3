"""The Grafana dashboard: every PromQL expression parses (promtool) and selects documented metrics only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.documented_metrics import allowed_series_names
from tests.ops.grafana_queries import concrete, dashboard_queries, iter_panels
from tests.ops.promql_selectors import selectors
from tests.ops.promtool import check_expressions

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "monitoring" / "dashboards" / "kube-runtime.json"
RULES = REPO / "monitoring" / "rules" / "kube-runtime.rules.yaml"


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _titles() -> set[str]:
    return {panel["title"] for panel in iter_panels(_dashboard())}


def test_dashboard_has_queries_for_every_panel() -> None:
    queries = dashboard_queries(_dashboard())
    assert len(queries) >= 40
    for panel in iter_panels(_dashboard()):
        if panel["type"] != "row":
            assert panel.get("targets"), f"panel {panel['title']!r} has no query"
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}


def test_every_expression_parses_with_promtool() -> None:
    expressions = {query.where: concrete(query.expr) for query in dashboard_queries(_dashboard())}
    for where, expr in expressions.items():
        assert "$" not in expr, f"{where}: unsubstituted variable in {expr!r}"
        assert "[[" not in expr, f"{where}: unsubstituted variable in {expr!r}"
    result = check_expressions(expressions)
    assert result.ok, result.output
    assert f"SUCCESS: {len(expressions)} rules found" in result.output


def test_the_expression_check_rejects_a_syntax_error() -> None:
    expressions = {query.where: concrete(query.expr) for query in dashboard_queries(_dashboard())}
    where = next(iter(expressions))
    expressions[where] = expressions[where] + ")"
    result = check_expressions(expressions)
    assert not result.ok
    assert "parse error" in result.output


def test_unknown_grafana_variables_are_reported() -> None:
    with pytest.raises(KeyError, match=r"\$cluster"):
        concrete('up{cluster="$cluster"}')
    assert concrete('rate(x[$__rate_interval]) and y{a=~"${namespace}", b="[[job]]"}') == (
        'rate(x[1m]) and y{a=~".*", b="kube-runtime"}'
    )


def test_expressions_select_only_documented_metrics_and_labels() -> None:
    allowed = allowed_series_names()
    recorded = {
        rule["record"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    used: set[str] = set()
    for query in dashboard_queries(_dashboard()):
        for selector in selectors(concrete(query.expr)):
            assert selector.name, f"{query.where}: a selector without a metric name"
            assert selector.name in allowed or selector.name in recorded, (
                f"{query.where}: {selector.name} is not a documented metric"
            )
            unknown = selector.labels - allowed.get(selector.name, frozenset())
            assert not unknown, f"{query.where}: {selector.name} has no label(s) {sorted(unknown)}"
            used.add(selector.name)
    # The dashboard covers every runtime metric family the docs promise.
    families = {name.removesuffix("_bucket") for name in used}
    missing = {
        name
        for name in allowed
        if name.startswith(
            ("controller_runtime", "workqueue", "kube_runtime", "leader_election", "rest_client")
        )
    }
    missing = {name for name in missing if not name.endswith(("_sum", "_count"))}
    missing = {name.removesuffix("_bucket") for name in missing} - families
    assert not missing, f"no panel shows {sorted(missing)}"


def test_the_issue_panels_are_present() -> None:
    titles = _titles()
    for wanted in (
        "Replicas up",
        "Leader",
        "Reconcile rate by result",
        "Reconcile error ratio",
        "Reconcile latency percentiles",
        "Queue depth",
        "Watch events by type",
        "Watch restarts and re-lists",
        "Watch staleness",
        "Memory",
        "CPU",
        "Event-loop lag",
    ):
        assert wanted in titles


def test_panels_do_not_overlap_and_fit_the_grid() -> None:
    cells: dict[tuple[int, int], str] = {}
    ids = set()
    for panel in iter_panels(_dashboard()):
        assert panel["id"] not in ids
        ids.add(panel["id"])
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_template_variables_default_to_the_kube_runtime_job_and_all() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["job"]["current"]["value"] == "kube-runtime"
    for name in ("namespace", "controller", "instance"):
        assert variables[name]["includeAll"]
        assert variables[name]["allValue"] == ".*"
