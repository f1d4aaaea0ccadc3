"""Fixtures for tests against a real kube-apiserver + etcd (binaries from scripts/build-envtest.sh)."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kube_runtime.testing.envtest import Envtest, EnvtestBinaries, ThreadedEnvtest, envtest, locate_or_skip

__all__ = ["envtest", "envtest_binaries", "envtest_kcm_binaries", "kubeconfig_client", "shared_envtest"]


@pytest.fixture
def envtest_binaries() -> EnvtestBinaries:
    """The cached binaries; skips, naming the missing ones, when they are not built."""
    return locate_or_skip()


@pytest.fixture(scope="module")
def shared_envtest() -> Iterator[Envtest]:
    """One control plane for a whole module (tests that only read and write objects, no faults)."""
    with ThreadedEnvtest(locate_or_skip()) as hosted:
        yield hosted.env


@pytest.fixture
def envtest_kcm_binaries() -> EnvtestBinaries:
    return locate_or_skip(controller_manager=True)


def kubeconfig_client(path: Path, **kwargs: Any) -> httpx.AsyncClient:
    """A plain httpx client built only from what the kubeconfig at ``path`` says."""
    config = yaml.safe_load(path.read_text())
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    ca_pem = base64.b64decode(cluster["certificate-authority-data"]).decode()
    return httpx.AsyncClient(
        base_url=cluster["server"],
        verify=ssl.create_default_context(cadata=ca_pem),
        headers={"Authorization": f"Bearer {user['token']}"},
        **kwargs,
    )
