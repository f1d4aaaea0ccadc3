"""reflector(writer, stream): keep a store in sync with a watcher stream as it is iterated."""

from __future__ import annotations

from collections.abc import AsyncIterable

from kube_runtime.store.store import Writer
from kube_runtime.streams import EventItem, WatchStream, reflect

__all__ = ["reflector"]


def reflector(writer: Writer, stream: AsyncIterable[EventItem]) -> WatchStream[EventItem]:
    """Applies every event to ``writer`` and passes it on (errors pass untouched).

    The store only moves while this stream is iterated: drive it (for instance through a
    Controller or a task of your own) or the cache goes stale.
    """
    return reflect(stream, writer)
