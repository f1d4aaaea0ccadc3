"""A Controller whose reconciler gets model instances: ``TypedController(TypedApi(client, Widget))``.

It is a :class:`~kube_runtime.controller.controller.Controller` (``controller``) built on the dict
Api with the model's decoder installed (``Controller.decode_objects``): the watch, the compact
store and the triggers are the dict ones, so typing costs one decode per reconcile and nothing per
cached object. ``run`` types the reconciler and error policy with the model.

An object that does not fit the model yields
:class:`~kube_runtime.controller.errors.ObjectDecodeFailed` (its ``error`` an
:class:`~kube_runtime.resources.errors.InvalidObject` naming the fields) on the result stream; the
controller goes on, other objects are unaffected, and the object is tried again when it changes.

Builder calls other than those here go to ``controller`` (``ctl.controller.watches(...)``). With
:class:`~kube_runtime.observe.Observability`, pass ``ctl.controller`` and
``ctl.reconciler(reconcile)`` (the same function, typed for the dict controller).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar, cast

from prometheus_client import CollectorRegistry

from kube_runtime.client.api import Api
from kube_runtime.controller.action import Action
from kube_runtime.controller.controller import Controller, ControllerRun, ErrorPolicy, Reconciler
from kube_runtime.predicates import Predicate
from kube_runtime.resources.api import TypedApi
from kube_runtime.resources.model import Resource
from kube_runtime.resources.store import TypedStore
from kube_runtime.watcher.config import WatcherConfig

__all__ = ["TypedController", "TypedErrorPolicy", "TypedReconciler"]

M = TypeVar("M", bound=Resource)
C = TypeVar("C")

#: ``reconcile(obj, ctx) -> Action`` with ``obj`` a model instance.
TypedReconciler = Callable[[M, C], Awaitable[Action]]
#: ``error_policy(obj, error, ctx) -> Action`` (sync or async) with ``obj`` a model instance.
TypedErrorPolicy = Callable[[M, Exception, C], Action | Awaitable[Action]]


class TypedController(Generic[M]):
    """See the module docs. Keyword arguments are :class:`Controller`'s."""

    def __init__(
        self,
        api: TypedApi[M],
        watcher_config: WatcherConfig | None = None,
        *,
        name: str | None = None,
        registry: CollectorRegistry | None = None,
        compact_store: bool = True,
        predicates: Sequence[Predicate] = (),
    ) -> None:
        self.model: type[M] = api.model
        #: The dict controller underneath (decoding installed).
        self.controller = Controller(
            api.raw,
            watcher_config,
            name=name,
            registry=registry,
            compact_store=compact_store,
            predicates=predicates,
        ).decode_objects(api.decode)
        #: Typed reads of the main store.
        self.store: TypedStore[M] = TypedStore(self.controller.store, api.model)

    @property
    def name(self) -> str:
        return self.controller.name

    def owns(
        self,
        api: Api | TypedApi[Any],
        watcher_config: WatcherConfig | None = None,
        *,
        predicates: Sequence[Predicate] = (),
    ) -> TypedController[M]:
        """Reconcile the owners of ``api``'s objects (see ``Controller.owns``, predicates too)."""
        raw = api.raw if isinstance(api, TypedApi) else api
        self.controller.owns(raw, watcher_config, predicates=predicates)
        return self

    def with_config(
        self, *, concurrency: int | None = None, debounce: float | None = None
    ) -> TypedController[M]:
        self.controller.with_config(concurrency=concurrency, debounce=debounce)
        return self

    def shutdown_on_signal(self) -> TypedController[M]:
        self.controller.shutdown_on_signal()
        return self

    def graceful_shutdown_on(self, signal_: Any) -> TypedController[M]:
        self.controller.graceful_shutdown_on(signal_)
        return self

    def reconciler(self, reconcile: TypedReconciler[M, C]) -> Reconciler[C]:
        """``reconcile`` typed for :attr:`controller` (which decodes before calling it)."""
        return cast(Reconciler[C], reconcile)

    def run(
        self,
        reconcile: TypedReconciler[M, C],
        error_policy: TypedErrorPolicy[M, C] | None,
        context: C,
    ) -> ControllerRun[C]:
        """``async with ctl.run(reconcile, error_policy, ctx) as results`` (see ``Controller.run``)."""
        return self.controller.run(
            cast(Reconciler[C], reconcile), cast(ErrorPolicy[C] | None, error_policy), context
        )
