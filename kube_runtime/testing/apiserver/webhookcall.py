"""One HTTPS call of a webhook as kube-apiserver makes it (shared by admission and conversion).

``post_review`` posts a review to ``clientConfig.url`` (a Service reference needs cluster DNS the
embedded server does not have: a :class:`CallFailed`), verified by ``caBundle``, within
``seconds``, and returns the review's ``response`` after checking the status, the JSON and the
echoed ``uid``. Every failure is a :class:`CallFailed` whose text follows kube-apiserver's
(``Post "<url>": ...``), for the caller's failure policy.
"""

from __future__ import annotations

import base64
import ssl
from typing import Any

import anyio
import httpx
import orjson

__all__ = ["CallFailed", "post_review"]


class CallFailed(Exception):
    """The webhook could not be called or answered something unusable."""


def _context(ca_bundle: str | None) -> ssl.SSLContext:
    if not ca_bundle:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cadata=base64.b64decode(ca_bundle).decode())
    except (ValueError, ssl.SSLError) as exc:
        raise CallFailed(f"invalid caBundle: {exc}") from None


async def post_review(client_config: dict[str, Any], seconds: float, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` (a review) to the webhook of ``client_config``; its ``response``, or
    :class:`CallFailed`."""
    url = client_config.get("url")
    if not url:
        raise CallFailed("the embedded API server cannot reach a Service clientConfig: use clientConfig.url")
    target = f"{url}?timeout={int(seconds)}s"
    try:
        with anyio.fail_after(seconds):
            async with httpx.AsyncClient(verify=_context(client_config.get("caBundle"))) as http:
                response = await http.post(
                    target, content=orjson.dumps(body), headers={"content-type": "application/json"}
                )
    except TimeoutError:
        raise CallFailed(f'Post "{target}": context deadline exceeded') from None
    except httpx.HTTPError as exc:
        raise CallFailed(f'Post "{target}": {exc}') from None
    if response.status_code != 200:
        raise CallFailed(f"expected response status 200, got {response.status_code}: {response.text[:200]}")
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise CallFailed(f"the response is not JSON: {exc}") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("response"), dict):
        raise CallFailed("the response has no response object")
    result: dict[str, Any] = answer["response"]
    if result.get("uid") != body["request"]["uid"]:
        raise CallFailed(f"expected response.uid={body['request']['uid']!r}, got {result.get('uid')!r}")
    return result
