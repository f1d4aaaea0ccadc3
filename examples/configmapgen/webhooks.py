"""The configmapgen example's admission webhook: refuse a ConfigMapGenerator whose ConfigMap could
never be stored (its ``spec.content`` over the API server's 1 MiB object limit), so the error shows
at ``kubectl apply`` instead of as a reconcile failing forever.

Served when ``--webhook-cert-file`` is given (the Helm chart passes it with ``webhooks.enabled``).
"""

from __future__ import annotations

from kube_runtime.webhooks import AdmissionRequest, Verdict, WebhookRule, Webhooks, allow, deny

__all__ = ["MAX_CONTENT_BYTES", "VALIDATE_PATH", "WEBHOOK_NAME", "build_webhooks"]

#: A ConfigMap's data may hold 1 MiB (the API server's limit for the whole object).
MAX_CONTENT_BYTES = 1024 * 1024
VALIDATE_PATH = "/validate-configmapgenerators"
WEBHOOK_NAME = "vconfigmapgenerator.nullable.se"


async def validate(request: AdmissionRequest) -> Verdict:
    content = (request.object.get("spec") or {}).get("content", "")
    size = len(str(content).encode())
    if size > MAX_CONTENT_BYTES:
        return deny(f"spec.content is {size} bytes; a ConfigMap holds at most {MAX_CONTENT_BYTES}")
    return allow()


def build_webhooks() -> Webhooks:
    webhooks = Webhooks()
    webhooks.validating(
        VALIDATE_PATH,
        validate,
        name=WEBHOOK_NAME,
        rules=[WebhookRule(("nullable.se",), ("v1",), ("configmapgenerators",))],
    )
    return webhooks
