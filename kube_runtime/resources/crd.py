"""The CustomResourceDefinition of one or more :class:`~kube_runtime.resources.model.CustomResource`
models: ``crd(Widget)``, or ``crd(WidgetV1, WidgetV2)`` for several versions of one kind.

Guarantees: every model must name the same group, kind, plural and scope (else ``ValueError``);
versions must differ; exactly one is the storage version (a single version is; with several,
mark one ``storage=True``). Each version gets its structural schema
(:func:`~kube_runtime.resources.schema.object_schema`), its status subresource and printer
columns. Names, short names, categories come from the storage version. The result is a plain
dict ready for ``Api(client, CRD).create(...)`` or :func:`to_yaml`.

Pitfall: the API server builds the CRD's names asynchronously; wait for its ``Established``
condition (:func:`kube_runtime.wait.conditions`) before creating objects.
"""

from __future__ import annotations

from typing import Any

import yaml

from kube_runtime.resources.model import CustomResource
from kube_runtime.resources.schema import object_schema

__all__ = ["crd", "to_yaml"]


def crd(*models: type[CustomResource]) -> dict[str, Any]:
    """The CRD for ``models`` (versions of one kind; see the module docs)."""
    if not models:
        raise ValueError("crd() needs at least one model")
    resources = [model.api_resource for model in models]
    first = resources[0]
    for model, res in zip(models, resources, strict=True):
        if (res.group, res.kind, res.plural, res.namespaced) != (
            first.group,
            first.kind,
            first.plural,
            first.namespaced,
        ):
            raise ValueError(f"{model.__name__} is not a version of {first.kind}.{first.group}")
    versions = [res.version for res in resources]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate versions of {first.kind}: {versions}")
    if not first.group:
        raise ValueError(f"{first.kind}: a custom resource needs a group")
    storage = _storage_model(models)
    settings = storage.crd_settings
    names: dict[str, Any] = {
        "kind": first.kind,
        "listKind": f"{first.kind}List",
        "plural": first.plural,
        "singular": settings.singular or first.kind.lower(),
    }
    if settings.short_names:
        names["shortNames"] = list(settings.short_names)
    if settings.categories:
        names["categories"] = list(settings.categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{first.plural}.{first.group}"},
        "spec": {
            "group": first.group,
            "names": names,
            "scope": "Namespaced" if first.namespaced else "Cluster",
            "versions": [_version(model, model is storage) for model in models],
        },
    }


def to_yaml(*documents: dict[str, Any]) -> str:
    """``documents`` as a YAML stream (``---`` separated), keys in the order built."""
    return yaml.safe_dump_all(documents, sort_keys=False, explicit_start=True)


def _storage_model(models: tuple[type[CustomResource], ...]) -> type[CustomResource]:
    if len(models) == 1:
        if models[0].crd_settings.storage is False:
            raise ValueError(f"{models[0].__name__}: the only version must be the storage version")
        return models[0]
    marked = [model for model in models if model.crd_settings.storage]
    if len(marked) != 1:
        raise ValueError(
            f"mark exactly one version storage=True (marked: {[model.__name__ for model in marked]})"
        )
    return marked[0]


def _version(model: type[CustomResource], storage: bool) -> dict[str, Any]:
    settings = model.crd_settings
    version: dict[str, Any] = {
        "name": model.api_resource.version,
        "served": settings.served,
        "storage": storage,
    }
    if settings.deprecated:
        version["deprecated"] = True
        if isinstance(settings.deprecated, str):
            version["deprecationWarning"] = settings.deprecated
    version["schema"] = {"openAPIV3Schema": object_schema(model)}
    if model.has_status_subresource():
        version["subresources"] = {"status": {}}
    if settings.printer_columns:
        version["additionalPrinterColumns"] = [column.to_crd() for column in settings.printer_columns]
    return version
