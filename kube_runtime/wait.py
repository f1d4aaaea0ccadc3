"""Waiting for one object to reach a condition (kube-rs ``wait.rs``), made resilient.

:func:`await_condition` follows one object by name with :func:`kube_runtime.watcher.watch_object`
and returns the first state that satisfies the condition: the object, or ``None`` when the
condition accepts absence (``is_deleted``). :func:`delete_and_finalize` deletes an object and waits
until that exact incarnation (by uid) is gone, finalizers included.

Differences from kube-rs, each a fix: kube-rs gives up with ``ProbeFailed`` on the first watch
error and has no timeout. Here transport failures and error statuses are retried with exponential
backoff (a 410 relists at once), and ``timeout`` bounds the whole wait, raising
:class:`ConditionTimeout` with the last state seen. A condition that raises propagates unchanged.

Conditions are plain callables ``(object | None) -> bool`` wrapped in :class:`WaitCondition` for the
combinators (``~c`` / ``c.not_()``, ``a & b`` / ``a.and_(b)``, ``a | b`` / ``a.or_(b)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal, Protocol, TypeAlias

import anyio

from kube_runtime.client.errors import ApiError, KubeError, TransportError
from kube_runtime.client.json import KubeObject
from kube_runtime.watcher import Backoff, WatcherError, default_backoff_policy, watch_object
from kube_runtime.watcher.watcher import WatchableApi as WatcherApi

__all__ = [
    "ConditionTimeout",
    "DeletableApi",
    "DeleteFailed",
    "NoUid",
    "WaitCondition",
    "WaitError",
    "WatchableApi",
    "await_condition",
    "conditions",
    "delete_and_finalize",
    "is_crd_established",
    "is_created",
    "is_deleted",
    "is_deployment_completed",
    "is_ingress_provisioned",
    "is_job_completed",
    "is_pod_running",
    "is_service_loadbalancer_provisioned",
]

PropagationPolicy: TypeAlias = Literal["Orphan", "Background", "Foreground"]


WatchableApi = WatcherApi
"""What :func:`await_condition` needs: ``list`` and ``watch`` (see :mod:`kube_runtime.watcher`)."""


class DeletableApi(WatcherApi, Protocol):
    """What :func:`delete_and_finalize` needs: a watchable ``Api`` that can also delete."""

    async def delete(
        self,
        name: str,
        *,
        propagation_policy: PropagationPolicy | None = ...,
        preconditions: dict[str, str] | None = ...,
        grace_period_seconds: int | None = ...,
    ) -> KubeObject: ...


class WaitCondition:
    """A predicate over an object's state (``None`` = the object does not exist)."""

    __slots__ = ("_check", "description")

    def __init__(self, check: Callable[[KubeObject | None], bool], description: str = "") -> None:
        self._check = check
        self.description = description or getattr(check, "__name__", "condition")

    def __call__(self, obj: KubeObject | None) -> bool:
        return bool(self._check(obj))

    def matches_object(self, obj: KubeObject | None) -> bool:
        return self(obj)

    def not_(self) -> WaitCondition:
        return WaitCondition(lambda obj: not self(obj), f"not({self.description})")

    def and_(self, other: Callable[[KubeObject | None], bool]) -> WaitCondition:
        return WaitCondition(
            lambda obj: self(obj) and bool(other(obj)), f"and({self.description}, {_describe(other)})"
        )

    def or_(self, other: Callable[[KubeObject | None], bool]) -> WaitCondition:
        return WaitCondition(
            lambda obj: self(obj) or bool(other(obj)), f"or({self.description}, {_describe(other)})"
        )

    __invert__ = not_
    __and__ = and_
    __or__ = or_

    def __repr__(self) -> str:
        return f"Condition({self.description})"


def _describe(check: Callable[[KubeObject | None], bool]) -> str:
    return check.description if isinstance(check, WaitCondition) else getattr(check, "__name__", "condition")


def _status_conditions(obj: KubeObject | None) -> Iterable[KubeObject]:
    if obj is None:
        return ()
    status = obj.get("status") or {}
    return status.get("conditions") or ()


def _has_condition(
    obj: KubeObject | None, type_: str, status: str = "True", reason: str | None = None
) -> bool:
    return any(
        c.get("type") == type_ and c.get("status") == status and (reason is None or c.get("reason") == reason)
        for c in _status_conditions(obj)
    )


def is_deleted(uid: str) -> WaitCondition:
    """True when the object is absent, or has been replaced by another with a different uid."""
    return WaitCondition(
        lambda obj: obj is None or (obj.get("metadata") or {}).get("uid") != uid, f"is_deleted({uid})"
    )


def is_created() -> WaitCondition:
    return WaitCondition(lambda obj: obj is not None, "is_created")


def is_crd_established() -> WaitCondition:
    return WaitCondition(lambda obj: _has_condition(obj, "Established"), "is_crd_established")


def is_pod_running() -> WaitCondition:
    return WaitCondition(
        lambda obj: obj is not None and (obj.get("status") or {}).get("phase") == "Running", "is_pod_running"
    )


def is_job_completed() -> WaitCondition:
    return WaitCondition(lambda obj: _has_condition(obj, "Complete"), "is_job_completed")


def is_deployment_completed() -> WaitCondition:
    return WaitCondition(
        lambda obj: _has_condition(obj, "Progressing", reason="NewReplicaSetAvailable"),
        "is_deployment_completed",
    )


def _ingress_entries_ready(obj: KubeObject) -> bool:
    ingress = ((obj.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return bool(ingress) and all(entry.get("ip") or entry.get("hostname") for entry in ingress)


def is_service_loadbalancer_provisioned() -> WaitCondition:
    """Services that are not LoadBalancers count as provisioned; otherwise every ingress needs an address."""

    def check(obj: KubeObject | None) -> bool:
        if obj is None:
            return False
        if (obj.get("spec") or {}).get("type") != "LoadBalancer":
            return True
        return _ingress_entries_ready(obj)

    return WaitCondition(check, "is_service_loadbalancer_provisioned")


def is_ingress_provisioned() -> WaitCondition:
    return WaitCondition(
        lambda obj: obj is not None and _ingress_entries_ready(obj), "is_ingress_provisioned"
    )


class conditions:
    """The predefined conditions, for ``conditions.is_pod_running()`` style imports."""

    is_deleted = staticmethod(is_deleted)
    is_created = staticmethod(is_created)
    is_crd_established = staticmethod(is_crd_established)
    is_pod_running = staticmethod(is_pod_running)
    is_job_completed = staticmethod(is_job_completed)
    is_deployment_completed = staticmethod(is_deployment_completed)
    is_service_loadbalancer_provisioned = staticmethod(is_service_loadbalancer_provisioned)
    is_ingress_provisioned = staticmethod(is_ingress_provisioned)


class WaitError(KubeError):
    """Base of the errors raised by :func:`await_condition` and :func:`delete_and_finalize`."""


class ConditionTimeout(WaitError, TimeoutError):
    """The condition did not hold within the timeout. ``last_seen``/``last_error`` say why."""

    def __init__(
        self,
        name: str,
        timeout: float | None,
        last_seen: KubeObject | None,
        seen: bool,
        last_error: Exception | None,
    ) -> None:
        state = "never observed" if not seen else ("absent" if last_seen is None else "present")
        detail = f"; last error: {last_error}" if last_error is not None else ""
        super().__init__(
            f"object {name!r} did not reach the condition within {timeout} s (object {state}{detail})"
        )
        self.name = name
        self.timeout = timeout
        self.last_seen = last_seen
        self.last_error = last_error


class NoUid(WaitError):
    """The delete response carried no uid, so the deleted incarnation cannot be recognized."""


class DeleteFailed(WaitError):
    """The delete request failed; ``__cause__`` is the ``ApiError``/``TransportError``."""

    def __init__(self, cause: KubeError) -> None:
        super().__init__(f"failed to delete object: {cause}")
        self.error = cause
        self.__cause__ = cause


class _Progress:
    __slots__ = ("last_error", "last_seen", "seen")

    def __init__(self) -> None:
        self.seen = False
        self.last_seen: KubeObject | None = None
        self.last_error: Exception | None = None

    def observe(self, obj: KubeObject | None) -> None:
        self.seen = True
        self.last_seen = obj


async def await_condition(
    api: WatchableApi,
    name: str,
    condition: Callable[[KubeObject | None], bool],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 - a documented part of the API
    backoff: Backoff | None = None,
) -> KubeObject | None:
    """Wait until the object called ``name`` satisfies ``condition``; return that state.

    Returns the matching object, or ``None`` if the condition matched absence. Raises
    :class:`ConditionTimeout` after ``timeout`` seconds (``None`` waits forever). API and transport
    errors never end the wait; they are retried after ``backoff`` delays (default: the watcher's
    :func:`~kube_runtime.watcher.default_backoff`) and reported in the timeout error.
    """
    progress = _Progress()
    try:
        with anyio.fail_after(timeout):
            return await _follow(api, name, condition, progress, backoff or default_backoff_policy())
    except TimeoutError as exc:
        if isinstance(exc, ConditionTimeout):
            raise
        raise ConditionTimeout(
            name, timeout, progress.last_seen, progress.seen, progress.last_error
        ) from None


async def _follow(
    api: WatchableApi,
    name: str,
    condition: Callable[[KubeObject | None], bool],
    progress: _Progress,
    policy: Backoff,
) -> KubeObject | None:
    async with watch_object(api, name).backoff(policy) as states:
        async for state in states:
            if isinstance(state, WatcherError):
                progress.last_error = state  # the backoff stage sleeps before the next read
                continue
            progress.observe(state)
            if condition(state):
                return state
    raise AssertionError("watch_object never ends")  # pragma: no cover


async def delete_and_finalize(
    api: DeletableApi,
    name: str,
    *,
    propagation_policy: PropagationPolicy | None = None,
    preconditions: dict[str, str] | None = None,
    grace_period_seconds: int | None = None,
    timeout: float | None = None,  # noqa: ASYNC109 - a documented part of the API
) -> None:
    """Delete ``name`` and wait until that incarnation (by uid) is gone, finalizers included.

    The uid comes from the returned object (still held by finalizers) or ``Status.details.uid``.
    Raises :class:`DeleteFailed` (including 404: nothing to delete), :class:`NoUid`, or
    :class:`ConditionTimeout` (the delete was accepted but finalizers still hold the object).
    """
    try:
        response = await api.delete(
            name,
            propagation_policy=propagation_policy,
            preconditions=preconditions,
            grace_period_seconds=grace_period_seconds,
        )
    except (ApiError, TransportError) as exc:
        raise DeleteFailed(exc) from exc
    uid = (response.get("metadata") or {}).get("uid") if response.get("kind") != "Status" else None
    if not uid:
        uid = (response.get("details") or {}).get("uid")
    if not uid:
        raise NoUid(f"the delete response for {name!r} carried no uid")
    await await_condition(api, name, is_deleted(uid), timeout=timeout)
