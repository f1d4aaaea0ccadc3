"""Retry policy decisions, and the retry driver on the virtual clock."""

from __future__ import annotations

import email.utils
from typing import Any

import anyio
import httpx
import pytest

from kube_runtime.client.retry import RetryPolicy, is_idempotent, parse_retry_after, send_with_retries
from kube_runtime.testing.clock import virtual_clock_backend

pytestmark = pytest.mark.usefixtures("anyio_backend")


@pytest.fixture
def anyio_backend() -> Any:
    return virtual_clock_backend()


def test_backoff_doubles_from_5ms_and_is_bounded() -> None:
    policy = RetryPolicy()
    delays = [policy.delay(n, method="GET", status=503) for n in range(1, 10)]
    assert delays[:8] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64])
    assert delays[8] is None  # max_retries = 8
    capped = RetryPolicy(max_retries=30, max_backoff=2.0)
    assert capped.delay(20, method="GET", status=503) == 2.0


def test_only_429_503_504_are_retried() -> None:
    policy = RetryPolicy()
    for status in (400, 401, 403, 404, 409, 410, 422, 500, 502):
        assert policy.delay(1, method="GET", status=status) is None
    for status in (429, 503, 504):
        assert policy.delay(1, method="GET", status=status) is not None


def test_retry_after_wins_when_later_and_is_capped() -> None:
    policy = RetryPolicy(max_retry_after=60)
    assert policy.delay(1, method="GET", status=429, retry_after=3) == 3
    assert policy.delay(1, method="GET", status=429, retry_after=0) == 0.005
    assert policy.delay(1, method="GET", status=503, retry_after=3600) == 60


def test_non_idempotent_requests_are_retried_only_after_429() -> None:
    policy = RetryPolicy()
    assert policy.delay(1, method="POST", status=503) is None
    assert policy.delay(1, method="POST", status=504) is None
    assert policy.delay(1, method="POST", status=429) is not None  # rejected before it ran
    assert policy.delay(1, method="PATCH", status=503, content_type="application/json-patch+json") is None
    assert (
        policy.delay(1, method="PATCH", status=503, content_type="application/merge-patch+json") is not None
    )
    assert (
        policy.delay(1, method="PATCH", status=503, content_type="application/apply-patch+yaml") is not None
    )


def test_idempotency_table() -> None:
    assert all(is_idempotent(m) for m in ("GET", "HEAD", "PUT", "DELETE"))
    assert not is_idempotent("POST")
    assert not is_idempotent("PATCH", "application/json-patch+json; charset=utf-8")
    assert is_idempotent("PATCH", "application/strategic-merge-patch+json")


def test_never() -> None:
    assert RetryPolicy.never().delay(1, method="GET", status=503) is None


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("7") == 7
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0
    assert parse_retry_after("soon") is None
    stamp = email.utils.formatdate(1_000_030, usegmt=True)
    assert parse_retry_after(stamp, wall_clock=lambda: 1_000_000) == pytest.approx(30)
    assert parse_retry_after(stamp, wall_clock=lambda: 2_000_000) == 0


def _responses(*specs: tuple[int, dict[str, str]]) -> tuple[list[httpx.Response], Any]:
    responses = [httpx.Response(status, headers=headers) for status, headers in specs]
    queue = list(responses)

    async def send() -> httpx.Response:
        return queue.pop(0)

    return responses, send


async def test_driver_sleeps_retry_after_then_returns_the_success() -> None:
    responses, send = _responses((503, {"Retry-After": "2"}), (429, {"Retry-After": "5"}), (200, {}))
    retries: list[tuple[int, int, float]] = []
    started = anyio.current_time()
    response = await send_with_retries(
        send, RetryPolicy(), method="GET", on_retry=lambda a, s, d: retries.append((a, s, d))
    )
    assert response is responses[2]
    assert retries == [(1, 503, 2.0), (2, 429, 5.0)]
    assert anyio.current_time() - started == pytest.approx(7.0)
    assert responses[0].is_closed
    assert responses[1].is_closed


async def test_driver_gives_up_after_max_retries_and_returns_the_last_failure() -> None:
    _, send = _responses(*[(503, {})] * 4)
    retries: list[int] = []
    response = await send_with_retries(
        send, RetryPolicy(max_retries=3), method="GET", on_retry=lambda a, s, d: retries.append(a)
    )
    assert response.status_code == 503
    assert retries == [1, 2, 3]


async def test_driver_does_not_retry_a_post_after_503() -> None:
    _, send = _responses((503, {}), (200, {}))
    response = await send_with_retries(send, RetryPolicy(), method="POST")
    assert response.status_code == 503
