"""The ``ConfigMapGenerator`` custom resource: each one asks for a ConfigMap holding ``spec.content``."""

from __future__ import annotations

from typing import Any

import anyio

from kube_runtime.client import Api, ApiError, ApiResource, Client

__all__ = ["CONFIG_MAP", "CONFIG_MAP_GENERATOR", "CRD", "install_crd"]

CONFIG_MAP_GENERATOR = ApiResource("nullable.se", "v1", "ConfigMapGenerator", "configmapgenerators")
CONFIG_MAP = ApiResource.builtin("ConfigMap")
_CRDS = ApiResource.builtin("CustomResourceDefinition")

CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "configmapgenerators.nullable.se"},
    "spec": {
        "group": "nullable.se",
        "scope": "Namespaced",
        "names": {
            "plural": "configmapgenerators",
            "singular": "configmapgenerator",
            "kind": "ConfigMapGenerator",
            "shortNames": ["cmg"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["content"],
                                "properties": {"content": {"type": "string"}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


async def install_crd(client: Client) -> None:
    """Create (or keep) the CRD and wait (at most 30 s) until its objects can be listed."""
    try:
        await Api(client, _CRDS).create(CRD)
    except ApiError as err:
        if err.code != 409:
            raise
    generators = Api(client, CONFIG_MAP_GENERATOR)
    with anyio.fail_after(30):
        while True:
            try:
                await generators.list(limit=1)
                return
            except ApiError as err:
                if err.code != 404:
                    raise
            await anyio.sleep(0.2)
