"""The names of a controller's watches and the instruments wrapping them.

Each watch a :class:`~kube_runtime.controller.controller.Controller` opens itself (the main watch,
``owns`` and ``watches``) has a stable name, ``<controller name>/<Kind>`` (``configmapgen/ConfigMap``;
a second watch of the same kind gets ``#2``, ``#3``...), reserved when the builder adds the watch, so
names do not depend on the order runs open them. Instruments (``Controller.instrument_watches``)
wrap each raw watcher stream, before its backoff, with the watch's name and a
:class:`~kube_runtime.watcher.progress.WatchProgress` the watcher stamps on every list page and
watch event, bookmarks included (not on ``ERROR`` lines): the observe layer attaches its watch
metrics that way. Without instruments a watcher runs without a progress object (no per-line cost).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable

from kube_runtime.streams import WatchStream
from kube_runtime.watcher.progress import WatchProgress
from kube_runtime.watcher.state import WatcherItem

__all__ = ["WatchInstrument", "WatchNames"]

#: ``wrap(stream, watch_name, progress) -> stream``: see ``Controller.instrument_watches``.
WatchInstrument = Callable[[AsyncIterable[WatcherItem], str, WatchProgress], AsyncIterable[WatcherItem]]


class WatchNames:
    """One controller's watch names (in the order they were reserved, main watch first) and the
    instruments every watch it opens goes through."""

    __slots__ = ("_controller", "instruments", "names")

    def __init__(self, controller: str) -> None:
        self._controller = controller
        self.names: list[str] = []
        self.instruments: list[WatchInstrument] = []

    def reserve(self, kind: str) -> str:
        """Reserve the next free name for a watch of ``kind``."""
        base = f"{self._controller}/{kind}"
        taken = set(self.names)
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}#{n}"
        self.names.append(name)
        return name

    def open(
        self, watch: str, start: Callable[[WatchProgress | None], WatchStream[WatcherItem]]
    ) -> WatchStream[WatcherItem]:
        """Start the watch named ``watch`` (``start(progress)``), wrapped by every instrument."""
        if not self.instruments:
            return start(None)
        progress = WatchProgress()
        stream: AsyncIterable[WatcherItem] = start(progress)
        for wrap in self.instruments:
            stream = wrap(stream, watch, progress)
        return stream if isinstance(stream, WatchStream) else WatchStream(stream)
