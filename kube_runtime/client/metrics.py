"""client-go's REST client metrics, so controller-runtime dashboards and alerts work unchanged.

* ``rest_client_requests_total{code,method,host}``: one per HTTP attempt; ``code`` is the status or
  ``<error>`` when no response came back (client-go's spelling). A non-streaming attempt counts
  once its body is read: one whose body could not be read (the connection broke, the body did not
  decode, the request's deadline passed mid-body) is ``<error>`` too, its caller got no answer
  (client-go counts such an attempt under its status; a body dripping past the deadline would show
  as a success).
* ``rest_client_request_duration_seconds{verb,host}``: time to response headers (or to the
  failure, mid-body included), per attempt, with client-go's buckets. As in client-go, ``verb`` is
  the HTTP method (``GET``, ``PATCH``...); the API verb (``list``, ``watch``...) is on the trace
  span instead.
* ``rest_client_request_retries_total{code,verb,host}``: one per retry the retry layer schedules.

Registration is idempotent per registry: every :class:`ClientMetrics` built for the same registry
shares the same collectors, so many clients (or test cases) can coexist in one process. Label
values are bounded (status codes, methods, one host per cluster).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from kube_runtime.metric_families import PerRegistry

__all__ = ["REQUEST_DURATION_BUCKETS", "TRANSPORT_ERROR_CODE", "ClientMetrics"]

REQUEST_DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
TRANSPORT_ERROR_CODE = "<error>"


class _Collectors:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "rest_client_requests",
            "Number of HTTP requests, partitioned by status code, method, and host.",
            ["code", "method", "host"],
            registry=registry,
        )
        self.duration = Histogram(
            "rest_client_request_duration_seconds",
            "Request latency in seconds. Broken down by verb, and host.",
            ["verb", "host"],
            buckets=REQUEST_DURATION_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "rest_client_request_retries",
            "Number of request retries, partitioned by status code, verb, and host.",
            ["code", "verb", "host"],
            registry=registry,
        )


_collectors: PerRegistry[_Collectors] = PerRegistry(_Collectors)


class ClientMetrics:
    """Records one client's requests; ``host`` is the API server's ``host:port``."""

    __slots__ = ("_duration", "_requests", "_retries", "host")

    def __init__(self, host: str, registry: CollectorRegistry | None = None) -> None:
        collectors = _collectors(registry)
        self.host = host
        self._requests = collectors.requests
        self._duration = collectors.duration
        self._retries = collectors.retries

    def observe(self, method: str, code: int | None, duration: float) -> None:
        """One HTTP attempt: ``code`` is ``None`` when it failed below HTTP."""
        label = TRANSPORT_ERROR_CODE if code is None else str(code)
        self._requests.labels(label, method, self.host).inc()
        self._duration.labels(method, self.host).observe(duration)

    def retry(self, method: str, code: int) -> None:
        """One retry scheduled after status ``code``."""
        self._retries.labels(str(code), method, self.host).inc()
