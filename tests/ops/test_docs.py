"""The guides stay in step with the rules, the metric list and their own links."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.ops.documented_metrics import PROCESS_METRICS, RUNTIME_METRICS

REPO = Path(__file__).resolve().parents[2]
MONITORING = (REPO / "docs" / "monitoring.md").read_text()
TROUBLESHOOTING = (REPO / "docs" / "troubleshooting.md").read_text()
RULES_FILE = REPO / "monitoring" / "rules" / "kube-runtime.rules.yaml"
RULES = [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]]


def _anchors(markdown: str) -> set[str]:
    headings = re.findall(r"^#+\s+(.+?)\s*$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_monitoring_guide_documents_every_metric() -> None:
    for name in [*RUNTIME_METRICS, *PROCESS_METRICS]:
        assert f"`{name}`" in MONITORING, name


def test_monitoring_guide_lists_every_alert_and_recording_rule() -> None:
    for rule in RULES:
        name = rule.get("alert") or rule["record"]
        assert f"`{name}`" in MONITORING, name


@pytest.mark.parametrize(
    "section",
    ["hot-loop", "memory-growth", "watch-not-recovering", "api-throttling-429", "finalizer-stuck",
     "reconciler-not-running", "profiling"],
)  # fmt: skip
def test_troubleshooting_covers_each_seed_symptom(section: str) -> None:
    assert section in _anchors(TROUBLESHOOTING)


def test_troubleshooting_profiling_names_the_tools() -> None:
    for tool in ("tracemalloc", "memray", "/debug/tasks", "TaskDumpOnSignal", "PYTHONASYNCIODEBUG"):
        assert tool in TROUBLESHOOTING, tool


@pytest.mark.parametrize("document", ["troubleshooting.md", "monitoring.md"])
def test_internal_links_resolve(document: str) -> None:
    text = (REPO / "docs" / document).read_text()
    for target, anchor in re.findall(r"\]\(([\w.\-]*)#([\w\-]+)\)", text):
        linked = (REPO / "docs" / target).read_text() if target else text
        assert anchor in _anchors(linked), f"{document}: broken link {target}#{anchor}"
