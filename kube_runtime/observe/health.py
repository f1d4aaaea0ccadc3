"""Readiness and liveness checks, served controller-runtime style.

A check is a callable (sync or async) returning ``None`` when healthy or a short reason when not;
an exception also counts as a failure. :class:`HealthChecks` holds the named ``readyz`` and
``livez`` checks and renders the endpoints the way controller-runtime's healthz handler does:

* ``GET /readyz`` (and ``/livez``): ``200 ok`` when every check passes. ``?verbose`` lists each
  check as ``[+]name ok``; a failure always gets the verbose listing, with ``[-]name failed:
  reason`` lines, ending in ``readyz check failed``. ``?exclude=name`` (repeatable) skips checks;
  unknown names are reported as a ``warn:`` line.
* ``GET /readyz/<name>``: that one check; 404 for an unknown name.
* ``/healthz`` is an alias of ``/livez`` (controller-runtime's liveness path).

Failures answer **503 Service Unavailable**, not controller-runtime's 500: kubelet treats any
status outside 200-399 as a failed probe, and 503 tells load balancers and humans "not ready
yet" rather than "the server crashed". Unlike the API server, the failure reason is shown, not
withheld: these checks carry no secrets (store names, idle times) and the reason is what an
operator running ``curl`` needs. With no check registered, a built-in ``ping`` check passes.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

import anyio
import structlog
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

__all__ = ["Check", "CheckResult", "HealthChecks", "Probe", "store_ready_check"]

log = structlog.get_logger(__name__)

#: ``None`` (or ``True``) means healthy; a string (or ``False``) is the failure reason.
CheckOutcome = str | bool | None
Check = Callable[[], CheckOutcome | Awaitable[CheckOutcome]]
Probe = Literal["readyz", "livez"]


class _ReadyStore(Protocol):
    def is_ready(self) -> bool: ...


def store_ready_check(store: _ReadyStore) -> Check:
    """A readiness check that passes once ``store`` has completed its first list."""

    def check() -> str | None:
        return None if store.is_ready() else "store has not completed its initial list"

    return check


def _ping() -> None:
    return None


_PING: dict[str, Check] = {"ping": _ping}


class CheckResult:
    """The outcome of one check: ``name``, ``ok`` and the failure ``reason`` (``""`` when ok)."""

    __slots__ = ("name", "ok", "reason")

    def __init__(self, name: str, ok: bool, reason: str = "") -> None:
        self.name = name
        self.ok = ok
        self.reason = reason

    def line(self) -> str:
        return f"[+]{self.name} ok" if self.ok else f"[-]{self.name} failed: {self.reason}"


async def _run_check(name: str, check: Check, limit: float) -> CheckResult:
    try:
        with anyio.fail_after(limit):
            outcome = check()
            if inspect.isawaitable(outcome):
                outcome = await outcome
    except TimeoutError:
        return CheckResult(name, False, f"timed out after {limit:g}s")
    except Exception as exc:  # a crashing check is a failing check, never a 500 from the server
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}")
    if outcome is None or outcome is True:
        return CheckResult(name, True)
    reason = "check failed" if outcome is False else str(outcome)
    return CheckResult(name, False, reason)


class HealthChecks:
    """Named readiness and liveness checks, and the Starlette routes that serve them.

    ``timeout`` bounds each check run by a probe (a stuck check fails instead of hanging the
    probe). Checks run one after another on every probe; keep them cheap.
    """

    def __init__(self, *, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self._checks: dict[Probe, dict[str, Check]] = {"readyz": {}, "livez": {}}

    def add_readyz(self, name: str, check: Check) -> None:
        self._add("readyz", name, check)

    def add_livez(self, name: str, check: Check) -> None:
        self._add("livez", name, check)

    def add_store(self, name: str, store: _ReadyStore) -> None:
        """Ready once ``store`` completed its first list (check name ``name``)."""
        self.add_readyz(name, store_ready_check(store))

    def _add(self, probe: Probe, name: str, check: Check) -> None:
        if not name or "/" in name:
            raise ValueError(f"invalid check name {name!r}")
        if name in self._checks[probe]:
            raise ValueError(f"{probe} check {name!r} already registered")
        self._checks[probe][name] = check

    def remove(self, probe: Probe, name: str) -> None:
        self._checks[probe].pop(name, None)

    def names(self, probe: Probe) -> list[str]:
        return list(self._checks[probe])

    async def run(self, probe: Probe, *, exclude: frozenset[str] = frozenset()) -> list[CheckResult]:
        """Run every ``probe`` check except ``exclude``, in registration order."""
        checks = self._checks[probe] or _PING
        return [
            await _run_check(name, check, self.timeout)
            for name, check in checks.items()
            if name not in exclude
        ]

    async def _aggregate(self, request: Request, probe: Probe) -> Response:
        excluded = frozenset(request.query_params.getlist("exclude"))
        results = await self.run(probe, exclude=excluded)
        failed = [r for r in results if not r.ok]
        verbose = "verbose" in request.query_params
        if not failed and not verbose:
            return PlainTextResponse("ok")
        lines = [r.line() for r in results]
        unknown = sorted(excluded - set(self._checks[probe] or _PING))
        if unknown:
            lines.append(f"warn: some health checks cannot be excluded: no matches for {', '.join(unknown)}")
        if failed:
            log.info(f"{probe} check failed", failed={r.name: r.reason for r in failed})
            lines.append(f"{probe} check failed")
            return PlainTextResponse("\n".join(lines) + "\n", status_code=503)
        lines.append(f"{probe} check passed")
        return PlainTextResponse("\n".join(lines) + "\n")

    async def _single(self, request: Request, probe: Probe) -> Response:
        name = request.path_params["name"]
        checks = self._checks[probe] or _PING
        check = checks.get(name)
        if check is None:
            return PlainTextResponse(f"no {probe} check named {name!r}\n", status_code=404)
        result = await _run_check(name, check, self.timeout)
        if result.ok:
            return PlainTextResponse("ok")
        return PlainTextResponse(f"internal server error: {result.reason}\n", status_code=503)

    def routes(self) -> list[Route]:
        """``/readyz``, ``/livez`` and ``/healthz``, each with its ``/{name}`` sub-path."""

        def aggregate(probe: Probe) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                return await self._aggregate(request, probe)

            return endpoint

        def single(probe: Probe) -> Callable[[Request], Awaitable[Response]]:
            async def endpoint(request: Request) -> Response:
                return await self._single(request, probe)

            return endpoint

        routes: list[Route] = []
        for path, probe in (("/readyz", "readyz"), ("/livez", "livez"), ("/healthz", "livez")):
            routes.append(Route(path, aggregate(probe), methods=["GET"]))  # type: ignore[arg-type]
            routes.append(Route(path + "/{name}", single(probe), methods=["GET"]))  # type: ignore[arg-type]
        return routes
