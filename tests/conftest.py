"""Test-suite wide configuration.

Every ``async def`` test runs under anyio on asyncio (real clock). A module or test that wants the
virtual clock overrides the ``anyio_backend`` fixture with
``kube_runtime.testing.clock.virtual_clock_backend()``.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest


@pytest.fixture
def anyio_backend() -> Any:
    return "asyncio"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and inspect.iscoroutinefunction(fn) and not item.get_closest_marker("anyio"):
            item.add_marker(pytest.mark.anyio)
