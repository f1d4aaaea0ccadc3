"""pytest fixture ``api_server``: a fresh embedded API server per test.

Loaded by ``pytest_plugins = ["kube_runtime.testing.pytest_plugin"]`` in ``tests/conftest.py``.
The server runs on the test's event loop (also on the virtual clock loop).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from kube_runtime.testing.server import ApiServer

__all__ = ["api_server"]


@pytest.fixture
async def api_server(anyio_backend: Any) -> AsyncIterator[ApiServer]:
    """A running :class:`ApiServer` (``.url``, ``.token``, ``.kubeconfig_path``, ``.client``, ``.faults``)."""
    async with ApiServer() as server:
        yield server
