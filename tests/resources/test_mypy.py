"""Typing is real for users: mypy --strict flags a wrong field in a typed reconcile, and a
reconciler for the wrong model, while the correct program checks clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GOOD = """
from kube_runtime.client import Client
from kube_runtime.controller import Action
from kube_runtime.resources import TypedApi, TypedController
from tests.resources.models import Widget


async def reconcile(obj: Widget, ctx: int) -> Action:
    if obj.spec.replicas > ctx and obj.status is not None:
        return Action.requeue(obj.spec.replicas)
    return Action.await_change()


def build(client: Client) -> None:
    TypedController(TypedApi(client, Widget, "default")).run(reconcile, None, 3)
"""

BAD = """
from kube_runtime.client import Client
from kube_runtime.controller import Action
from kube_runtime.resources import TypedApi, TypedController
from tests.resources.models import Gadget, Widget


async def reconcile(obj: Widget, ctx: None) -> Action:
    print(obj.spec.replica)
    return Action.await_change()


async def reconcile_gadget(obj: Gadget, ctx: None) -> Action:
    return Action.await_change()


def build(client: Client) -> None:
    TypedController(TypedApi(client, Widget, "default")).run(reconcile_gadget, None, None)
"""


def test_mypy_flags_a_wrong_field_and_a_wrong_model(tmp_path: Path) -> None:
    (tmp_path / "good_user.py").write_text(GOOD)
    (tmp_path / "bad_user.py").write_text(BAD)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            str(tmp_path / "good_user.py"),
            str(tmp_path / "bad_user.py"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 1, result.stdout + result.stderr
    assert not [line for line in errors if "good_user.py" in line], errors
    assert any('bad_user.py:9: error: "WidgetSpec" has no attribute "replica"' in line for line in errors), (
        errors
    )
    assert any("bad_user.py:18: error: Argument 1" in line and "Gadget" in line for line in errors), errors
    assert len(errors) == 2, errors
