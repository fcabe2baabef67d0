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

A place that comes free goes straight to the first in line (it never stops being in
flight on the way), so a newcomer cannot take it first; and while anyone waits, every
place is taken.  Taking a free place is one comparison, with nothing to await.
"""

from __future__ import annotations

import asyncio
import collections
import weakref

import aiohttp

__all__ = ["Place", "RequestQueue", "queue_for"]


class RequestQueue:
    """Places in flight, handed out in the order they were asked for.

    ``size=None`` means no limit: the session's pool has none, so nothing waits.  A
    request holds a place through a :class:`Place` (``with Place(queue) as place``).
    """

    def __init__(self, size: int | None) -> None:
        self.size = size or None
        self.in_flight = 0
        """Places held now, or handed to a request about to go."""
        self._line: collections.deque[asyncio.Future[None]] = collections.deque()

    def __repr__(self) -> str:
        return f"RequestQueue(size={self.size}, in_flight={self.in_flight})"

    def has_room(self) -> bool:
        """Whether a place is free (and so nobody in line: a freed place goes to them)."""
        return self.size is None or self.in_flight < self.size

    @property
    def waiting(self) -> int:
        """Requests in line for a place."""
        return sum(not waiter.done() for waiter in self._line)

    def _hand_on(self) -> None:
        """A place came free: to the first still in line, else back to the queue."""
        line = self._line
        while line:
            waiter = line.popleft()
            if not waiter.done():  # not cancelled meanwhile
                waiter.set_result(None)
                return
        self.in_flight -= 1


class Place:
    """One request's place in a :class:`RequestQueue`, held or not.

    :meth:`take` waits for the place and :meth:`give_back` returns it, as often as the
    request needs (it gives its place up while it sleeps for the usage plan).  When the
    ``with`` block ends, however it ends, a place still held is given back: a request
    cancelled at any await keeps nothing.  Giving back is synchronous, so the block is a
    plain ``with``: nothing to await on the way out, so nothing a second cancellation
    could interrupt.
    """

    __slots__ = ("_queue", "held")

    def __init__(self, queue: RequestQueue) -> None:
        self._queue = queue
        self.held = False

    def __enter__(self) -> Place:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.held:
            self.held = False
            self._queue._hand_on()

    def take_now(self) -> bool:
        """Take a place if one is free, without waiting; whether it is held now."""
        if not self.held:
            queue = self._queue
            if queue.size is not None and queue.in_flight >= queue.size:
                return False
            queue.in_flight += 1
            self.held = True
        return True

    async def take(self) -> None:
        """Wait in line for a place, and hold it."""
        if self.take_now():
            return
        queue = self._queue
        waiter = asyncio.get_running_loop().create_future()
        queue._line.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                # Handed a place as it was cancelled: it goes to the next in line.
                queue._hand_on()
            elif waiter in queue._line:
                queue._line.remove(waiter)
            raise
        self.held = True  # handed over: already counted in flight

    def give_back(self) -> None:
        """Return the place if held (again and again: only the first gives it back)."""
        if self.held:
            self.held = False
            self._queue._hand_on()


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
