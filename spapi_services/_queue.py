"""The request queue: first come, first served, in front of a session's connection pool.

aiohttp gives a connection that comes free to whichever request asks first, and under
sustained load new requests keep overtaking those already waiting there: one can wait
until it times out, never sent.  API requests queue here instead, no more of them in
flight than the pool holds.  There is one queue per session, however many clients share
it: two queues each sized to the whole pool would bring the overtaking back.
"""

from __future__ import annotations

import asyncio
import weakref

import aiohttp

__all__ = ["RequestQueue", "queue_for"]


class RequestQueue:
    """Places in flight, handed out in the order they were asked for.

    ``size=None`` means no limit: the session's pool has none, so nothing waits.
    """

    def __init__(self, size: int | None) -> None:
        self.size = size
        self._places = asyncio.Semaphore(size) if size else None

    def __repr__(self) -> str:
        return f"RequestQueue(size={self.size})"

    def has_room(self) -> bool:
        """Whether :meth:`enter` would return at once (a place free, nobody in line)."""
        return self._places is None or not self._places.locked()

    async def enter(self) -> None:
        """Wait for a place (asyncio's Semaphore serves waiters in order)."""
        if self._places is not None:
            await self._places.acquire()

    def leave(self) -> None:
        """Give the place back."""
        if self._places is not None:
            self._places.release()


_QUEUES: weakref.WeakKeyDictionary[aiohttp.ClientSession, RequestQueue] = (
    weakref.WeakKeyDictionary()
)


def queue_for(session: aiohttp.ClientSession) -> RequestQueue:
    """The one queue of ``session``, sized to its connector's limits."""
    queue = _QUEUES.get(session)
    if queue is None:
        connector = session.connector
        sizes = [n for n in (connector.limit, connector.limit_per_host) if n] if connector else []
        queue = _QUEUES[session] = RequestQueue(min(sizes) if sizes else None)
    return queue
