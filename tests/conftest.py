"""Test-suite wide configuration.

Every ``async def`` test runs under anyio on asyncio (real clock): ``anyio_mode = "auto"`` in
pyproject.toml. A module or test that wants the
virtual clock overrides the ``anyio_backend`` fixture with
``kube_runtime.testing.clock.virtual_clock_backend()``.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest_plugins = ["kube_runtime.testing.pytest_plugin"]


@pytest.fixture
def anyio_backend() -> Any:
    return "asyncio"
