"""Retrying requests the server turned away: 429, 503, 504 (kube-rs's ``RetryPolicy::server_retry``).

The delay before retry *n* (1-based) is ``initial_backoff * factor**(n-1)`` capped at
``max_backoff`` (kube-rs: 5 ms doubling), or the server's ``Retry-After`` when that is later
(itself capped at ``max_retry_after`` so a hostile header cannot park a client for hours). Attempts
are bounded by ``max_retries`` (8 here, 15 in kube-rs: past a few seconds the caller's own backoff,
e.g. the watcher's, is the better place to wait).

Only replayable requests are retried: bodies are always held in memory here, and the method must be
idempotent (GET, HEAD, PUT, DELETE, and PATCH except JSON Patch), except after a 429, which the API
server sends only for requests it rejected before running them (max-in-flight and priority-and-
fairness filters), so a 429'd POST is safe to send again. Transport failures are not retried here:
whether a write reached the server is unknown, and reads are retried by their callers with backoff.
That includes a request that missed its overall deadline (``ClientConfig.request_timeout``,
:class:`~kube_runtime.client.errors.RequestTimeout`), an idempotent GET too, as in client-go: the
deadline covers every attempt and wait, so no budget is left for another one.

:func:`send_with_retries` drives a send function under a policy on the loop clock (``anyio.sleep``).
Given the request's deadline, it makes no retry whose wait would end at or past it: the caller gets
the server's last answer (a 429 with its ``Retry-After``, say) instead of a timeout after a wait
that could not have led anywhere.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import httpx

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "parse_retry_after",
    "send_with_retries",
]

RETRYABLE_STATUSES = frozenset({429, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to wait before sending a rejected request again."""

    max_retries: int = 8
    initial_backoff: float = 0.005
    factor: float = 2.0
    max_backoff: float = 30.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = RETRYABLE_STATUSES

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_retries=0)

    def delay(
        self,
        attempt: int,
        *,
        method: str,
        status: int,
        retry_after: float | None = None,
        content_type: str | None = None,
    ) -> float | None:
        """Seconds to wait before retrying after ``attempt`` (1-based) got ``status``; ``None``:
        do not retry (status not retryable, request not replayable, or attempts exhausted)."""
        if attempt > self.max_retries or status not in self.statuses:
            return None
        if status != 429 and not is_idempotent(method, content_type):
            return None
        backoff = min(self.max_backoff, self.initial_backoff * self.factor ** (attempt - 1))
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, self.max_retry_after))
        return backoff


def is_idempotent(method: str, content_type: str | None = None) -> bool:
    """Whether sending the request twice has the effect of sending it once."""
    if method in IDEMPOTENT_METHODS:
        return True
    return method == "PATCH" and (content_type or "").split(";")[0].strip() != JSON_PATCH


def parse_retry_after(value: str | None, *, wall_clock: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` if absent or
    unparseable; never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - wall_clock())


async def send_with_retries(
    send: Callable[[], Awaitable[httpx.Response]],
    policy: RetryPolicy,
    *,
    method: str,
    content_type: str | None = None,
    on_retry: Callable[[int, int, float], None] | None = None,
    deadline: float | None = None,
) -> httpx.Response:
    """Call ``send`` until its response is not retryable; return that response.

    A retried response is closed before sleeping. ``on_retry(attempt, status, delay)`` runs before
    each sleep (for span events and metrics). ``deadline`` (loop clock, ``anyio.current_time()``):
    a retry whose wait would end at or past it is not made, the response is returned instead.
    """
    attempt = 0
    while True:
        response = await send()
        attempt += 1
        status = response.status_code
        if status < 400:
            return response
        delay = policy.delay(
            attempt,
            method=method,
            status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            content_type=content_type,
        )
        if delay is None or (deadline is not None and anyio.current_time() + delay >= deadline):
            return response
        await response.aclose()
        if on_retry is not None:
            on_retry(attempt, status, delay)
        await anyio.sleep(delay)
