"""Admission and conversion webhooks: handlers as coroutines, served over TLS, configured from code.

* :class:`Webhooks` registers validators, mutators and converters by path;
* :class:`WebhookServer` serves them over TLS with certificates reloaded on rotation;
* :mod:`kube_runtime.webhooks.config` generates the ``ValidatingWebhookConfiguration``,
  ``MutatingWebhookConfiguration`` and CRD ``conversion`` stanza from the same registrations.
"""

from kube_runtime.webhooks.handlers import (
    AdmissionWebhook,
    ChangeCodec,
    Codec,
    ConversionWebhook,
    Mutation,
    Verdict,
    WebhookRule,
    allow,
    deny,
)
from kube_runtime.webhooks.registry import Webhooks
from kube_runtime.webhooks.review import AdmissionRequest, ConversionRequest, ReviewError

__all__ = [
    "AdmissionRequest",
    "AdmissionWebhook",
    "ChangeCodec",
    "Codec",
    "ConversionRequest",
    "ConversionWebhook",
    "Mutation",
    "ReviewError",
    "Verdict",
    "WebhookRule",
    "Webhooks",
    "allow",
    "deny",
]
