"""Keeping Python's cyclic garbage collector away from a large cache of decoded dicts.

Only dict stores (``store(compact=False)``) need this: a compact store (the default) keeps bytes,
which the collector never traces, and gets no policy.

Decoded objects are nested dicts and lists; the collector's full (generation 2) passes walk every
one of them, so a cache of 100k ConfigMaps with managedFields costs a pause of hundreds of
milliseconds each time (see ``benches/bench_store.py``). The cache never forms reference cycles:
replaced and deleted objects are freed by reference counting alone. So :class:`FreezeAfterSync`
moves what is alive into the collector's permanent generation (``gc.freeze()``), which no pass
walks, every ``refreeze_writes`` stored objects (watch events and list items alike) once the store
(or the relist filling it) is large, and after each sync. Each freeze first runs a full collection
(so no garbage is frozen), which then only walks what was allocated since the previous freeze.

Why a fixed count of writes: each stored write leaves exactly one new object tree alive in the
young generations (the replaced one is freed by reference counting, so ``gc.get_count()`` does
not grow and no automatic collection happens), so the writes since the last freeze are the cheap
measure of what the next collection must walk. That collection costs about one traversal of each
new object (about 1 µs per written ConfigMap at the default), so the amortized cost per write does
not fall with rarer freezes; it rises (3-5 µs per write at 5,000-10,000 writes per freeze, as the
young objects no longer fit the CPU caches), and the pause grows with the cadence. Freezing while
a (re)list fills means the sync itself never walks the whole store either: the longest pause is
the first freeze (a full collection of the process at ``min_objects`` cached objects) or one
re-freeze (``refreeze_writes`` objects), whichever is longer.

Pitfalls: ``gc.freeze`` is process-wide: it freezes every object alive at that moment, not only
the cache's. An object frozen while alive that later becomes cyclic garbage (say, an exception
whose traceback holds a frame that holds the exception, in flight during a freeze) is never
collected: a leak bounded by what the process has in flight at each freeze, paid per freeze
(one every ``refreeze_writes`` writes while the store is large). A process with many such
objects in flight, or that relies on finalizers of cyclic garbage, should use a compact store or
pass ``gc_policy=None``. Frozen objects stay in memory until they are freed by reference counting
or ``gc.unfreeze()`` is called.
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
        """A store kept one more object: a watch event applied, or a list item buffered during a
        (re)list. ``cached`` is the size of the store or of the relist buffer, whichever is
        larger. Deletes are not reported (they leave nothing new alive)."""
        ...


class FreezeAfterSync:
    """Freeze the heap after each sync of a store of at least ``min_objects`` objects, and every
    ``refreeze_writes`` writes (list items included) while a store or relist holds at least
    ``min_objects``.

    Below ``min_objects`` a full collection's walk of the store stays under about 25 ms (1 KB
    ConfigMaps) and nothing is done. Shared process-wide by default, since the collector is: the
    write count is summed over every store using the policy.
    """

    __slots__ = ("_writes", "freezes", "min_objects", "refreeze_writes")

    def __init__(self, min_objects: int = 5_000, refreeze_writes: int = 1_000) -> None:
        if refreeze_writes < 1:
            raise ValueError(f"refreeze_writes must be at least 1, got {refreeze_writes}")
        self.min_objects = min_objects
        self.refreeze_writes = refreeze_writes
        self._writes = 0
        #: Freezes done so far (for tests and benchmarks).
        self.freezes = 0

    def after_sync(self, cached: int) -> None:
        if cached >= self.min_objects:
            self._freeze()

    def after_write(self, cached: int) -> None:
        self._writes += 1
        if self._writes >= self.refreeze_writes and cached >= self.min_objects:
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
    """The process-wide policy dict stores use unless told otherwise."""
    return _DEFAULT
