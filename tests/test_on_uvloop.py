"""The client, watcher, store, controller and manager tests again, on uvloop.

``Manager.main`` runs a process on uvloop where it is installed (``event_loop="auto"``), so the
layers must hold there as on asyncio's own loop: their tests run in a pytest of their own with
``KUBE_RUNTIME_TEST_LOOP=uvloop`` (tests/conftest.py), which puts every test that does not pick a
backend itself on uvloop.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SUITES = ["tests/client", "tests/watcher", "tests/store", "tests/controller", "tests/manager"]
#: The inner run's bound (about 2 minutes on a quiet 2-core machine, 500+ tests).
INNER_TIMEOUT = 900


@pytest.mark.timeout(INNER_TIMEOUT + 60)  # the inner run's own timeout reports first
def test_the_layers_tests_pass_on_uvloop() -> None:
    env = {**os.environ, "KUBE_RUNTIME_TEST_LOOP": "uvloop"}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=INNER_TIMEOUT)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed is not None, summary
    assert int(passed.group(1)) > 400, summary
    assert not re.search(r"failed|skipped|error", summary), summary
