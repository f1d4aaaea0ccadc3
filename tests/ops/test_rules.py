"""The Prometheus rules: promtool accepts them, their unit tests pass, and the unit tests have teeth."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.documented_metrics import CADVISOR_METRICS, allowed_series_names
from tests.ops.promql_selectors import selectors
from tests.ops.promtool import check_config, check_rules, test_rules

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring" / "rules" / "kube-runtime.rules.yaml"
UNIT_TESTS = sorted((REPO / "monitoring" / "tests").glob("*.yaml"))
NEVER = "vector(1) < 0"


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _recording_rules() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "record" in rule]


def _alert_cases() -> list[tuple[str, bool]]:
    """(alertname, expects it firing) for every alert_rule_test in the unit tests."""
    cases = []
    for path in UNIT_TESTS:
        for group in yaml.safe_load(path.read_text())["tests"]:
            for case in group.get("alert_rule_test", []):
                cases.append((case["alertname"], bool(case.get("exp_alerts"))))
    return cases


def _run_unit_tests_against(rules_text: str, tmp_path: Path) -> str:
    """Run every unit test file against `rules_text` instead of the real rules; returns promtool's output."""
    rules = tmp_path / "rules" / "kube-runtime.rules.yaml"
    rules.parent.mkdir()
    rules.write_text(rules_text)
    tests_dir = tmp_path / "tests"
    tests_dir.mkdir()
    for path in UNIT_TESTS:
        (tests_dir / path.name).write_text(path.read_text())
    result = test_rules(*sorted(tests_dir.glob("*.yaml")))
    assert not result.ok, f"unit tests still pass with the mutated rules:\n{result.output}"
    return result.output


def _replace_exprs(name_key: str, new_expr: str) -> str:
    """The rules file with the expression of every rule that has `name_key` replaced by `new_expr`."""
    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if name_key in rule:
                rule["expr"] = new_expr
    return yaml.safe_dump(document, sort_keys=False)


def test_promtool_check_rules_accepts_the_rules_file() -> None:
    result = check_rules(RULES)
    assert result.ok, result.output
    assert f"SUCCESS: {len(_rules())} rules found" in result.output


def test_local_prometheus_config_is_valid_and_loads_the_rules() -> None:
    result = check_config(REPO / "monitoring" / "prometheus.yml")
    assert result.ok, result.output
    assert f"SUCCESS: {len(_rules())} rules found" in result.output
    config = yaml.safe_load((REPO / "monitoring" / "prometheus.yml").read_text())
    assert [job["job_name"] for job in config["scrape_configs"]] == ["kube-runtime"]


def test_promtool_check_rules_rejects_a_broken_expression(tmp_path: Path) -> None:
    broken = tmp_path / "broken.rules.yaml"
    text = RULES.read_text().replace("> 0.1\n", "> 0.1)\n", 1)
    assert text != RULES.read_text()
    broken.write_text(text)
    result = check_rules(broken)
    assert not result.ok
    assert "parse error" in result.output


def test_promtool_rule_unit_tests_pass() -> None:
    assert len(UNIT_TESTS) >= 4
    result = test_rules(*UNIT_TESTS)
    assert result.ok, result.output
    assert result.output.count("SUCCESS") == len(UNIT_TESTS)


def test_the_issue_alert_set_is_present() -> None:
    names = {rule["alert"] for rule in _alerts()}
    assert {
        "KubeRuntimeControllerDown",
        "KubeRuntimeReconcileErrorRatioHigh",
        "KubeRuntimeReconcileLatencyP99High",
        "KubeRuntimeWorkqueueBacklog",
        "KubeRuntimeWorkStuck",
        "KubeRuntimeNoLeader",
        "KubeRuntimeMultipleLeaders",
        "KubeRuntimeApiThrottled",
        "KubeRuntimeWatchStale",
        "KubeRuntimeStoreNeverSynced",
        "KubeRuntimeMemoryNearLimit",
        "KubeRuntimeCpuThrottlingHigh",
    } <= names
    recorded = {rule["record"] for rule in _recording_rules()}
    for quantile in ("p50", "p95", "p99"):
        assert f"controller:controller_runtime_reconcile_time_seconds:{quantile}_rate5m" in recorded


@pytest.mark.parametrize("alert", [rule["alert"] for rule in _alerts()])
def test_each_alert_has_a_firing_case_and_a_silent_case(alert: str) -> None:
    cases = _alert_cases()
    assert (alert, True) in cases, f"{alert} has no unit test where it fires"
    assert (alert, False) in cases, f"{alert} has no unit test where it stays silent"


@pytest.fixture(scope="module")
def output_with_alerts_that_never_fire(tmp_path_factory: pytest.TempPathFactory) -> str:
    """promtool's report when every alert expression is replaced by one that never fires."""
    return _run_unit_tests_against(_replace_exprs("alert", NEVER), tmp_path_factory.mktemp("alerts"))


@pytest.fixture(scope="module")
def output_with_constant_recordings(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _run_unit_tests_against(_replace_exprs("record", "vector(0)"), tmp_path_factory.mktemp("records"))


@pytest.mark.parametrize("alert", [rule["alert"] for rule in _alerts()])
def test_each_firing_case_needs_the_alert_expression(
    alert: str, output_with_alerts_that_never_fire: str
) -> None:
    """With the alert's expression unable to fire, its firing unit test must fail."""
    assert f"alertname: {alert}," in output_with_alerts_that_never_fire


@pytest.mark.parametrize("record", [rule["record"] for rule in _recording_rules()])
def test_each_recording_rule_value_is_checked(record: str, output_with_constant_recordings: str) -> None:
    assert f'expr: "{record}"' in output_with_constant_recordings


def test_ratio_alerts_divide() -> None:
    """An alert named a ratio compares a quotient, not a rate (the KubeMirror error-'ratio' mistake)."""
    for rule in _alerts():
        if "Ratio" in rule["alert"]:
            assert re.search(r"\)\s*/\s*sum", rule["expr"]), rule["alert"]


def test_leader_alerts_aggregate_over_replicas() -> None:
    exprs = {rule["alert"]: rule["expr"] for rule in _alerts()}
    assert re.match(r"\s*max by \([^)]*\) \(leader_election_master_status", exprs["KubeRuntimeNoLeader"])
    assert re.match(
        r"\s*sum by \([^)]*\) \(leader_election_master_status", exprs["KubeRuntimeMultipleLeaders"]
    )


def test_rules_select_only_documented_metrics_and_labels() -> None:
    allowed = allowed_series_names()
    recorded = {rule["record"] for rule in _recording_rules()}
    for rule in _rules():
        for selector in selectors(rule["expr"]):
            name = rule.get("alert") or rule.get("record")
            assert selector.name in allowed or selector.name in recorded, f"{name}: {selector.name}"
            if selector.name in allowed:
                unknown = selector.labels - allowed[selector.name]
                assert not unknown, f"{name}: {selector.name} has undocumented labels {unknown}"


def test_kube_runtime_series_are_scoped_to_the_kube_runtime_job() -> None:
    """Go operators export the same controller-runtime names; every non-cAdvisor selector pins the job."""
    for rule in _rules():
        for selector in selectors(rule["expr"]):
            if selector.name not in CADVISOR_METRICS:
                assert "job" in selector.labels, f"{rule.get('alert') or rule.get('record')}: {selector.name}"
    assert RULES.read_text().count('job="kube-runtime"') >= len(_rules())


def _anchors(markdown: str) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_alerts_carry_severity_summary_description_and_a_runbook_that_exists() -> None:
    anchors = _anchors((REPO / "docs" / "troubleshooting.md").read_text())
    for rule in _alerts():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description", "runbook"} <= set(rule["annotations"])
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/troubleshooting.md"
        assert anchor in anchors, f"{rule['alert']}: docs/troubleshooting.md has no heading #{anchor}"
