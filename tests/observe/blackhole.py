"""A TCP proxy on loopback that can black-hole or reset the path it carries, for the faults a
network (not the API server) causes: a proxy or load balancer that stops forwarding while every
connection stays open (no bytes, no FIN), or one that resets them.

``async with BlackHoleProxy(upstream_port) as proxy``: clients connect to ``proxy.port``.
:meth:`~BlackHoleProxy.black_hole` silences every open connection (bytes in either direction are
read and dropped) and every connection accepted from then on (accepted, never connected upstream);
:meth:`~BlackHoleProxy.restore` makes new connections forward again (silenced ones stay silent, as a
load balancer that lost a flow never revives it); :meth:`~BlackHoleProxy.reset` aborts every open
connection with a TCP RST.
"""

from __future__ import annotations

import socket
import struct
from types import TracebackType

import anyio
import anyio.abc

__all__ = ["BlackHoleProxy"]

_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


class _Connection:
    def __init__(self, client: anyio.abc.SocketStream, *, silent: bool) -> None:
        self.client = client
        self.silent = silent
        self.upstream: anyio.abc.SocketStream | None = None


class BlackHoleProxy:
    """See the module docs. Runs in the test's event loop (the virtual clock sees its sockets)."""

    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.port = 0
        #: Connections accepted so far, and those accepted while black-holed.
        self.accepted = 0
        self.swallowed = 0
        self._silent = False
        self._open: set[_Connection] = set()
        self._group: anyio.abc.TaskGroup | None = None
        self._swallowed = anyio.Event()

    def black_hole(self) -> None:
        self._silent = True
        for conn in self._open:
            conn.silent = True

    def restore(self) -> None:
        self._silent = False

    async def reset(self) -> int:
        """Abort every open connection with an RST to the client; returns how many."""
        reset = 0
        for conn in list(self._open):
            sock = conn.client.extra(anyio.abc.SocketAttribute.raw_socket)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await conn.client.aclose()
            if conn.upstream is not None:
                await conn.upstream.aclose()
            self._open.discard(conn)
            reset += 1
        return reset

    async def wait_swallowed(self, count: int) -> None:
        """Until ``count`` connections have been accepted while black-holed."""
        while self.swallowed < count:
            self._swallowed = anyio.Event()
            await self._swallowed.wait()

    async def __aenter__(self) -> BlackHoleProxy:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        self.port = listener.extra(anyio.abc.SocketAttribute.local_port)
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(listener.serve, self._handle)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._group is not None
        self._group.cancel_scope.cancel()
        return await self._group.__aexit__(exc_type, exc, tb)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        conn = _Connection(client, silent=self._silent)
        self.accepted += 1
        self._open.add(conn)
        try:
            if conn.silent:
                self.swallowed += 1
                self._swallowed.set()
                await self._pump(conn, client, None)
                return
            async with await anyio.connect_tcp(self.upstream_host, self.upstream_port) as upstream:
                conn.upstream = upstream
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._pump, conn, client, upstream)
                    await self._pump(conn, upstream, client)
                    tg.cancel_scope.cancel()
        except _BROKEN:
            pass
        finally:
            self._open.discard(conn)
            await client.aclose()

    @staticmethod
    async def _pump(
        conn: _Connection, source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream | None
    ) -> None:
        """Copy ``source`` to ``sink`` until it ends; bytes read while ``conn`` is silent are dropped."""
        try:
            while True:
                try:
                    data = await source.receive()
                except anyio.EndOfStream:
                    if sink is not None and not conn.silent:
                        await sink.send_eof()
                    return
                if sink is not None and not conn.silent:
                    await sink.send(data)
        except _BROKEN:  # reset, or closed by reset()
            return
