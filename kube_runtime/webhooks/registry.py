"""The set of webhooks one process serves, registered by path.

``Webhooks`` is the one object an operator builds: register handlers on it, serve it with
:class:`~kube_runtime.webhooks.server.WebhookServer` (or mount :meth:`Webhooks.routes` in any
Starlette app), and generate the API server configurations from it
(:mod:`kube_runtime.webhooks.config`), so paths, rules and timeouts cannot drift apart.

Guarantees: paths are unique (registering a second handler at a path raises ``ValueError``);
``timeout_seconds`` is within the API server's 1-30; names are validated enough to catch the
classic mistake of a one- or two-segment name (the API server requires a fully qualified name).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.routing import Route

from kube_runtime.webhooks.app import admission_endpoint, conversion_endpoint
from kube_runtime.webhooks.handlers import (
    AdmissionWebhook,
    Codec,
    ConversionWebhook,
    Converter,
    FailurePolicy,
    MatchPolicy,
    Mutator,
    SideEffects,
    Validator,
    WebhookRule,
)
from kube_runtime.webhooks.metrics import webhook_metrics

__all__ = ["Webhooks"]


def _check_path(path: str) -> None:
    if not path.startswith("/") or " " in path or "?" in path:
        raise ValueError(f"webhook path must be an absolute URL path, got {path!r}")


def _check_timeout(timeout_seconds: int) -> None:
    if not 1 <= timeout_seconds <= 30:
        raise ValueError(f"timeout_seconds must be 1..30 (the API server's range), got {timeout_seconds}")


class Webhooks:
    """Admission and conversion webhooks served by one process.

    ``registry`` is where the metrics go (default: the global registry).
    """

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.metrics = webhook_metrics(registry)
        self._admission: dict[str, AdmissionWebhook] = {}
        self._conversion: dict[str, ConversionWebhook] = {}

    @property
    def admission(self) -> Sequence[AdmissionWebhook]:
        return list(self._admission.values())

    @property
    def conversion(self) -> Sequence[ConversionWebhook]:
        return list(self._conversion.values())

    def _claim(self, path: str) -> None:
        _check_path(path)
        if path in self._admission or path in self._conversion:
            raise ValueError(f"a webhook is already registered at {path!r}")

    def _add_admission(self, hook: AdmissionWebhook) -> AdmissionWebhook:
        self._claim(hook.path)
        _check_timeout(hook.timeout_seconds)
        if hook.name.count(".") < 2:
            raise ValueError(f"webhook name must be fully qualified (vwidget.example.com), got {hook.name!r}")
        if not hook.rules:
            raise ValueError(f"webhook {hook.name!r} needs at least one rule")
        self._admission[hook.path] = hook
        self.metrics.register(hook.path, conversion=False)
        return hook

    def validating(
        self,
        path: str,
        handler: Validator,
        *,
        name: str,
        rules: Sequence[WebhookRule],
        failure_policy: FailurePolicy = "Fail",
        side_effects: SideEffects = "None",
        match_policy: MatchPolicy = "Equivalent",
        timeout_seconds: int = 10,
        namespace_selector: dict[str, Any] | None = None,
        object_selector: dict[str, Any] | None = None,
        codec: Codec[Any] | None = None,
    ) -> AdmissionWebhook:
        """Serve ``handler`` as the validating webhook ``name`` at ``path``."""
        return self._add_admission(
            AdmissionWebhook(
                name=name,
                path=path,
                kind="validating",
                handler=handler,
                rules=tuple(rules),
                failure_policy=failure_policy,
                side_effects=side_effects,
                match_policy=match_policy,
                timeout_seconds=timeout_seconds,
                namespace_selector=namespace_selector,
                object_selector=object_selector,
                codec=codec,
            )
        )

    def mutating(
        self,
        path: str,
        handler: Mutator,
        *,
        name: str,
        rules: Sequence[WebhookRule],
        failure_policy: FailurePolicy = "Fail",
        side_effects: SideEffects = "None",
        match_policy: MatchPolicy = "Equivalent",
        timeout_seconds: int = 10,
        namespace_selector: dict[str, Any] | None = None,
        object_selector: dict[str, Any] | None = None,
        codec: Codec[Any] | None = None,
    ) -> AdmissionWebhook:
        """Serve ``handler`` as the mutating webhook ``name`` at ``path``."""
        return self._add_admission(
            AdmissionWebhook(
                name=name,
                path=path,
                kind="mutating",
                handler=handler,
                rules=tuple(rules),
                failure_policy=failure_policy,
                side_effects=side_effects,
                match_policy=match_policy,
                timeout_seconds=timeout_seconds,
                namespace_selector=namespace_selector,
                object_selector=object_selector,
                codec=codec,
            )
        )

    def converter(
        self,
        path: str,
        handler: Converter,
        *,
        crd: str,
        timeout_seconds: int = 10,
        codec: Codec[Any] | None = None,
    ) -> ConversionWebhook:
        """Serve ``handler`` as the conversion webhook of the CRD named ``crd`` at ``path``.

        The API server gives conversion webhooks a fixed 30 s; ``timeout_seconds`` is how long
        the runtime lets the handler run for one review before answering ``Failure``."""
        self._claim(path)
        _check_timeout(timeout_seconds)
        if "." not in crd:
            raise ValueError(f"crd must be the CRD's name <plural>.<group>, got {crd!r}")
        hook = ConversionWebhook(crd, path, handler, timeout_seconds, codec)
        self._conversion[path] = hook
        self.metrics.register(path, conversion=True)
        return hook

    def routes(self) -> list[Route]:
        """One POST route per registered webhook (mount them in any Starlette app)."""
        routes = [
            Route(hook.path, admission_endpoint(hook, self.metrics), methods=["POST"])
            for hook in self._admission.values()
        ]
        routes += [
            Route(hook.path, conversion_endpoint(hook, self.metrics), methods=["POST"])
            for hook in self._conversion.values()
        ]
        return routes
