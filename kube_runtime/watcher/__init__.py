"""Watching resources: the watcher state machine and its I/O driver."""

from kube_runtime.watcher.backoff import (
    Backoff,
    ExponentialBackoff,
    ResetTimerBackoff,
    default_backoff_policy,
)
from kube_runtime.watcher.config import InitialListStrategy, ListSemantic, WatcherConfig
from kube_runtime.watcher.event import (
    Apply,
    Delete,
    Init,
    InitApply,
    InitDone,
    InitialListFailed,
    NoResourceVersion,
    WatcherError,
    WatcherEvent,
    WatchError,
    WatchFailed,
    WatchStartFailed,
)
from kube_runtime.watcher.progress import WatchProgress
from kube_runtime.watcher.state import WatcherItem
from kube_runtime.watcher.watcher import metadata_watcher, watch_object, watcher

__all__ = [
    "Apply",
    "Backoff",
    "Delete",
    "ExponentialBackoff",
    "Init",
    "InitApply",
    "InitDone",
    "InitialListFailed",
    "InitialListStrategy",
    "ListSemantic",
    "NoResourceVersion",
    "ResetTimerBackoff",
    "WatchError",
    "WatchFailed",
    "WatchProgress",
    "WatchStartFailed",
    "WatcherConfig",
    "WatcherError",
    "WatcherEvent",
    "WatcherItem",
    "default_backoff_policy",
    "metadata_watcher",
    "watch_object",
    "watcher",
]
