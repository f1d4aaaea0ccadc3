"""The types the stream helpers' overloads give, pinned with ``assert_type``. Never run:
``mypy --strict`` checks it (tests/typecheck/test_mypy_strict.py), so an overload that widens or
narrows a helper's item type fails the suite."""

from __future__ import annotations

from typing import assert_type

from kube_runtime.client.head import LazyObject
from kube_runtime.store import Store
from kube_runtime.streams import EventItem, LazyItem, ObjectItem, SyncedItem, WatchStream, synced_objects


def synced_object_types(events: WatchStream[EventItem], reader: Store, lazy: bool) -> None:
    assert_type(synced_objects(events, reader), WatchStream[ObjectItem])
    assert_type(synced_objects(events, reader, lazy=False), WatchStream[ObjectItem])
    assert_type(synced_objects(events, reader, deletes=True, lazy=True), WatchStream[LazyItem])
    assert_type(synced_objects(events, reader, lazy=lazy), WatchStream[SyncedItem])
    assert_type(events.synced_objects(reader), WatchStream[ObjectItem])
    assert_type(events.synced_objects(reader, deletes=True, lazy=True), WatchStream[LazyObject | Exception])
    assert_type(events.synced_objects(reader, lazy=lazy), WatchStream[SyncedItem])


async def lazy_items_read_as_lazy_objects(events: WatchStream[EventItem], reader: Store) -> list[str | None]:
    names: list[str | None] = []
    async for item in events.synced_objects(reader, lazy=True):
        if not isinstance(item, Exception):
            names.append(item.meta.metadata.name)  # a LazyObject: its head, nothing decoded
    return names
