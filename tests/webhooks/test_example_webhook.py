"""The configmapgen example's webhook, served as the example serves it (``--webhook-*`` flags) and
called by the embedded API server: an oversized ConfigMapGenerator is refused at create."""

from __future__ import annotations

from pathlib import Path

import pytest

from examples.configmapgen.crd import CONFIG_MAP_GENERATOR, install_crd
from examples.configmapgen.main import build_parser
from examples.configmapgen.webhooks import MAX_CONTENT_BYTES, WEBHOOK_NAME, build_webhooks
from kube_runtime.client import Api, ApiError, ApiResource
from kube_runtime.testing import ApiServer
from kube_runtime.webhooks.certs import SelfSignedCA
from kube_runtime.webhooks.config import WebhookClientConfig, validating_webhook_configuration
from kube_runtime.webhooks.server import WebhookOptions

VALIDATING_CONFIGS = ApiResource(
    "admissionregistration.k8s.io",
    "v1",
    "ValidatingWebhookConfiguration",
    "validatingwebhookconfigurations",
    namespaced=False,
)


async def test_the_example_refuses_a_generator_whose_configmap_could_not_be_stored(tmp_path: Path) -> None:
    pair = SelfSignedCA().issue(tmp_path, hosts=["127.0.0.1"])
    args = build_parser().parse_args(
        [
            "--webhook-bind-address=127.0.0.1:0",
            f"--webhook-cert-file={pair.cert_file}",
            f"--webhook-key-file={pair.key_file}",
        ]
    )
    webhooks = build_webhooks()
    async with ApiServer() as server, WebhookOptions.from_arguments(args).server(webhooks) as webhook_server:
        client = server.client
        await install_crd(client)
        config = validating_webhook_configuration(
            webhooks,
            name="configmapgen",
            client=WebhookClientConfig(url=webhook_server.url, ca_bundle=pair.ca_pem),
        )
        await Api(client, VALIDATING_CONFIGS).create(config)
        generators = Api(client, CONFIG_MAP_GENERATOR, namespace="default")

        def generator(name: str, content: str) -> dict[str, object]:
            return {
                "apiVersion": "nullable.se/v1",
                "kind": "ConfigMapGenerator",
                "metadata": {"name": name},
                "spec": {"content": content},
            }

        await generators.create(generator("small", "hello"))
        with pytest.raises(ApiError) as refused:
            await generators.create(generator("huge", "x" * (MAX_CONTENT_BYTES + 1)))
        assert refused.value.code == 403
        assert f'admission webhook "{WEBHOOK_NAME}" denied the request: spec.content is' in str(refused.value)
        assert [g["metadata"]["name"] for g in (await generators.list())["items"]] == ["small"]
