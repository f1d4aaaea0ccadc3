"""Test-suite wide configuration.

Every ``async def`` test runs under anyio on asyncio (real clock): ``anyio_mode = "auto"`` in
pyproject.toml; with ``KUBE_RUNTIME_TEST_LOOP=uvloop``, on uvloop. A module or test that wants the
virtual clock overrides the ``anyio_backend`` fixture with
``kube_runtime.testing.clock.virtual_clock_backend()``.

Nothing in this suite is skipped: a test that cannot run (a missing tool, missing kube-apiserver
binaries) is reported as a failure naming what is missing. ``scripts/test`` sets all of it up.
"""

from __future__ import annotations

import os
from collections.abc import Generator
from typing import Any

import pytest

from kube_runtime.testing.envtest import REQUIRE_ENV

pytest_plugins = ["kube_runtime.testing.pytest_plugin"]

# The envtest fixtures fail instead of skipping when the real kube-apiserver is not built.
os.environ.setdefault(REQUIRE_ENV, "1")


#: ``KUBE_RUNTIME_TEST_LOOP=uvloop`` runs the tests that do not pick a backend of their own on uvloop
#: (tests/test_on_uvloop.py runs the client, watcher, controller and manager tests so).
LOOP_ENV = "KUBE_RUNTIME_TEST_LOOP"


@pytest.fixture
def anyio_backend() -> Any:
    if os.environ.get(LOOP_ENV) == "uvloop":
        return ("asyncio", {"use_uvloop": True})
    return "asyncio"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """Report a skipped or expected-to-fail test as failed: a test that cannot run here checks nothing."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if report.skipped:
        if hasattr(report, "wasxfail"):
            reason = f"xfail is not allowed in this suite: {report.wasxfail}"
        elif isinstance(report.longrepr, tuple):
            reason = report.longrepr[2]
        else:
            reason = str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped tests fail in this suite (scripts/test sets everything up): {reason}"
