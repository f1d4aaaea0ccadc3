"""Serving one review: parse, run the handler within its deadline, answer, count, trace, log.

Guarantees for every request to a webhook path:

* an invalid body (not JSON, wrong ``apiVersion``/``kind``, no ``request``/``uid``, a mistyped
  field) gets HTTP 400 with a ``Status`` body naming the :class:`ReviewError` reason; the server
  keeps serving;
* a valid review always gets HTTP 200 with the request's ``uid`` echoed, never a 500 or a
  traceback: a handler that raises is a denial (admission, ``status.code`` 500) or a ``Failure``
  result (conversion) whose message is the exception's type and text, counted in
  ``controller_runtime_webhook_panics_total``/``controller_runtime_conversion_webhook_panics_total``
  and logged with its traceback;
* with a codec, an object it cannot decode (e.g. one that does not fit a model) is refused:
  denied with ``status.code`` 422 and the decoder's message, counted as ``denied`` (the object is
  invalid; the handler never ran, so it is no panic);
* the handler runs at most until the answer deadline, :func:`answer_deadline` of the webhook's
  ``timeout_seconds``, and is then cancelled; the answer leaves before the API server gives up.
  A timed-out admission review is answered the way the API server would apply the webhook's
  ``failurePolicy`` (``Fail``: denied with code 504; ``Ignore``: allowed with a warning), so
  choosing ``Ignore`` keeps its meaning; a timed-out conversion is a ``Failure``. Pitfall: a
  handler blocked where cancellation cannot reach it (``anyio.to_thread.run_sync`` without
  ``abandon_on_cancel=True``, a shielded scope) is answered only when it returns, after the API
  server gave up; it is still answered and counted as a timeout.

Each review runs in an OpenTelemetry span (``admission review``/``conversion review``) and with
``review.uid`` and ``object.ref`` bound as structlog context variables (a conversion binds each
object's while converting it, and its error log names the object that failed), so the handler's
own log lines carry them (``configure_logging`` merges context variables).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import orjson
import structlog
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue
from starlette.requests import Request
from starlette.responses import Response

from kube_runtime.client.redact import redact
from kube_runtime.client.tracing import record_failure
from kube_runtime.observe.tracing import TRACER_NAME
from kube_runtime.webhooks.handlers import AdmissionWebhook, ChangeCodec, ConversionWebhook, Mutation, Verdict
from kube_runtime.webhooks.jsonpatch import diff
from kube_runtime.webhooks.metrics import WebhookMetrics
from kube_runtime.webhooks.review import (
    AdmissionRequest,
    ReviewError,
    admission_response,
    conversion_response,
    parse_admission_review,
    parse_conversion_review,
)

__all__ = ["admission_endpoint", "answer_deadline", "conversion_endpoint", "review_admission"]

log = structlog.get_logger("kube_runtime.webhooks")
_tracer = trace.get_tracer(TRACER_NAME)
Endpoint = Callable[[Request], Awaitable[Response]]


def answer_deadline(timeout_seconds: float) -> float:
    """Seconds a handler may run: the webhook's timeout less a margin for the answer's trip
    (10 % of it, at least 0.25 s, at most 1 s)."""
    return timeout_seconds - min(1.0, max(0.25, timeout_seconds * 0.1))


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _object_ref(kind: Any, namespace: str, name: str) -> str:
    kind_name = kind.get("kind", "") if isinstance(kind, dict) else ""
    group = kind.get("group", "") if isinstance(kind, dict) else ""
    version = kind.get("version", "") if isinstance(kind, dict) else ""
    ns = f".{namespace}" if namespace else ""
    return f"{kind_name}.{version}.{group}/{name}{ns}"


def _error_text(exc: BaseException) -> str:
    """What a denial or a conversion failure says of a handler's exception (redacted: the API
    server hands it to the client that made the request)."""
    text = redact(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _run_admission(hook: AdmissionWebhook, request: AdmissionRequest) -> dict[str, Any]:
    """The handler's answer as an ``AdmissionReview`` (raises what the handler raises)."""
    handed = request
    if hook.codec is not None:
        decode = hook.codec.decode
        try:
            handed = request.replace_objects(
                None if request.object is None else decode(request.object),
                None if request.old_object is None else decode(request.old_object),
            )
        except Exception as exc:  # the object, not the handler, is at fault: refuse it
            log.info("admission object does not fit the webhook's codec", webhook=hook.path, error=str(exc))
            return admission_response(
                request.uid, allowed=False, message=str(exc), code=422, reason="Invalid"
            )
    snapshot: Any = None
    if hook.kind == "mutating" and request.object is not None:
        original = copy.deepcopy(request.object)
        if isinstance(hook.codec, ChangeCodec):
            snapshot = hook.codec.snapshot(handed.object)
    result = await hook.handler(handed)
    if isinstance(result, Verdict):
        return admission_response(
            request.uid,
            allowed=result.allowed,
            message=result.reason,
            code=None if result.allowed else result.code,
            warnings=result.warnings,
        )
    if hook.kind == "validating":
        raise TypeError(f"a validator must return a Verdict (allow()/deny()), got {type(result).__name__}")
    warnings: tuple[str, ...] = ()
    if isinstance(result, Mutation):
        result, warnings = result.object, result.warnings
    if result is None or request.object is None:
        return admission_response(request.uid, allowed=True, warnings=warnings)
    if isinstance(hook.codec, ChangeCodec):
        changed = hook.codec.encode_change(original, snapshot, result)
    else:
        changed = hook.codec.encode(result) if hook.codec is not None else result
    if not isinstance(changed, dict):
        raise TypeError(f"a mutator must return the changed object, got {type(changed).__name__}")
    return admission_response(request.uid, allowed=True, warnings=warnings, patch=diff(original, changed))


async def review_admission(hook: AdmissionWebhook, metrics: WebhookMetrics, body: bytes) -> tuple[int, Any]:
    """Answer one admission review body: ``(http status, response body)``. Never raises for
    anything the handler or the body does (cancellation of the caller still propagates)."""
    try:
        request = parse_admission_review(body)
    except ReviewError as exc:
        log.warning("invalid admission review", webhook=hook.path, reason=exc.reason, error=exc.message)
        return 400, exc.to_body()
    ref = _object_ref(request.kind, request.namespace, request.name)
    attributes: dict[str, AttributeValue] = {
        "webhook": hook.path,
        "review.uid": request.uid,
        "object.ref": ref,
        "operation": request.operation,
        "dry_run": request.dry_run,
    }
    with (
        _tracer.start_as_current_span("admission review", attributes=attributes) as span,
        structlog.contextvars.bound_contextvars(**{"review.uid": request.uid, "object.ref": ref}),
    ):
        answer: dict[str, Any] | None = None
        outcome = "error"
        with anyio.move_on_after(answer_deadline(hook.timeout_seconds)) as deadline:
            try:
                answer = await _run_admission(hook, request)
            except Exception as exc:
                metrics.panics.inc()
                record_failure(span, exc)
                log.exception("admission handler raised", webhook=hook.path)
                answer = admission_response(request.uid, allowed=False, message=_error_text(exc), code=500)
            else:
                outcome = "allowed" if answer["response"]["allowed"] else "denied"
        if deadline.cancel_called:  # past the deadline, whatever the handler did after it
            answer = None
        if answer is None:
            outcome = "timeout"
            limit = answer_deadline(hook.timeout_seconds)
            text = f"webhook handler did not answer within {limit:g}s"
            log.warning("admission handler timed out", webhook=hook.path, deadline=limit)
            span.set_status(trace.StatusCode.ERROR, text)
            if hook.failure_policy == "Ignore":
                answer = admission_response(request.uid, allowed=True, warnings=[f"{text} (ignored)"])
            else:
                answer = admission_response(request.uid, allowed=False, message=text, code=504)
        span.set_attribute("allowed", answer["response"]["allowed"])
        metrics.results.labels(hook.path, outcome).inc()
        if outcome == "denied":
            reason = answer["response"]["status"].get("message")
            log.info("admission denied", webhook=hook.path, reason=reason)
        else:
            log.debug("admission reviewed", webhook=hook.path, outcome=outcome)
        return 200, answer


async def _convert_all(hook: ConversionWebhook, objects: list[dict[str, Any]], desired: str) -> list[Any]:
    converted: list[Any] = []
    for obj in objects:
        if obj.get("apiVersion") == desired:  # kube-apiserver only sends others; pass through
            converted.append(obj)
            continue
        metadata = obj.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        version = str(obj.get("apiVersion", ""))
        kind = {
            "kind": obj.get("kind", ""),
            "group": version.rpartition("/")[0],
            "version": version.rpartition("/")[2],
        }
        ref = _object_ref(kind, str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))
        # bound until the next object or the end of the review, so an error log names it too
        structlog.contextvars.bind_contextvars(**{"object.ref": ref})
        value = hook.codec.decode(obj) if hook.codec is not None else obj
        result = await hook.handler(value, desired)
        out = hook.codec.encode(result) if hook.codec is not None else result
        if not isinstance(out, dict):
            raise TypeError(f"a converter must return the converted object, got {type(out).__name__}")
        if out.get("apiVersion") != desired or out.get("kind") != obj.get("kind"):
            raise ValueError(
                f"converter returned apiVersion {out.get('apiVersion')!r} kind {out.get('kind')!r}, "
                f"expected {desired!r} {obj.get('kind')!r}"
            )
        converted.append(out)
    return converted


async def review_conversion(hook: ConversionWebhook, metrics: WebhookMetrics, body: bytes) -> tuple[int, Any]:
    """Answer one conversion review body: ``(http status, response body)``; never raises for
    anything the handler or the body does."""
    try:
        request = parse_conversion_review(body)
    except ReviewError as exc:
        log.warning("invalid conversion review", webhook=hook.path, reason=exc.reason, error=exc.message)
        return 400, exc.to_body()
    attributes: dict[str, AttributeValue] = {
        "webhook": hook.path,
        "review.uid": request.uid,
        "desired_api_version": request.desired_api_version,
        "objects": len(request.objects),
    }
    with (
        _tracer.start_as_current_span("conversion review", attributes=attributes) as span,
        structlog.contextvars.bound_contextvars(**{"review.uid": request.uid, "object.ref": ""}),
    ):
        answer: dict[str, Any] | None = None
        outcome = "error"
        with anyio.move_on_after(answer_deadline(hook.timeout_seconds)) as deadline:
            try:
                converted = await _convert_all(hook, list(request.objects), request.desired_api_version)
            except Exception as exc:
                metrics.conversion_panics.inc()
                record_failure(span, exc)
                log.exception("conversion handler raised", webhook=hook.path)
                answer = conversion_response(request.uid, failure=_error_text(exc))
            else:
                outcome = "converted"
                answer = conversion_response(request.uid, converted=converted)
        if deadline.cancel_called:  # past the deadline, whatever the handler did after it
            answer = None
        if answer is None:
            outcome = "timeout"
            text = f"conversion did not finish within {answer_deadline(hook.timeout_seconds):g}s"
            log.warning("conversion handler timed out", webhook=hook.path)
            span.set_status(trace.StatusCode.ERROR, text)
            answer = conversion_response(request.uid, failure=text)
        metrics.results.labels(hook.path, outcome).inc()
        return 200, answer


def _endpoint(
    path: str, metrics: WebhookMetrics, review: Callable[[bytes], Awaitable[tuple[int, Any]]]
) -> Endpoint:
    in_flight = metrics.in_flight.labels(path)
    latency = metrics.latency.labels(path)

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        status = 500  # what is counted if reading the body fails (the client went away)
        in_flight.inc()
        try:
            content_type = request.headers.get("content-type", "application/json")
            if content_type.split(";")[0].strip() != "application/json":
                err = ReviewError(
                    "UnsupportedMediaType", f"content type must be application/json, got {content_type!r}"
                )
                status, body = 400, err.to_body()
            else:
                status, body = await review(await request.body())
            return _json(body, status)
        finally:
            in_flight.dec()
            latency.observe(time.perf_counter() - started)
            metrics.requests.labels(str(status), path).inc()

    return endpoint


def admission_endpoint(hook: AdmissionWebhook, metrics: WebhookMetrics) -> Endpoint:
    """The Starlette endpoint serving ``hook``."""

    async def review(body: bytes) -> tuple[int, Any]:
        return await review_admission(hook, metrics, body)

    return _endpoint(hook.path, metrics, review)


def conversion_endpoint(hook: ConversionWebhook, metrics: WebhookMetrics) -> Endpoint:
    """The Starlette endpoint serving ``hook``."""

    async def review(body: bytes) -> tuple[int, Any]:
        return await review_conversion(hook, metrics, body)

    return _endpoint(hook.path, metrics, review)
