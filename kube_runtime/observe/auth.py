"""Secure metrics: bearer tokens checked against the API server (controller-runtime's
``WithAuthenticationAndAuthorization`` filter, the job kube-rbac-proxy used to do).

Each scrape's ``Authorization: Bearer <token>`` is sent in a ``TokenReview`` (who is this?), then
the user in a ``SubjectAccessReview`` for the non-resource URL (may they ``get /metrics``?). Grant
it with a ClusterRole rule ``nonResourceURLs: ["/metrics"], verbs: ["get"]``. The controller's
own service account needs ``create`` on ``tokenreviews.authentication.k8s.io`` and
``subjectaccessreviews.authorization.k8s.io`` (the ``system:auth-delegator`` ClusterRole).

Decisions are cached per (token, path, verb) for ``cache_ttl`` seconds (default 60) so a scrape
every 15 s costs the API server two requests a minute per scraper; the cache keeps a hash of the
token, never the token. An API error makes the decision a failure (401/403 are not cached when
the review itself failed). Pitfall: serve secure metrics over TLS (``cert_file``/``key_file``),
otherwise the bearer token crosses the network in clear text.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import structlog

__all__ = ["AuthDecision", "ReviewClient", "TokenReviewAuthorizer"]

log = structlog.get_logger(__name__)

_TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


class ReviewClient(Protocol):
    """The part of ``kube_runtime.client.Client`` the authorizer uses."""

    async def request(
        self, verb: str, method: str, path: str, *, body: Any = None
    ) -> dict[str, Any]: ...  # pragma: no cover - protocol


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """``status`` is the HTTP status to answer with when not ``allowed`` (401 or 403)."""

    allowed: bool
    status: int
    reason: str
    user: str = ""


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header, else ``None``."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class TokenReviewAuthorizer:
    """Authenticates and authorizes bearer tokens with the API server (see the module docs)."""

    def __init__(self, client: ReviewClient, *, cache_ttl: float = 60.0, cache_size: int = 1024) -> None:
        self.client = client
        self.cache_ttl = cache_ttl
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple[str, str, str], tuple[float, AuthDecision]] = OrderedDict()

    async def authorize(self, token: str | None, *, path: str, verb: str = "get") -> AuthDecision:
        if token is None:
            return AuthDecision(False, 401, "missing bearer token")
        key = (hashlib.sha256(token.encode()).hexdigest(), path, verb)
        now = anyio.current_time()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(key)
            return cached[1]
        try:
            decision = await self._review(token, path=path, verb=verb)
        except Exception as exc:  # API server unreachable or refusing: deny, do not cache
            log.warning("metrics auth review failed", error=str(exc))
            return AuthDecision(False, 401, f"token review failed: {type(exc).__name__}")
        self._cache[key] = (now + self.cache_ttl, decision)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return decision

    async def _review(self, token: str, *, path: str, verb: str) -> AuthDecision:
        review = await self.client.request(
            "create",
            "POST",
            _TOKEN_REVIEWS,
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}},
        )
        status = review.get("status") or {}
        if not status.get("authenticated"):
            return AuthDecision(False, 401, str(status.get("error") or "token not authenticated"))
        user = status.get("user") or {}
        username = str(user.get("username", ""))
        spec: dict[str, Any] = {
            "user": username,
            "groups": list(user.get("groups") or []),
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        if user.get("uid"):
            spec["uid"] = user["uid"]
        if user.get("extra"):
            spec["extra"] = user["extra"]
        access = await self.client.request(
            "create",
            "POST",
            _ACCESS_REVIEWS,
            body={"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        )
        access_status = access.get("status") or {}
        if not access_status.get("allowed"):
            reason = str(access_status.get("reason") or f"user {username!r} may not {verb} {path}")
            return AuthDecision(False, 403, reason, username)
        return AuthDecision(True, 200, "allowed", username)
