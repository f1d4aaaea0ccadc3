"""Shared helpers for the embedded-server tests: an httpx client bound to an ApiServer."""

from __future__ import annotations

import ssl
from typing import Any

import httpx

from kube_runtime.testing import ApiServer


def http_client(
    server: ApiServer, *, token: str | None = None, timeout: float | None = 30, **kwargs: Any
) -> httpx.AsyncClient:
    """An httpx client for ``server`` trusting its CA, authenticated with its token (or ``token``)."""
    verify: ssl.SSLContext | bool = True
    if server.ca_pem is not None:
        verify = ssl.create_default_context(cadata=server.ca_pem.decode())
    headers = {"Authorization": f"Bearer {token if token is not None else server.token}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, verify=verify, timeout=timeout, **kwargs)


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


CM = "/api/v1/namespaces/default/configmaps"
