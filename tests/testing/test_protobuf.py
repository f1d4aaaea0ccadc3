"""Protobuf bodies the embedded server cannot decode are refused whole (415), never half-decoded."""

from __future__ import annotations

import pytest

from kube_runtime.testing import ApiServer
from kube_runtime.testing.apiserver.protobuf import ProtobufError, decode_object
from tests.contract.protowire import field, varint_field
from tests.contract.test_interop import protobuf_deployment
from tests.testing.helpers import http_client

PROTOBUF = {"Content-Type": "application/vnd.kubernetes.protobuf"}


def test_unknown_fields_holding_zero_values_are_accepted() -> None:
    obj = decode_object(protobuf_deployment("z", replicas=1, extra_spec=varint_field(8, 0) + field(10, b"")))
    assert obj["spec"]["replicas"] == 1


def test_an_unknown_field_with_a_value_refuses_the_body() -> None:
    # spec.paused is known; field 10 of DeploymentSpec (a real field this decoder does not model) is not
    with pytest.raises(ProtobufError, match="field 10 of spec is not supported"):
        decode_object(protobuf_deployment("z", replicas=1, extra_spec=field(10, b"\x08\x01")))


def test_negative_int32_is_decoded() -> None:
    obj = decode_object(protobuf_deployment("z", replicas=-1))
    assert obj["spec"]["replicas"] == -1


async def test_refused_body_is_415_with_the_reason(api_server: ApiServer) -> None:
    async with http_client(api_server) as http:
        body = protobuf_deployment("z", replicas=1, extra_spec=field(10, b"\x08\x01"))
        resp = await http.post("/apis/apps/v1/namespaces/default/deployments", content=body, headers=PROTOBUF)
        assert resp.status_code == 415
        assert resp.json()["reason"] == "UnsupportedMediaType"
        assert "send JSON" in resp.json()["message"]
