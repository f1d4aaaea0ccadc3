"""Failures explain themselves: a reconcile error is logged with the exception the reconciler
raised (cause chain and traceback, no local variables) and the troubleshooting guide's jq recipe
reads it; a watch on a kind the server does not serve is a WARNING naming it; a deleted object is
no error on the result stream."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry

from kube_runtime.client import Api, ApiResource
from kube_runtime.controller import (
    Action,
    Controller,
    ControllerError,
    ObjectNotFound,
    ReconcilerFailed,
)
from kube_runtime.finalizer import ApplyFailed, FinalizerApply, FinalizerEvent, finalizer
from kube_runtime.observe import configure_logging
from kube_runtime.observe.metrics import observe_results
from kube_runtime.testing.server import ApiServer

REPO = Path(__file__).resolve().parents[2]
CM = ApiResource.builtin("ConfigMap")
FINALIZER = "example.com/cleanup"


def recipe(pattern: str) -> str:
    """The jq program of the troubleshooting guide's line matching ``pattern``."""
    text = (REPO / "docs" / "troubleshooting.md").read_text()
    for line in text.splitlines():
        if line.startswith("kubectl logs") and re.search(pattern, line):
            return line.split("jq -c ", 1)[1].strip().strip("'")
    raise AssertionError(f"no recipe matching {pattern!r}")


def jq(program: str, log_text: str) -> list[Any]:
    binary = shutil.which("jq")
    assert binary is not None, "jq is not installed (scripts/test installs it)"
    out = subprocess.run([binary, "-c", program], input=log_text, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


async def test_a_failed_reconcile_is_logged_with_its_cause_chain_and_the_recipe_reads_it(
    api_server: ApiServer,
) -> None:
    output = io.StringIO()
    configure_logging("warning", fmt="json", stream=output)
    try:
        api = Api(api_server.client, CM, "default")

        async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
            async def handle(event: FinalizerEvent) -> Action:
                if isinstance(event, FinalizerApply):
                    secret_token = "hunter2-local"  # a local variable that must not be logged
                    return Action.requeue(len(secret_token) + event.object["spec"]["replicas"])
                return Action.await_change()

            return await finalizer(api, FINALIZER, obj, handle)

        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "broken"}})
        controller = Controller(api, name="explain", registry=CollectorRegistry())
        failed: ReconcilerFailed | None = None
        with anyio.fail_after(30):
            async with controller.run(reconcile, None, None) as results:
                async for item in observe_results(results, "explain", registry=CollectorRegistry()):
                    if isinstance(item, ReconcilerFailed):
                        failed = item
                        break
    finally:
        log_text = output.getvalue()
        configure_logging("warning", stream=io.StringIO())

    assert failed is not None
    assert isinstance(failed.error, ApplyFailed)
    assert "KeyError('spec')" in str(failed.error)
    cause = failed.error.__cause__
    assert isinstance(cause, KeyError)
    assert cause.__traceback__ is not None  # the item keeps where it was raised
    frames = []
    tb = cause.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert "handle" in frames

    assert "hunter2-local" not in log_text
    lines = [json.loads(line) for line in log_text.splitlines() if line.strip()]
    logged = [line for line in lines if line.get("event") == "reconcile failed"]
    assert logged, log_text
    chain = logged[0]["exception"]
    assert [entry["exc_type"] for entry in chain] == ["ApplyFailed", "KeyError"]  # outermost first
    assert any(frame["name"] == "handle" for frame in chain[1]["frames"])
    assert all("locals" not in frame or not frame["locals"] for entry in chain for frame in entry["frames"])

    found = jq(recipe(r"select\(.level == \"error\"\)"), log_text)
    assert found, "the recipe selected nothing"
    assert found[0]["ref"] == logged[0]["object.ref"]
    assert found[0]["event"] == "reconcile failed"
    assert found[0]["exception"], "the recipe's exception field is empty"
    assert "KeyError" in json.dumps(found[0]["exception"])


async def test_the_failure_line_carries_the_ids_of_the_attempts_own_lines(api_server: ApiServer) -> None:
    """The "reconcile failed" line is logged where the result is consumed, outside the attempt;
    it carries the attempt's reconcile_id, trace_id and span_id, so it joins the attempt's lines."""
    import structlog

    output = io.StringIO()
    configure_logging("info", fmt="json", stream=output)
    try:
        api = Api(api_server.client, CM, "default")

        async def reconcile(obj: dict[str, Any], _ctx: None) -> Action:
            structlog.get_logger("failing.reconciler").info("about to fail")
            raise RuntimeError("boom")

        await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
        controller = Controller(api, name="ids", registry=CollectorRegistry())
        with anyio.fail_after(30):
            async with controller.run(reconcile, None, None) as results:
                async for item in observe_results(results, "ids", registry=CollectorRegistry()):
                    if isinstance(item, ReconcilerFailed):
                        break
    finally:
        log_text = output.getvalue()
        configure_logging("warning", stream=io.StringIO())
    lines = [json.loads(line) for line in log_text.splitlines() if line.strip()]
    inside = next(line for line in lines if line.get("event") == "about to fail")
    failed = next(line for line in lines if line.get("event") == "reconcile failed")
    for key in ("reconcile_id", "trace_id", "span_id", "object.ref"):
        assert failed[key] == inside[key], key


async def test_a_deleted_object_is_not_an_error(api_server: ApiServer) -> None:
    """Deleting an owner deletes its child (garbage collection), which triggers the owner again;
    the result stream reports it as an ObjectNotFound notice, which is not an error."""
    api = Api(api_server.client, CM, "default")
    secrets = Api(api_server.client, ApiResource.builtin("Secret"), "default")
    owner = await api.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "a", "uid": owner["metadata"]["uid"]}
    await secrets.create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c", "ownerReferences": [ref]}}
    )

    async def reconcile(_obj: dict[str, Any], _ctx: None) -> Action:
        return Action.await_change()

    controller = Controller(api, name="deletes", registry=CollectorRegistry()).owns(secrets)
    items: list[Any] = []
    deleted = False
    with anyio.fail_after(30):
        async with controller.run(reconcile, None, None) as results:
            async for item in results:
                items.append(item)
                if len(items) == 1:
                    # Delete only once the owned watch holds c: a change of c that reaches the owner
                    # proves it (deleted before that, c would be in no list and send no event).
                    await secrets.patch("c", {"metadata": {"labels": {"seen": "yes"}}})
                elif "Secret" in str(getattr(item, "reason", "")) and not deleted:
                    deleted = True
                    await api.delete("a")  # the embedded server's garbage collector deletes c
                if isinstance(item, ObjectNotFound):
                    break
    notice = items[-1]
    assert isinstance(notice, ObjectNotFound)
    assert not isinstance(notice, Exception)
    assert "deleted" in str(notice)
    assert not [i for i in items if isinstance(i, ControllerError)]


async def test_a_watch_on_an_unserved_kind_warns_naming_it(
    api_server: ApiServer, caplog: pytest.LogCaptureFixture
) -> None:
    widgets = ApiResource("example.com", "v1", "Widget", "widgets")
    controller = Controller(Api(api_server.client, widgets, "default"), registry=CollectorRegistry())

    async def never(_obj: dict[str, Any], _ctx: None) -> Action:
        raise AssertionError("nothing to reconcile")

    caplog.set_level(logging.DEBUG, logger="kube_runtime.watcher")
    with anyio.fail_after(30):
        async with controller.run(never, None, None) as results:
            async for _item in results:
                if any(r.levelno == logging.WARNING for r in caplog.records):
                    break
    warnings = [
        r for r in caplog.records if r.levelno == logging.WARNING and r.name == "kube_runtime.watcher"
    ]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "example.com/v1 widgets" in message
    assert "CustomResourceDefinition" in message
    assert (
        warnings[0].__dict__["group"],
        warnings[0].__dict__["version"],
        warnings[0].__dict__["resource"],
    ) == (
        "example.com",
        "v1",
        "widgets",
    )
