"""pytest helpers: :func:`locate_or_skip` and the per-test ``envtest`` fixture.

Guarantee: with ``$KUBE_RUNTIME_REQUIRE_ENVTEST`` set, missing binaries fail the test instead of
skipping it, so an end-to-end test is never skipped silently.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from kube_runtime.testing.envtest.binaries import REQUIRE_ENV, EnvtestBinaries, MissingEnvtestBinaries
from kube_runtime.testing.envtest.control_plane import Envtest

__all__ = ["envtest", "locate_or_skip"]


def locate_or_skip(*, controller_manager: bool = False) -> EnvtestBinaries:
    """:meth:`EnvtestBinaries.locate` for a test: skips, naming the missing binaries, when they are not built.

    With ``$KUBE_RUNTIME_REQUIRE_ENVTEST`` set (CI, once it has found the cached binaries), it fails the
    test instead, so an end-to-end test can never be skipped silently.
    """
    try:
        return EnvtestBinaries.locate(controller_manager=controller_manager)
    except MissingEnvtestBinaries as exc:
        if os.environ.get(REQUIRE_ENV, "") not in ("", "0"):
            pytest.fail(f"{exc} (and ${REQUIRE_ENV} is set)", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture
async def envtest(anyio_backend: object) -> AsyncIterator[Envtest]:
    """A fresh :class:`Envtest` per test; skips, naming the missing binaries, when they are not built."""
    async with Envtest(locate_or_skip()) as env:
        yield env
