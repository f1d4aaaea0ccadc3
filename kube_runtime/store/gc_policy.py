"""Keeping Python's cyclic garbage collector away from a large cache.

Decoded objects are nested dicts and lists; the collector's full (generation 2) passes walk every
one of them, so a cache of 100k ConfigMaps with managedFields costs a pause of hundreds of
milliseconds each time (see ``benches/bench_store.py``). The cache never forms reference cycles:
replaced and deleted objects are freed by reference counting alone. So once a store holds a
complete state, :class:`FreezeAfterSync` moves everything alive into the collector's permanent
generation (``gc.freeze()``), which full passes skip; later writes are frozen again in batches.

Pitfalls: ``gc.freeze`` is process-wide. Each freeze runs one full collection first (so existing
garbage is not frozen), which is the same pause a full pass would cost; after that, full passes
only walk what was allocated since. Objects frozen while alive that later become cyclic garbage
are never collected (a bounded leak per freeze); pass ``gc_policy=None`` to the store to opt out.
"""

from __future__ import annotations

import gc
from typing import Protocol

__all__ = ["FreezeAfterSync", "GcPolicy", "default_gc_policy"]


class GcPolicy(Protocol):
    def after_sync(self, cached: int) -> None:
        """A store swapped in a complete state of ``cached`` objects."""
        ...

    def after_write(self, cached: int) -> None:
        """A store applied one watch event and now holds ``cached`` objects."""
        ...


class FreezeAfterSync:
    """Freeze the heap after each sync of a store of at least ``min_objects`` objects, and again
    after every ``refreeze_fraction`` of the store's size in writes (at least ``min_writes``).

    Below ``min_objects`` the collector's pauses are small (a few ms per 10k objects) and nothing
    is done. Shared process-wide by default, since the collector is.
    """

    __slots__ = ("_writes", "freezes", "min_objects", "min_writes", "refreeze_fraction")

    def __init__(
        self, min_objects: int = 10_000, refreeze_fraction: float = 0.05, min_writes: int = 1_000
    ) -> None:
        self.min_objects = min_objects
        self.refreeze_fraction = refreeze_fraction
        self.min_writes = min_writes
        self._writes = 0
        self.freezes = 0

    def after_sync(self, cached: int) -> None:
        if cached >= self.min_objects:
            self._freeze()

    def after_write(self, cached: int) -> None:
        if cached < self.min_objects:
            return
        self._writes += 1
        if self._writes >= max(self.min_writes, int(cached * self.refreeze_fraction)):
            self._freeze()

    def _freeze(self) -> None:
        self._writes = 0
        if not gc.isenabled():
            return  # the application manages the collector itself
        gc.collect()
        gc.freeze()
        self.freezes += 1


_DEFAULT = FreezeAfterSync()


def default_gc_policy() -> FreezeAfterSync:
    """The process-wide policy stores use unless told otherwise."""
    return _DEFAULT
