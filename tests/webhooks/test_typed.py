"""ModelCodec: wire dicts to resource models and back, by apiVersion when several versions share it."""

from __future__ import annotations

from typing import Any

import pytest

from examples.typed_operator.resources import Website, WebsiteV1Alpha1
from kube_runtime.resources import InvalidObject
from kube_runtime.webhooks.typed import ModelCodec


def stored(version: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"demo.kube-runtime.dev/{version}",
        "kind": "Website",
        "metadata": {
            "name": "w",
            "namespace": "default",
            "uid": "0f1e",
            "resourceVersion": "12",
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "managedFields": [{"manager": "kubectl", "operation": "Update", "fieldsType": "FieldsV1"}],
            "annotations": {"note": "kept"},
        },
        "spec": spec,
        "status": {"pages": 3, "somethingNewer": {"x": 1}},
    }


def test_encode_of_decode_is_the_identity_on_a_stored_object() -> None:
    codec: ModelCodec[Website] = ModelCodec(Website)
    obj = stored("v1", {"title": "T", "unknownField": [1, 2]})
    site = codec.decode(obj)
    assert isinstance(site, Website)
    assert codec.encode(site) == obj  # no defaults added, unknown fields and timestamps kept
    site.spec.replicas = 2
    assert codec.encode(site)["spec"] == {"title": "T", "unknownField": [1, 2], "replicas": 2}


def test_several_models_decode_by_api_version() -> None:
    codec: ModelCodec[Any] = ModelCodec(WebsiteV1Alpha1, Website)
    assert isinstance(codec.decode(stored("v1alpha1", {"title": "T", "servers": 2})), WebsiteV1Alpha1)
    assert isinstance(codec.decode(stored("v1", {"title": "T"})), Website)
    with pytest.raises(ValueError, match=r"no model for apiVersion .demo\.kube-runtime\.dev/v9."):
        codec.decode(stored("v9", {"title": "T"}))


def test_a_misfit_is_a_typed_error_and_bad_model_sets_are_refused() -> None:
    with pytest.raises(InvalidObject) as caught:
        ModelCodec(Website).decode(stored("v1", {"title": "", "replicas": 9}))
    assert caught.value.paths == ["spec.title", "spec.replicas"]
    with pytest.raises(ValueError, match="at least one model"):
        ModelCodec()
    with pytest.raises(ValueError, match=r"two models for demo\.kube-runtime\.dev/v1"):
        ModelCodec(Website, Website)


def test_values_are_decoded_strictly_as_the_api_servers_schema_checks_them() -> None:
    """In pydantic's lax mode ``"2"`` fits ``replicas: int`` and encodes back as ``2``, so an
    identity mutator's patch rewrote the value the API server would have refused."""
    codec: ModelCodec[Website] = ModelCodec(Website)
    with pytest.raises(InvalidObject) as caught:
        codec.decode(stored("v1", {"title": "T", "replicas": "2"}))
    assert caught.value.paths == ["spec.replicas"]
    site = codec.decode(stored("v1", {"title": "T", "replicas": 2}))
    assert site.spec.replicas == 2
    assert codec.encode(site) == stored("v1", {"title": "T", "replicas": 2})  # timestamps as they came
