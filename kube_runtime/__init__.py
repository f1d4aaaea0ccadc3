"""kube-runtime: an asyncio controller runtime for Kubernetes, a port of kube-rs's kube-runtime.

Layers, bottom up, each usable on its own: :mod:`~kube_runtime.client` (HTTP to the API server),
:mod:`~kube_runtime.watcher` (a watch that never silently stalls), :mod:`~kube_runtime.streams`
and :mod:`~kube_runtime.predicates` (stream helpers), :mod:`~kube_runtime.store` (an always
complete cache), :mod:`~kube_runtime.controller` (scheduler, runner, Controller), the helpers
:mod:`~kube_runtime.finalizer`, :mod:`~kube_runtime.events`, :mod:`~kube_runtime.wait`,
:mod:`~kube_runtime.leader`, and :mod:`~kube_runtime.observe` (logs, traces, metrics, probes).
:mod:`kube_runtime.testing` holds the embedded API server (not re-exported here).

The names below are re-exported lazily (the first use of a name imports its layer), except
``watcher``, ``store`` and ``finalizer``: each is both a function re-exported here and a submodule
of this package, and importing a submodule sets the package attribute of its name to the module
*after* the submodule ran, whenever that first happens. A lazily bound function would therefore
turn into the module in some import orders (``from kube_runtime import WatcherConfig, watcher``
returned the subpackage). They are bound eagerly, after importing their submodules, so they are
the functions in every import order; ``import kube_runtime`` hence imports the watcher, store,
finalizer, client and controller layers (not ``observe``, uvicorn or ``testing``). Pitfall: the
attribute ``kube_runtime.watcher`` is the function, so ``import kube_runtime.watcher as m`` binds
the function too; reach the subpackages with ``from kube_runtime.watcher import ...`` or
``importlib.import_module("kube_runtime.watcher")``.

Every public name means one thing across the layers (a test checks it): the watcher's events are
``Apply``/``Delete`` (their union ``WatcherEvent``), the finalizer's ``FinalizerApply``/
``FinalizerCleanup``, the event recorder's input ``EventReport``, and ``Event`` is the typed
``events.k8s.io/v1`` model of :mod:`kube_runtime.resources`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from kube_runtime import predicates

# Eager, after their submodules (see the module docstring): a function sharing its name with a
# submodule must be bound after that submodule's import, which sets the attribute to the module.
from kube_runtime.finalizer import finalizer
from kube_runtime.store import store
from kube_runtime.watcher import watcher

if TYPE_CHECKING:
    from kube_runtime.client import (
        Api,
        ApiError,
        ApiResource,
        AuthenticationError,
        Client,
        ClientConfig,
        ConfigError,
        KubeError,
        PatchType,
        RequestTimeout,
        RetryPolicy,
        TransportError,
        WatchDecodeError,
        WatchEvent,
        WatchTimeout,
        discover,
    )
    from kube_runtime.controller import (
        Action,
        Controller,
        ControllerError,
        ObjectDecodeFailed,
        ObjectNotFound,
        QueueError,
        Reconciled,
        ReconcileReason,
        ReconcileRequest,
        ReconcilerFailed,
        RunnerError,
        TerminalError,
        current_reconcile,
    )
    from kube_runtime.events import (
        EventType,
        Recorder,
        Reporter,
    )
    from kube_runtime.finalizer import (
        FinalizerError,
        FinalizerEvent,
    )
    from kube_runtime.leader import (
        LeaderElectionLost,
        LeaderElector,
    )
    from kube_runtime.manager import Manager, ManagerOptions
    from kube_runtime.observe import (
        HealthChecks,
        ObjectGauge,
        Observability,
        ServerOptions,
        configure_logging,
        instrument,
        observe_results,
        observe_watch,
        setup_tracing,
    )
    from kube_runtime.store import (
        ObjectRef,
        SharedReflector,
        Store,
        Subscription,
        Writer,
        by_label,
        by_namespace,
        by_owner_uid,
        reflector,
    )
    from kube_runtime.streams import (
        WatchStream,
        applied_objects,
        drop_managed_fields,
        modify,
        predicate_filter,
        reflect,
        synced_objects,
        touched_objects,
    )
    from kube_runtime.wait import (
        await_condition,
        conditions,
        delete_and_finalize,
    )
    from kube_runtime.watcher import (
        Apply,
        Backoff,
        Delete,
        ExponentialBackoff,
        Init,
        InitApply,
        InitDone,
        InitialListFailed,
        InitialListStrategy,
        ListSemantic,
        NoResourceVersion,
        ResetTimerBackoff,
        WatcherConfig,
        WatcherError,
        WatchError,
        WatchFailed,
        WatchProgress,
        WatchStartFailed,
        metadata_watcher,
        watch_object,
    )

_EXPORTS: dict[str, str] = {
    "Api": "kube_runtime.client",
    "ApiError": "kube_runtime.client",
    "ApiResource": "kube_runtime.client",
    "AuthenticationError": "kube_runtime.client",
    "Client": "kube_runtime.client",
    "ClientConfig": "kube_runtime.client",
    "ConfigError": "kube_runtime.client",
    "KubeError": "kube_runtime.client",
    "PatchType": "kube_runtime.client",
    "RequestTimeout": "kube_runtime.client",
    "RetryPolicy": "kube_runtime.client",
    "TransportError": "kube_runtime.client",
    "WatchDecodeError": "kube_runtime.client",
    "WatchEvent": "kube_runtime.client",
    "WatchTimeout": "kube_runtime.client",
    "discover": "kube_runtime.client",
    "Apply": "kube_runtime.watcher",
    "Backoff": "kube_runtime.watcher",
    "Delete": "kube_runtime.watcher",
    "ExponentialBackoff": "kube_runtime.watcher",
    "Init": "kube_runtime.watcher",
    "InitApply": "kube_runtime.watcher",
    "InitDone": "kube_runtime.watcher",
    "InitialListFailed": "kube_runtime.watcher",
    "InitialListStrategy": "kube_runtime.watcher",
    "ListSemantic": "kube_runtime.watcher",
    "NoResourceVersion": "kube_runtime.watcher",
    "ResetTimerBackoff": "kube_runtime.watcher",
    "WatchError": "kube_runtime.watcher",
    "WatchFailed": "kube_runtime.watcher",
    "WatchProgress": "kube_runtime.watcher",
    "WatchStartFailed": "kube_runtime.watcher",
    "WatcherConfig": "kube_runtime.watcher",
    "WatcherError": "kube_runtime.watcher",
    "metadata_watcher": "kube_runtime.watcher",
    "watch_object": "kube_runtime.watcher",
    "WatchStream": "kube_runtime.streams",
    "applied_objects": "kube_runtime.streams",
    "drop_managed_fields": "kube_runtime.streams",
    "modify": "kube_runtime.streams",
    "predicate_filter": "kube_runtime.streams",
    "reflect": "kube_runtime.streams",
    "synced_objects": "kube_runtime.streams",
    "touched_objects": "kube_runtime.streams",
    "ObjectRef": "kube_runtime.store",
    "SharedReflector": "kube_runtime.store",
    "Store": "kube_runtime.store",
    "Subscription": "kube_runtime.store",
    "Writer": "kube_runtime.store",
    "by_label": "kube_runtime.store",
    "by_namespace": "kube_runtime.store",
    "by_owner_uid": "kube_runtime.store",
    "reflector": "kube_runtime.store",
    "Action": "kube_runtime.controller",
    "Controller": "kube_runtime.controller",
    "ControllerError": "kube_runtime.controller",
    "ObjectDecodeFailed": "kube_runtime.controller",
    "ObjectNotFound": "kube_runtime.controller",
    "QueueError": "kube_runtime.controller",
    "ReconcileReason": "kube_runtime.controller",
    "ReconcileRequest": "kube_runtime.controller",
    "Reconciled": "kube_runtime.controller",
    "ReconcilerFailed": "kube_runtime.controller",
    "RunnerError": "kube_runtime.controller",
    "TerminalError": "kube_runtime.controller",
    "current_reconcile": "kube_runtime.controller",
    "FinalizerError": "kube_runtime.finalizer",
    "FinalizerEvent": "kube_runtime.finalizer",
    "EventType": "kube_runtime.events",
    "Recorder": "kube_runtime.events",
    "Reporter": "kube_runtime.events",
    "await_condition": "kube_runtime.wait",
    "conditions": "kube_runtime.wait",
    "delete_and_finalize": "kube_runtime.wait",
    "LeaderElectionLost": "kube_runtime.leader",
    "LeaderElector": "kube_runtime.leader",
    "Manager": "kube_runtime.manager",
    "ManagerOptions": "kube_runtime.manager",
    "HealthChecks": "kube_runtime.observe",
    "ObjectGauge": "kube_runtime.observe",
    "Observability": "kube_runtime.observe",
    "ServerOptions": "kube_runtime.observe",
    "configure_logging": "kube_runtime.observe",
    "instrument": "kube_runtime.observe",
    "observe_results": "kube_runtime.observe",
    "observe_watch": "kube_runtime.observe",
    "setup_tracing": "kube_runtime.observe",
}

__all__ = [
    "Action",
    "Api",
    "ApiError",
    "ApiResource",
    "Apply",
    "AuthenticationError",
    "Backoff",
    "Client",
    "ClientConfig",
    "ConfigError",
    "Controller",
    "ControllerError",
    "Delete",
    "EventType",
    "ExponentialBackoff",
    "FinalizerError",
    "FinalizerEvent",
    "HealthChecks",
    "Init",
    "InitApply",
    "InitDone",
    "InitialListFailed",
    "InitialListStrategy",
    "KubeError",
    "LeaderElectionLost",
    "LeaderElector",
    "ListSemantic",
    "Manager",
    "ManagerOptions",
    "NoResourceVersion",
    "ObjectDecodeFailed",
    "ObjectGauge",
    "ObjectNotFound",
    "ObjectRef",
    "Observability",
    "PatchType",
    "QueueError",
    "ReconcileReason",
    "ReconcileRequest",
    "Reconciled",
    "ReconcilerFailed",
    "Recorder",
    "Reporter",
    "RequestTimeout",
    "ResetTimerBackoff",
    "RetryPolicy",
    "RunnerError",
    "ServerOptions",
    "SharedReflector",
    "Store",
    "Subscription",
    "TerminalError",
    "TransportError",
    "WatchDecodeError",
    "WatchError",
    "WatchEvent",
    "WatchFailed",
    "WatchProgress",
    "WatchStartFailed",
    "WatchStream",
    "WatchTimeout",
    "WatcherConfig",
    "WatcherError",
    "Writer",
    "applied_objects",
    "await_condition",
    "by_label",
    "by_namespace",
    "by_owner_uid",
    "conditions",
    "configure_logging",
    "current_reconcile",
    "delete_and_finalize",
    "discover",
    "drop_managed_fields",
    "finalizer",
    "instrument",
    "metadata_watcher",
    "modify",
    "observe_results",
    "observe_watch",
    "predicate_filter",
    "predicates",
    "reflect",
    "reflector",
    "setup_tracing",
    "store",
    "synced_objects",
    "touched_objects",
    "watch_object",
    "watcher",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kube_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
