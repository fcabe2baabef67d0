"""A TCP proxy on 127.0.0.1 for fault tests: forward, pause, resume, drop.

Put it between a client and a server (Redis, PostgreSQL, the emulator) to hurt the
link the way networks do, without touching either end::

    async with Proxy(redis_server.port) as proxy:
        fleet = Fleet(redis_url=proxy.via(redis_server.url), ...)
        proxy.pause()        # a silent link: no byte passes either way, no RST, no FIN
        proxy.resume()       # what was held goes on, in order
        await proxy.drop()   # every connection reset at once (new ones are accepted)

While paused, a new connection is accepted (the kernel completes the handshake, as a
half-open path would) but nothing is forwarded for it either.  :class:`ThreadedProxy` is
the same proxy on a thread of its own, for synchronous tests or for links of other
processes (a worker's) that must keep flowing while the test's own loop is busy.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Self

from yarl import URL

__all__ = ["Proxy", "ThreadedProxy", "threaded_proxy"]

_CHUNK = 65536


class Proxy:
    """Forwards connections on ``127.0.0.1:port`` to ``target_host:target_port``.

    ``port`` 0 (the default) takes a free one; :attr:`port` says which once started.
    Runs on the event loop it is started in.
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.connections = 0  # accepted so far
        self._flowing: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        state = "paused" if self.paused else "forwarding"
        return f"Proxy(127.0.0.1:{self.port} -> {self.target[0]}:{self.target[1]}, {state})"

    @property
    def paused(self) -> bool:
        """Whether forwarding is paused."""
        return self._flowing is not None and not self._flowing.is_set()

    def via(self, url: str) -> str:
        """``url`` (``redis://``, ``postgresql://``, ``http://``) pointed at the proxy."""
        return str(URL(url).with_host("127.0.0.1").with_port(self.port))

    async def start(self) -> Self:
        """Listen; returns once connections are accepted."""
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def pause(self) -> None:
        """Stop forwarding, both ways, on every connection (sockets stay open)."""
        assert self._flowing is not None, "start the proxy first"
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again what was held, and what comes."""
        assert self._flowing is not None, "start the proxy first"
        self._flowing.set()

    async def drop(self) -> None:
        """Reset every open connection, both sides (as a crashed middlebox would)."""
        for transport in list(self._transports):
            transport.abort()
        self._transports.clear()
        await asyncio.sleep(0)

    async def aclose(self) -> None:
        """Stop listening and reset every connection."""
        if self._server is not None:
            self._server.close()
        await self.drop()
        if self._flowing is not None:
            self._flowing.set()  # held pumps find their sockets reset, and end
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        assert self._flowing is not None
        self._tasks.add(task)
        self.connections += 1
        self._transports.add(writer.transport)
        try:
            await self._flowing.wait()  # a link that is down stays down for newcomers too
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                writer.transport.abort()
                return
            self._transports.add(up_writer.transport)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except asyncio.CancelledError:
            # Only aclose cancels; asyncio's stream server would log a cancelled handler.
            writer.transport.abort()
        finally:
            self._tasks.discard(task)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await source.read(_CHUNK)
                await self._flowing.wait()  # held while paused: an EOF as much as data
                if not data:
                    break
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._transports.discard(sink.transport)
            with contextlib.suppress(Exception):
                sink.close()


class ThreadedProxy:
    """A :class:`Proxy` running on an event loop of its own, in a thread.

    Its methods may be called from any thread (they wait for the proxy to act)::

        with ThreadedProxy(postgres.port) as proxy:
            ...
            proxy.pause()
    """

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, port: int = 0) -> None:
        self.proxy = Proxy(target_port, target_host, port=port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        return self.proxy.port

    def via(self, url: str) -> str:
        """``url`` pointed at the proxy."""
        return self.proxy.via(url)

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self) -> Self:
        """Start the thread and the proxy."""
        self._thread.start()
        self._call(self.proxy.start())
        return self

    def pause(self) -> None:
        """Stop forwarding (see :meth:`Proxy.pause`)."""
        self._call(_run(self.proxy.pause))

    def resume(self) -> None:
        """Forward again (see :meth:`Proxy.resume`)."""
        self._call(_run(self.proxy.resume))

    def drop(self) -> None:
        """Reset every connection (see :meth:`Proxy.drop`)."""
        self._call(self.proxy.drop())

    def close(self) -> None:
        """Stop the proxy and its thread."""
        if self._thread.is_alive():
            self._call(self.proxy.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _run(action: Any) -> None:
    action()


@contextlib.contextmanager
def threaded_proxy(target_port: int) -> Iterator[ThreadedProxy]:
    """A :class:`ThreadedProxy` to ``127.0.0.1:target_port`` for the block."""
    with ThreadedProxy(target_port) as proxy:
        yield proxy
