"""A TCP proxy on 127.0.0.1 that can stop forwarding while keeping its sockets open.

A frozen link is the partition that hurts most: a half-open connection, a NAT that
dropped the flow, a switch that went quiet.  Nothing is closed and nothing is refused;
bytes simply stop arriving, and a client without a deadline waits for ever.  A
:class:`LinkProxy` sits between one worker and one server (Redis or PostgreSQL):
:meth:`LinkProxy.freeze` stops reading from either side (what was already read is held,
not sent), :meth:`LinkProxy.thaw` lets it all through again.  New connections made
while frozen are accepted and then left silent until the thaw, as a partition leaves a
connection attempt hanging.  When the server goes away (a restart), the client's
connection is closed, as the server's own close would be seen.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["LinkProxy"]

_CHUNK = 65536


class LinkProxy:
    """Forward ``127.0.0.1:<port>`` to ``host:target_port``, with a switch to freeze it.

    :param name: what the link is called in the timeline (``w1-redis``).
    :param target_port: the server's port (it may restart on the same port).
    """

    def __init__(self, name: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        self.target_port = target_port
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __repr__(self) -> str:
        state = "frozen" if self.frozen else "flowing"
        return f"LinkProxy({self.name}: :{self.port} -> :{self.target_port}, {state})"

    @property
    def frozen(self) -> bool:
        """Whether the link is frozen right now."""
        return not self._flowing.is_set()

    async def start(self) -> LinkProxy:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def freeze(self) -> None:
        """Stop forwarding in both directions; every socket stays open."""
        self._flowing.clear()

    def thaw(self) -> None:
        """Forward again, starting with whatever was held."""
        self._flowing.set()

    def cut(self) -> None:
        """Close every connection now (the link stays up for new ones)."""
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        """Stop listening and close every connection."""
        self.thaw()
        if self._server is not None:
            self._server.close()
        self.cut()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._flowing.wait()  # a partition leaves a new connection hanging too
            try:
                up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
            except OSError:
                return  # the server is down: the client sees its connection closed
            self._writers.add(up_writer)
            try:
                await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            finally:
                self._writers.discard(up_writer)
                up_writer.transport.abort()
        except asyncio.CancelledError:
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction while the link flows; at either end's close, close both."""
        try:
            while True:
                await self._flowing.wait()
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await self._flowing.wait()  # read just before a freeze: held until the thaw
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.transport.abort()
