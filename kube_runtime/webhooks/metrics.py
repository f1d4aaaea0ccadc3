"""Webhook metrics under controller-runtime's names and labels, plus the admission outcomes.

controller-runtime's families (same names, labels, help and default buckets):

* ``controller_runtime_webhook_requests_total{code,webhook}``: every HTTP request to a webhook
  path, ``code`` the HTTP status written (``200`` for answered reviews, allowed or not; ``400`` for
  an invalid review body), ``webhook`` the path;
* ``controller_runtime_webhook_requests_in_flight{webhook}``;
* ``controller_runtime_webhook_latency_seconds{webhook}`` (Prometheus' default buckets, as
  controller-runtime leaves them unset);
* ``controller_runtime_webhook_panics_total`` and ``controller_runtime_conversion_webhook_panics_total``
  (no labels): a handler raised.

Because the API server gets HTTP 200 for a denial as for an allowance, controller-runtime's
families cannot tell denials from failures; ``kube_runtime_webhook_admission_results_total
{webhook,result}`` does: ``result`` is ``allowed``, ``denied`` (the handler said no), ``error``
(the handler raised) or ``timeout`` (the handler did not finish in time). Conversion reviews count
``converted`` or ``error``/``timeout`` there too. All series of a webhook exist at zero once it is
registered, so ``rate()`` and ratio alerts work from the first scrape.
``kube_runtime_webhook_certificate_reloads_total{result}`` counts serving certificate reloads
(:mod:`kube_runtime.webhooks.certs`).
"""

from __future__ import annotations

import threading
import weakref
from typing import Final

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ADMISSION_RESULTS", "CONVERSION_RESULTS", "WebhookMetrics", "webhook_metrics"]

ADMISSION_RESULTS: Final = ("allowed", "denied", "error", "timeout")
CONVERSION_RESULTS: Final = ("converted", "error", "timeout")


class WebhookMetrics:
    """The webhook families of one registry; get it with :func:`webhook_metrics`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "controller_runtime_webhook_requests_total",
            "Total number of admission requests by HTTP status code.",
            ["code", "webhook"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "controller_runtime_webhook_requests_in_flight",
            "Current number of admission requests being served.",
            ["webhook"],
            registry=registry,
        )
        self.latency = Histogram(
            "controller_runtime_webhook_latency_seconds",
            "Histogram of the latency of processing admission requests",
            ["webhook"],
            registry=registry,
        )
        self.panics = Counter(
            "controller_runtime_webhook_panics_total",
            "Total number of webhook panics",
            registry=registry,
        )
        self.conversion_panics = Counter(
            "controller_runtime_conversion_webhook_panics_total",
            "Total number of conversion webhook panics",
            registry=registry,
        )
        self.results = Counter(
            "kube_runtime_webhook_admission_results_total",
            "Webhook reviews answered, by outcome: allowed, denied, error (the handler raised), "
            "timeout (the handler did not finish in time), converted.",
            ["webhook", "result"],
            registry=registry,
        )

        self.certificate_reloads = Counter(
            "kube_runtime_webhook_certificate_reloads_total",
            "Serving certificate reloads after its files changed, by result (success, error).",
            ["result"],
            registry=registry,
        )
        for result in ("success", "error"):
            self.certificate_reloads.labels(result)

    def register(self, path: str, *, conversion: bool) -> None:
        """Create the series of the webhook at ``path`` at zero."""
        self.in_flight.labels(path)
        self.latency.labels(path)
        self.requests.labels("200", path)
        for result in CONVERSION_RESULTS if conversion else ADMISSION_RESULTS:
            self.results.labels(path, result)


_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, WebhookMetrics] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def webhook_metrics(registry: CollectorRegistry | None = None) -> WebhookMetrics:
    """The webhook families of ``registry`` (default: the global registry), created once."""
    registry = REGISTRY if registry is None else registry
    with _lock:
        found = _by_registry.get(registry)
        if found is None:
            found = _by_registry[registry] = WebhookMetrics(registry)
        return found
