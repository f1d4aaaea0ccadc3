"""Watching resources: the watcher state machine and its I/O driver."""

from kube_runtime.watcher.backoff import Backoff, ExponentialBackoff, ResetTimerBackoff, default_backoff
from kube_runtime.watcher.config import InitialListStrategy, ListSemantic, WatcherConfig
from kube_runtime.watcher.event import (
    Apply,
    Delete,
    Event,
    Init,
    InitApply,
    InitDone,
    InitialListFailed,
    NoResourceVersion,
    WatcherError,
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
    "Event",
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
    "WatcherItem",
    "default_backoff",
    "metadata_watcher",
    "watch_object",
    "watcher",
]
