"""Installing generated CRDs in a test server."""

from __future__ import annotations

from typing import Any

import anyio

from kube_runtime.client import Api, ApiError, ApiResource, Client
from kube_runtime.resources import CustomResource, crd

CRDS = ApiResource.builtin("CustomResourceDefinition")


async def install(
    client: Client, *models: type[CustomResource], definition: dict[str, Any] | None = None
) -> None:
    """Create the CRD of ``models`` (or ``definition``) and wait until its kind can be listed."""
    await Api(client, CRDS).create(definition or crd(*models))
    objects = Api(client, models[0].api_resource)
    with anyio.fail_after(30):
        while True:
            try:
                await objects.list(limit=1)
                return
            except ApiError as err:
                if err.code != 404:
                    raise
            await anyio.sleep(0.1)
