"""The request queue: first come, first served, in front of a session's connection pool.

aiohttp gives a connection that comes free to whichever request asks first, and under
sustained load new requests keep overtaking those already waiting there: one can wait
until it times out, never sent.  API requests queue here instead, no more of them in
flight than the pool holds.  There is one queue per session, however many clients share
it: two queues each sized to the whole pool would bring the overtaking back.

A request holds its place through a :class:`Place`, never by pairing an ``enter`` with a
``leave`` by hand: the queue is shared by every client and seller on the session, so one
place lost to a cancellation that landed between the two would be lost for every call
that comes after, until they all wait in line until their deadlines.
"""

from __future__ import annotations

import asyncio
import weakref

import aiohttp

__all__ = ["Place", "RequestQueue", "queue_for"]


class RequestQueue:
    """Places in flight, handed out in the order they were asked for.

    ``size=None`` means no limit: the session's pool has none, so nothing waits.  A
    request holds a place through a :class:`Place` (``with Place(queue) as place``).
    """

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.in_flight = 0
        """Places held now (by requests on the wire, or about to be)."""
        self._places = asyncio.Semaphore(size) if size else None

    def __repr__(self) -> str:
        return f"RequestQueue(size={self.size}, in_flight={self.in_flight})"

    def has_room(self) -> bool:
        """Whether a place would be had at once (one free, nobody in line)."""
        return self._places is None or not self._places.locked()


class Place:
    """One request's place in a :class:`RequestQueue`, held or not.

    :meth:`take` waits for the place and :meth:`give_back` returns it, as often as the
    request needs (it gives its place up while it sleeps for the usage plan).  When the
    ``with`` block ends, however it ends, a place still held is given back: a request
    cancelled at any await keeps nothing.  Giving back is synchronous, so the block is a
    plain ``with``: nothing to await on the way out, so nothing a second cancellation
    could interrupt.
    """

    __slots__ = ("_places", "_queue", "held")

    def __init__(self, queue: RequestQueue) -> None:
        self._queue = queue
        self._places = queue._places
        self.held = False

    def __enter__(self) -> Place:
        return self

    def has_room(self) -> bool:
        """Whether :meth:`take` would return at once (a place free, nobody in line)."""
        return self._places is None or not self._places.locked()

    async def take(self) -> None:
        """Wait for a place, in the order asked for, and hold it (no-op when held)."""
        if self.held:
            return
        if self._places is not None:
            # Cancelled in this wait, the semaphore holds nothing for us (asyncio hands a
            # place it had granted on to the next in line); once it returns, nothing is
            # awaited before the place is marked held.
            await self._places.acquire()
        self.held = True
        self._queue.in_flight += 1

    def give_back(self, *_: object) -> None:
        """Return the place if held (again and again: only the first gives it back)."""
        if self.held:
            self.held = False
            self._queue.in_flight -= 1
            if self._places is not None:
                self._places.release()

    # Leaving the block gives the place back (one call fewer than calling give_back).
    __exit__ = give_back


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
