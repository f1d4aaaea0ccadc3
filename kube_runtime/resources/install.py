"""Install the CRD of a model and wait until the API server serves it: what an operator's
``--install-crd`` does, and what a test does before creating objects of the kind.

``await install_crd(client, Widget, field_manager="widget-operator")`` server-side applies
``crd(Widget)`` (a second call, or a CRD changed by a new model version, updates it in place; a
field another manager owns is taken over, ``force=True``) and returns once its ``Established``
condition is true. Raises ``TimeoutError`` after :data:`ESTABLISH_TIMEOUT` seconds, ``ApiError`` when the CRD
is refused (RBAC: creating CRDs needs cluster-wide rights few operators should have in
production; install them with the chart instead).
"""

from __future__ import annotations

from typing import Any

from kube_runtime.client import Api, ApiResource, Client
from kube_runtime.resources.crd import crd
from kube_runtime.resources.model import CustomResource
from kube_runtime.wait import await_condition, is_crd_established

__all__ = ["ESTABLISH_TIMEOUT", "install_crd"]

#: Seconds :func:`install_crd` waits for ``Established`` (kube-apiserver takes about a second).
ESTABLISH_TIMEOUT = 30.0

_CRDS = ApiResource.builtin("CustomResourceDefinition")


async def install_crd(client: Client, *models: type[CustomResource], field_manager: str) -> dict[str, Any]:
    """Apply ``crd(*models)`` and wait until it is established; returns the CRD as stored."""
    definition = crd(*models)
    name = definition["metadata"]["name"]
    crds = Api(client, _CRDS)
    await crds.patch(name, definition, patch_type="apply", field_manager=field_manager, force=True)
    established = await await_condition(crds, name, is_crd_established(), timeout=ESTABLISH_TIMEOUT)
    assert established is not None  # the condition holds only for an existing object
    return established
