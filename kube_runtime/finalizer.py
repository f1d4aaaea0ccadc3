"""Finalizer helper for reconcilers (kube-rs ``finalizer.rs``).

:func:`finalizer` wraps a reconcile body so that every object the body ever applied gets a cleanup
before Kubernetes deletes it:

====================  ===========  ==========================================================
our finalizer listed  deleting     what happens
====================  ===========  ==========================================================
yes                   no           ``handler(FinalizerApply(obj))``; its ``Action`` is
                                   returned
yes, at index ``i``   yes          ``handler(FinalizerCleanup(obj))``; on success the
                                   finalizer is removed with ``[test
                                   /metadata/finalizers/i == name, remove
                                   /metadata/finalizers/i]``
no                    no           the finalizer is added with a JSON patch guarded by a
                                   ``test`` of the list as observed; returns
                                   ``Action.await_change()`` (the patch triggers the next
                                   reconcile, which then sees the finalizer and applies)
no                    yes          ``Action.await_change()``; no callback
====================  ===========  ==========================================================

Guarantees: if ``FinalizerApply`` ever started for an object, a ``FinalizerCleanup`` must succeed
before the object can be deleted (a failing cleanup keeps the finalizer, so the object stays
Terminating). Every patch is guarded by ``test`` ops, so a concurrent change to the finalizer list
makes the patch fail with 422 instead of clobbering someone else's finalizer; the error is returned typed
(:class:`AddFinalizer` / :class:`RemoveFinalizer`) and the next reconcile sees the new list. The
patches also test the object's uid: a stale copy of a deleted object never removes (or adds) the
finalizer of a newer object with the same name, whose own cleanup has not run (kube-rs tests only
the list, so it can).

Pitfalls: both callbacks must be idempotent and cancellation-safe (they run again after any
failure or restart). Kubernetes does not deduplicate finalizers (kube-rs #964), which is why adding
tests the whole list rather than blindly appending.

Differences from kube-rs: removing the finalizer from an object that is already gone (404) is
success, not a ``RemoveFinalizer`` error: the object cannot have been deleted while our finalizer
was on it, and the cleanup has just succeeded again. kube-rs guards the "no finalizers yet" add
with ``test == null``, which fails forever against a server that stores an explicit empty list
``[]``. Here the guard tests the list as observed (``null`` when absent, ``[]`` when empty), and
if that exact form is rejected with 422 the other empty form is tried once; both forms only pass
while the list is empty, so the guard stays exact.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from kube_runtime.client.api import PatchType
from kube_runtime.client.errors import ApiError, KubeError
from kube_runtime.client.json import KubeObject
from kube_runtime.client.names import is_qualified_name
from kube_runtime.controller.action import Action

__all__ = [
    "AddFinalizer",
    "ApplyFailed",
    "CleanupFailed",
    "FinalizerApply",
    "FinalizerCleanup",
    "FinalizerError",
    "FinalizerEvent",
    "InvalidFinalizer",
    "PatchableApi",
    "RemoveFinalizer",
    "UnnamedObject",
    "finalizer",
]


@dataclass(frozen=True, slots=True)
class FinalizerApply:
    """The object is live and carries our finalizer: bring the world in line with it."""

    object: KubeObject


@dataclass(frozen=True, slots=True)
class FinalizerCleanup:
    """The object is being deleted: release whatever ``FinalizerApply`` created. Must be idempotent."""

    object: KubeObject


FinalizerEvent: TypeAlias = FinalizerApply | FinalizerCleanup


class PatchableApi(Protocol):
    """The slice of :class:`kube_runtime.client.Api` the helper uses: an ``Api`` (or a
    ``TypedApi``) passes as it is, no cast needed."""

    async def patch(
        self,
        name: str,
        patch: Any,
        *,
        patch_type: PatchType = ...,
        field_manager: str | None = ...,
        force: bool = ...,
    ) -> KubeObject: ...


class FinalizerError(KubeError):
    """Base of every error :func:`finalizer` raises."""


class ApplyFailed(FinalizerError):
    """Handling ``FinalizerApply`` raised; ``__cause__`` is its exception."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"failed to apply object: {cause!r}")
        self.__cause__ = cause


class CleanupFailed(FinalizerError):
    """Handling ``FinalizerCleanup`` raised; the finalizer was kept, so the object stays Terminating."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"failed to clean up object: {cause!r}")
        self.__cause__ = cause


class AddFinalizer(FinalizerError):
    """The add patch failed (422 when the ``test`` guard saw a concurrent change)."""

    def __init__(self, cause: ApiError) -> None:
        super().__init__(f"failed to add finalizer: {cause}")
        self.error = cause
        self.__cause__ = cause


class RemoveFinalizer(FinalizerError):
    """The remove patch failed after a successful cleanup; the cleanup will run again."""

    def __init__(self, cause: ApiError) -> None:
        super().__init__(f"failed to remove finalizer: {cause}")
        self.error = cause
        self.__cause__ = cause


class UnnamedObject(FinalizerError):
    """The object has no ``metadata.name``, so it cannot be patched."""

    def __init__(self) -> None:
        super().__init__("object has no name")


class InvalidFinalizer(FinalizerError):
    """The finalizer name is not a qualified name Kubernetes would accept."""

    def __init__(self, finalizer_name: str) -> None:
        super().__init__(
            f"invalid finalizer {finalizer_name!r}: expected a qualified name such as "
            "'example.com/cleanup' (optional DNS subdomain prefix, name of at most 63 characters)"
        )
        self.finalizer_name = finalizer_name


def _json_pointer_token(index: int) -> str:
    return f"/metadata/finalizers/{index}"


async def finalizer(
    api: PatchableApi,
    finalizer_name: str,
    obj: KubeObject,
    handler: Callable[[FinalizerEvent], Awaitable[Action]],
) -> Action:
    """Run ``handler`` for ``obj`` behind ``finalizer_name`` and return the handler's ``Action``.

    ``api`` must address the object's namespace. Raises :class:`ApplyFailed` /
    :class:`CleanupFailed` when the handler raises (cancellation passes through untouched),
    :class:`AddFinalizer` / :class:`RemoveFinalizer` when a guarded patch fails,
    :class:`UnnamedObject` and :class:`InvalidFinalizer` for unusable input.
    """
    if not is_qualified_name(finalizer_name):
        raise InvalidFinalizer(finalizer_name)
    metadata: dict[str, Any] = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        raise UnnamedObject()
    raw_finalizers = metadata.get("finalizers")
    finalizers: list[str] = list(raw_finalizers) if raw_finalizers else []
    deleting = metadata.get("deletionTimestamp") is not None

    index = finalizers.index(finalizer_name) if finalizer_name in finalizers else None

    if index is not None and not deleting:
        try:
            return await handler(FinalizerApply(obj))
        except Exception as exc:
            raise ApplyFailed(exc) from exc

    if index is not None:
        try:
            action = await handler(FinalizerCleanup(obj))
        except Exception as exc:
            raise CleanupFailed(exc) from exc
        remove = [
            *_same_object(metadata),
            {"op": "test", "path": _json_pointer_token(index), "value": finalizer_name},
            {"op": "remove", "path": _json_pointer_token(index)},
        ]
        try:
            await api.patch(name, remove, patch_type="json")
        except ApiError as exc:
            if exc.code == 404:
                # Gone: whoever removed our finalizer let it go, and this cleanup succeeded too
                # (a reconcile of a stale copy racing the one that finished it).
                return action
            raise RemoveFinalizer(exc) from exc
        return action

    if deleting:
        # Deleted before we ever added the finalizer, so FinalizerApply never ran: nothing to clean up.
        return Action.await_change()

    await _add_finalizer(api, name, finalizer_name, raw_finalizers, finalizers, _same_object(metadata))
    return Action.await_change()


def _same_object(metadata: dict[str, Any]) -> list[dict[str, Any]]:
    """A ``test`` of the object's uid: a patch made from a stale copy (a lagging cache, a handed
    over shard) must not touch a newer object of the same name. Without a uid, nothing."""
    uid = metadata.get("uid")
    return [{"op": "test", "path": "/metadata/uid", "value": uid}] if uid else []


async def _add_finalizer(
    api: PatchableApi,
    name: str,
    finalizer_name: str,
    observed: Any,
    finalizers: list[str],
    same_object: list[dict[str, Any]],
) -> None:
    if finalizers:
        add = [
            *same_object,
            {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
            {"op": "add", "path": "/metadata/finalizers/-", "value": finalizer_name},
        ]
        try:
            await api.patch(name, add, patch_type="json")
        except ApiError as exc:
            raise AddFinalizer(exc) from exc
        return

    # Empty list: test the form we observed first (absent/null or []), then the other one.
    empty_forms: list[list[str] | None] = [[], None] if isinstance(observed, list) else [None, []]
    last_error: ApiError | None = None
    for empty in empty_forms:
        add = [
            *same_object,
            {"op": "test", "path": "/metadata/finalizers", "value": empty},
            {"op": "add", "path": "/metadata/finalizers", "value": [finalizer_name]},
        ]
        try:
            await api.patch(name, add, patch_type="json")
        except ApiError as exc:
            last_error = exc
            if exc.code != 422:
                break
            continue
        return
    assert last_error is not None
    raise AddFinalizer(last_error) from last_error
