"""Every jq recipe of docs/troubleshooting.md runs on real JSON log lines: the ones about reconciles
and watches select the lines a controller run really wrote (one object's history, warnings and
errors, the failure with its exception, terminal failures, the watcher's lines); the others
(hot loops, watch timeouts, webhook handlers) parse, and the event text they match is the one the
code logs."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiResource
from kube_runtime.controller import Action, Controller, ReconcilerFailed, TerminalError
from kube_runtime.observe import configure_logging
from kube_runtime.observe.metrics import observe_results
from kube_runtime.testing.server import ApiServer

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "troubleshooting.md").read_text()
RECIPES: list[str] = re.findall(r"^kubectl logs deploy/my-controller \| jq -c '(.*)'$", DOC, re.M)
CM = ApiResource.builtin("ConfigMap")
log = structlog.get_logger("my_controller")


def jq(program: str, text: str) -> list[Any]:
    binary = shutil.which("jq")
    assert binary is not None, "jq is not installed (scripts/test installs it)"
    done = subprocess.run([binary, "-c", program], input=text, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{program}: {done.stderr}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def recipe(fragment: str) -> str:
    (found,) = [r for r in RECIPES if fragment in r]
    return found


@pytest.fixture(scope="module")
def log_text() -> str:
    """JSON logs of a controller run: my-object fails once then reconciles, other fails terminally,
    and a watch on an unserved kind warns."""
    output = io.StringIO()
    configure_logging("info", fmt="json", stream=output)
    try:
        anyio.run(_run_controller, output)
    finally:
        configure_logging("warning", stream=io.StringIO())
        text = output.getvalue()
    output.close()
    return text


async def _run_controller(output: io.StringIO) -> None:
    attempts: dict[str, int] = {}

    async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
        name = obj["metadata"]["name"]
        attempts[name] = attempts.get(name, 0) + 1
        log.info("reconciling", attempt=attempts[name])
        if name == "other":
            raise TerminalError("spec.size must be positive")
        if attempts[name] == 1:
            return Action.requeue(float(obj["data"]["replicas"]))  # KeyError: no such key
        return Action.await_change()

    async with ApiServer() as server:
        api = Api(server.client, CM, "default")
        await api.create(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "my-object"}, "data": {}}
        )
        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "other"}})
        widgets = Api(server.client, ApiResource("example.com", "v1", "Widget", "widgets"), "default")
        registry = CollectorRegistry()
        controller = Controller(api, name="recipes", registry=registry)
        unserved = Controller(widgets, name="unserved", registry=registry)  # its watch warns at once
        with anyio.fail_after(60):
            async with unserved.run(_never, None, None), controller.run(reconcile, None, None) as results:
                failures = 0
                async for item in observe_results(results, "recipes", registry=registry):
                    failures += isinstance(item, ReconcilerFailed)
                    if failures == 2 and attempts.get("my-object", 0) >= 2:
                        break
                while "does not serve" not in output.getvalue():  # noqa: ASYNC110  (another run's log line)
                    await anyio.sleep(0.01)


async def _never(_obj: dict[str, Any], _ctx: None) -> Action:
    raise AssertionError("nothing to reconcile")


#: What each recipe is recognised by; every recipe of the guide must match exactly one.
COVERED = (
    'contains("/my-object.default")',
    'contains("my-object")',
    '.level == "warning" or .level == "error"',
    'startswith("kube_runtime.watcher")',
    '{ref: ."object.ref", event, exception}',
    ".terminal == true",
    'startswith("hot loop")',
    '"watch timed out, reconnecting"',
    'test("handler raised|timed out")',
)


def test_every_recipe_is_covered() -> None:
    for program in RECIPES:
        assert sum(fragment in program for fragment in COVERED) == 1, program
    assert len(RECIPES) == len(COVERED)


def test_one_objects_history(log_text: str) -> None:
    for fragment in ('contains("/my-object.default")', 'contains("my-object")'):
        found = jq(recipe(fragment), log_text)
        assert [line["event"] for line in found if line["logger"] == "my_controller"] == ["reconciling"] * 2
        assert {line["object.ref"] for line in found} == {"ConfigMap.v1./my-object.default"}
        assert all(
            line["trace_id"] and line["span_id"] for line in found if line["logger"] == "my_controller"
        )


def test_warnings_and_errors(log_text: str) -> None:
    found = jq(recipe('.level == "warning" or .level == "error"'), log_text)
    assert {line["event"] for line in found if line["level"] == "error"} == {"reconcile failed"}
    assert any("does not serve" in line["event"] for line in found if line["level"] == "warning")


def test_the_watchers_lines(log_text: str) -> None:
    found = jq(recipe('startswith("kube_runtime.watcher")'), log_text)
    assert any(line.get("resource") == "widgets" for line in found)


def test_failures_with_their_exception_and_terminal_ones(log_text: str) -> None:
    failed = jq(recipe('{ref: ."object.ref", event, exception}'), log_text)
    by_ref = {line["ref"]: line for line in failed}
    chain = by_ref["ConfigMap.v1./my-object.default"]["exception"]
    assert chain[0]["exc_type"] == "KeyError"
    assert any(frame["name"] == "reconcile" for frame in chain[0]["frames"])
    terminal = jq(recipe(".terminal == true"), log_text)
    assert [line["ref"] for line in terminal] == ["ConfigMap.v1./other.default"]
    assert "spec.size must be positive" in terminal[0]["error"]


@pytest.mark.parametrize(
    ("fragment", "logged_by", "text"),
    [
        ('startswith("hot loop")', "kube_runtime/observe/hotloop.py", '"hot loop'),
        (
            '"watch timed out, reconnecting"',
            "kube_runtime/observe/watch_metrics.py",
            '"watch timed out, reconnecting"',
        ),
        ('test("handler raised|timed out")', "kube_runtime/webhooks/app.py", 'handler raised"'),
    ],
)
def test_the_other_recipes_parse_and_match_what_the_code_logs(
    log_text: str, fragment: str, logged_by: str, text: str
) -> None:
    jq(recipe(fragment), log_text)
    assert text in (REPO / logged_by).read_text()
