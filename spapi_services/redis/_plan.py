"""Usage plans kept in Redis: one bucket per application, seller and operation, shared by
every process and host that calls for them.

Each bucket is a GCRA (generic cell rate algorithm) state: the *theoretical arrival time*
(``tat``), the moment the bucket would be full again if nothing more were taken.  Taking a
token moves it one interval (``1 / rate``) later; a request is let out while ``tat`` is no
more than ``capacity - 1`` intervals ahead of now.  That is exactly a token bucket of
``capacity`` tokens refilled at ``rate``, in one number, updated by a Lua script that
reads the time from Redis's own clock (``TIME``): the hosts' clocks never enter it.

A reservation books a token ahead: it moves ``tat`` on even when the token is due later,
and its caller sleeps until then without asking again.  So ``tat`` also stands for the
tokens promised to sleeping callers, the last of them due ``capacity`` intervals before
``tat``.  No script may ever move ``tat`` back past that point: a new request would be
given a slot already promised to a sleeping one, and the two would reach Amazon together.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from redis.asyncio import Redis

from .._ratelimit import RateLimits, TokenReservation, default_headroom
from ._link import RedisLink, Unavailable, check_prefix, check_seconds, text

__all__ = ["RedisRateLimits", "shared_headroom"]

# Every script starts the same way: Redis's time in microseconds, the bucket's state, and
# its rate (the one the API reported, stored by any process; else the caller's).
# KEYS[1] the bucket; ARGV[1] the rate to use if none is stored, ARGV[2] '1' if that rate
# came from the API (then it is stored for every process), ARGV[3] the capacity, ARGV[4]
# the idle lifetime of the key in milliseconds.
_PRELUDE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tat', 'rate')
local rate = tonumber(state[2])
if not rate then
  rate = tonumber(ARGV[1])
  if ARGV[2] == '1' then redis.call('HSET', KEYS[1], 'rate', ARGV[1]) end
end
local capacity = tonumber(ARGV[3])
local function keep(tat)
  redis.call('HSET', KEYS[1], 'tat', string.format('%.17g', tat))
  redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), math.ceil((tat - now) / 1000)))
end
"""

# Take a token (0), or say in how many microseconds one is due (taking nothing).
_ACQUIRE = (
    _PRELUDE
    + """
local interval = 1000000 / rate
local tat = math.max(tonumber(state[1]) or now, now)
local due = tat - now - (capacity - 1) * interval
if due > 0 then return math.ceil(due) end
keep(tat + interval)
return 0
"""
)

# Reserve the next token: {1, µs until it is due} (0: now), or {0, µs} when it is due later
# than ARGV[5] µs allow (-1: no limit), taking nothing.  A reserved token is spoken for:
# the caller sleeps until it is due and sends without asking again (one round trip).
_RESERVE = (
    _PRELUDE
    + """
local interval = 1000000 / rate
local tat = math.max(tonumber(state[1]) or now, now)
local due = math.max(tat - now - (capacity - 1) * interval, 0)
local limit = tonumber(ARGV[5])
if limit >= 0 and due > limit then return {0, math.ceil(due)} end
keep(tat + interval)
return {1, math.ceil(due)}
"""
)

# Lease slots: ARGV[5] µs the first may be due in at most (-1: no limit; beyond it nothing
# is booked), ARGV[6] slots wanted by callers waiting now, ARGV[7] more slots to book ahead
# for callers to come, but only those due within ARGV[8] µs.  Returns {slots booked, µs
# until the first is due (may be negative: due already), µs between slots (text)}; or
# {0, µs until the first would be due, 0} when it is due too late.
_LEASE = (
    _PRELUDE
    + """
local interval = 1000000 / rate
local tat = math.max(tonumber(state[1]) or now, now)
local first = tat - now - (capacity - 1) * interval
local limit = tonumber(ARGV[5])
if limit >= 0 and first > limit then return {0, math.ceil(first), '0'} end
local booked = tonumber(ARGV[6])
local most = booked + tonumber(ARGV[7])
local horizon = tonumber(ARGV[8])
while booked < most and first + booked * interval <= horizon do booked = booked + 1 end
keep(tat + booked * interval)
return {booked, math.ceil(first), string.format('%.17g', interval)}
"""
)

# The API reported a rate (ARGV[5]): store it, and keep the tokens owed as they are by
# stretching or shrinking what is left of the refill to the new rate; but never pull the
# next free slot before the tokens already promised.  When the rate rises, the shrunk
# refill would end before the last reservation's slot (at ``tat - capacity`` old
# intervals), and new requests would be handed slots between and on the promised ones,
# which sleep until the times they were given and cannot be moved.  So with promises
# outstanding the bucket counts as empty from the last promised slot and refills at the
# new rate from there.  When the rate falls, the stretched refill already ends later than
# that (the promised slots were spaced by the old, shorter interval), and is kept.
_UPDATE_RATE = (
    _PRELUDE
    + """
local reported = tonumber(ARGV[5])
local tat = tonumber(state[1])
if tat and tat > now then
  local owed = now + (tat - now) * rate / reported
  local promised = tat - capacity * 1000000 / rate
  if promised > now then owed = math.max(owed, promised + capacity * 1000000 / reported) end
  keep(owed)
end
redis.call('HSET', KEYS[1], 'rate', ARGV[5])
redis.call('PEXPIRE', KEYS[1], math.max(tonumber(ARGV[4]), redis.call('PTTL', KEYS[1])))
return 0
"""
)

# A 429: the bucket is empty, so the next token is one interval away; or later, when
# reservations have already pushed ``tat`` further: those slots are promised, and moving
# ``tat`` back would hand them out a second time.
_DRAIN = (
    _PRELUDE
    + """
keep(math.max(tonumber(state[1]) or now, now + capacity * 1000000 / rate))
return 0
"""
)


def shared_headroom(burst: int) -> int:
    """Tokens a bucket in Redis holds back by default: a fifth of its burst (8 of 40, 4 of
    20), at least what an in-process bucket holds back.

    Redis books a full bucket's slots from the moment of the booking, but the requests
    reach Amazon later: after the answer's way back, a connection to open, and a process
    that may be waiting for a core among others.  Amazon's bucket, full until then,
    refills nothing meanwhile, so the first burst after an idle spell finds fewer tokens
    than Redis counted, one for every refill interval of delay.  Eight processes on two
    busy cores were measured to take up to 0.4 s to send their first requests; the cost
    is ``headroom / rate`` seconds once per burst after an idle spell (0.3 s more than
    an in-process bucket at 20/s).
    """
    return max(default_headroom(burst), burst // 5)


#: Slots a process books ahead, at most, beyond the calls already waiting for one.
DEFAULT_LEASE = 8
#: ... and only slots due within this many seconds.
DEFAULT_LEASE_HORIZON = 0.5


class _Lease:
    """The slots of one bucket this process has booked, and the calls waiting for them.

    ``slots`` are due times on the event loop's clock, in order.  Each is promised to
    this process alone, so handing one to a call asks Redis nothing.  While one call
    books more (``fetching``), the calls that come meanwhile wait in ``line`` and are
    handed the slots it brings, first come, first served.
    """

    __slots__ = ("ahead", "fetching", "line", "paced", "slots", "wasted")

    def __init__(self) -> None:
        self.slots: collections.deque[float] = collections.deque()
        self.line: collections.deque[asyncio.Future[float | None]] = collections.deque()
        self.fetching = False
        self.ahead = 0
        """Slots to book ahead next time: grows while the lease is used up, halves when a
        slot went unused."""
        self.wasted = False
        """Whether a slot went unused since the last booking."""
        self.paced = False
        """Whether a call had to wait for its slot since the last booking (calls come at
        least as fast as the plan lets them: booking ahead will be used)."""

    def prune(self, now: float, late: float) -> int:
        """Drop the slots no call took within ``late`` seconds of their time; how many.

        A slot sent long after its time would reach Amazon on top of slots booked after
        it, which the bucket did not allow for: it is given up, never sent late.
        """
        slots = self.slots
        dropped = 0
        while slots and slots[0] < now - late:
            slots.popleft()
            dropped += 1
        if dropped:
            self.wasted = True
            self.ahead //= 2
        return dropped

    def put_back(self, due: float) -> None:
        """A slot handed to a call that did not take it goes back, in its place."""
        bisect.insort(self.slots, due)

    def hand_on(self) -> None:
        """Give the slots to the calls in line, in order; if calls are left without one,
        wake the first of them to book for itself and the rest (who stay in line)."""
        line = self.line
        while line:
            waiter = line.popleft()
            if waiter.done():  # cancelled meanwhile
                continue
            if self.slots:
                waiter.set_result(self.slots.popleft())
            else:
                waiter.set_result(None)
                return


class RedisRateLimits:
    """Amazon's usage plans in Redis, shared by every process that calls for a seller.

    Pass one to each :class:`~spapi_services.ServicesClient` of every process and host:
    clients of the same application and selling partner then draw from one bucket per
    operation, as Amazon meters them, however many processes they run in.

    ``redis`` is a URL (``redis://host:6379/0``; the plan makes the client and
    :meth:`aclose` closes it) or a :class:`redis.asyncio.Redis` of yours.  ``overrides``
    and ``headroom`` mean what they mean for :class:`~spapi_services.RateLimits`, but
    the default headroom is a fifth of the burst (``shared_headroom``: the slots' requests
    reach Amazon later than Redis books them); every
    process sharing a bucket must be given the same.

    A process books the slots of every call of an operation waiting at the time in one
    round trip, and up to ``lease`` more ahead (default 8, only slots due within
    ``lease_horizon`` seconds, default 0.5) while its calls keep up with the plan, so
    that a steady stream of calls asks Redis once every few calls.  A booked slot no
    call takes within half a refill interval of its time is given up (never sent late)
    and the process books fewer ahead: plan capacity lost to booking ahead is at most
    ``lease`` slots whenever a process's calls stop.  :attr:`counts` says what it cost.
    ``lease=0`` books only for waiting calls.  Keys are
    ``{key_prefix}:plan:{scope}:{operationId}`` and expire after ``key_ttl`` seconds unused
    (never while tokens are still owed).

    Every Redis command is bounded by ``timeout`` seconds (default 0.25).  When Redis fails
    or is slow the plan goes on with adaptive buckets in this process
    (``RateLimits(adaptive=True)``: each process finds its share of the plan from the 429s
    it draws; logged once at WARNING), tries Redis again every ``retry_interval`` seconds,
    and uses it again as soon as it answers (logged at INFO): no call waits on Redis longer
    than the timeout, and none fails because of it.  ``clock`` (monotonic seconds) times
    those retries.

    It is a :class:`~spapi_services.ReservingPlan`: a request asks Redis once, however
    long it then waits for its token, and requests are served in the order they asked.
    No answer of Redis ever hands out a slot already promised to a waiting request: not
    after a 429, nor after a change of rate.

    Any other store can serve instead: implement the three methods of
    :class:`~spapi_services.UsagePlan` (take a token or say when one is due, follow the
    reported rate, empty a bucket after a 429), atomically for all its users, and pass it
    as ``rate_limits``; and ``reserve`` too (:class:`~spapi_services.ReservingPlan`) when
    every question to it is a round trip.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        key_prefix: str = "spapi",
        headroom: int | None = None,
        timeout: float | None = None,
        retry_interval: float = 5.0,
        key_ttl: float = 3600.0,
        lease: int = DEFAULT_LEASE,
        lease_horizon: float = DEFAULT_LEASE_HORIZON,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        owner = "RedisRateLimits"
        if isinstance(lease, bool) or not isinstance(lease, int) or lease < 0:
            raise ValueError(f"{owner}: lease must be an integer >= 0, got {lease!r}")
        self._lease_size = lease
        self._horizon_us = math.floor(check_seconds(owner, "lease_horizon", lease_horizon) * 1e6)
        # Checks overrides and headroom as the in-process plan does, and stands in for Redis:
        # adaptive, since the other processes are then on buckets of their own too, and
        # together they would send several times the plan.
        self._local = RateLimits(overrides, headroom=headroom, adaptive=True)
        self._prefix = check_prefix(owner, key_prefix)
        self._ttl_ms = math.ceil(check_seconds(owner, "key_ttl", key_ttl) * 1000)
        self._link = RedisLink(
            redis,
            owner=owner,
            what="usage plans",
            timeout=timeout,
            retry_interval=retry_interval,
            clock=clock,
        )
        self._acquire = self._link.script(_ACQUIRE)
        self._reserve = self._link.script(_RESERVE)
        self._update_rate = self._link.script(_UPDATE_RATE)
        self._drain = self._link.script(_DRAIN)
        self._lease = self._link.script(_LEASE)
        self._reported: dict[tuple[str, str], float] = {}
        self._leases: dict[tuple[str, str], _Lease] = {}
        self._counts = {"round_trips": 0, "booked": 0, "unused": 0}

    def __repr__(self) -> str:
        state = "shared" if self._link.answering else "in-process until Redis answers"
        return f"RedisRateLimits({self._link!r}, key_prefix={self._prefix!r}, {state})"

    async def __aenter__(self) -> RedisRateLimits:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the Redis client if the plan made it from a URL."""
        await self._link.aclose()

    @property
    def shared(self) -> bool:
        """``True`` while Redis answers; ``False`` while buckets are kept in this process."""
        return self._link.answering

    @property
    def fallback(self) -> RateLimits:
        """The in-process, adaptive buckets used while Redis does not answer."""
        return self._local

    @property
    def counts(self) -> dict[str, int]:
        """What the reservations have cost so far: ``round_trips`` (scripts run to book
        slots), ``booked`` (slots booked) and ``unused`` (booked slots given up because no
        call took them in time: plan capacity lost to booking ahead)."""
        return dict(self._counts)

    def plan(self, operation_id: str) -> tuple[float, int]:
        """``(rate, burst)`` configured for an operation."""
        return self._local.plan(operation_id)

    def capacity(self, operation_id: str) -> int:
        """How many requests a full bucket lets out at once (its burst less the headroom)."""
        burst = self.plan(operation_id)[1]
        headroom = self._local.headroom
        return max(1, burst - (shared_headroom(burst) if headroom is None else headroom))

    def key(self, scope: str, operation_id: str) -> str:
        """The Redis key of a bucket."""
        return f"{self._prefix}:plan:{scope}:{operation_id}"

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        """See :meth:`UsagePlan.try_acquire`: one round trip to Redis."""
        try:
            due = await self._run(self._acquire, scope, operation_id)
        except Unavailable:
            return await self._local.try_acquire(scope, operation_id)
        return int(due) / 1e6

    async def reserve(
        self, scope: str, operation_id: str, *, max_wait: float | None
    ) -> TokenReservation:
        """See :meth:`ReservingPlan.reserve`: the next token, due now or later; a waiter
        then sleeps until its own token is due instead of asking again.

        The process books slots for every call of the operation waiting at the time in
        one round trip, and up to ``lease`` more for the calls to come (see the class's
        docstring); a call finds its slot among those already booked without asking Redis.

        While Redis does not answer, nothing can be reserved: the in-process fallback's
        answer is passed on unreserved (the caller waits and asks again).
        """
        key = (scope, operation_id)
        lease = self._leases.get(key)
        if lease is None:
            lease = self._leases[key] = _Lease()
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            if lease.slots:
                self._counts["unused"] += lease.prune(now, self._late(scope, operation_id))
            if lease.slots and not lease.line:
                return self._hand_out(lease, lease.slots.popleft(), now, max_wait)
            if not lease.fetching:
                return await self._book(lease, scope, operation_id, max_wait)
            # Another call is booking: wait in line for a slot it brings back.
            waiter: asyncio.Future[float | None] = loop.create_future()
            lease.line.append(waiter)
            try:
                due = await waiter
            except BaseException:
                handed = waiter.result() if waiter.done() and not waiter.cancelled() else None
                if handed is not None:
                    lease.put_back(handed)  # handed a slot as it was cancelled: the next's
                    lease.hand_on()
                elif waiter in lease.line:
                    lease.line.remove(waiter)
                raise
            if due is not None:
                return self._hand_out(lease, due, loop.time(), max_wait)

    def _hand_out(
        self, lease: _Lease, due: float, now: float, max_wait: float | None
    ) -> TokenReservation:
        """A booked slot for a call, or back into the lease if it is due too late for it."""
        wait = max(0.0, due - now)
        if max_wait is not None and wait > max_wait:
            lease.put_back(due)
            lease.hand_on()
            return TokenReservation(False, wait)
        if wait > 0:
            lease.paced = True
        return TokenReservation(True, wait)

    async def _book(
        self, lease: _Lease, scope: str, operation_id: str, max_wait: float | None
    ) -> TokenReservation:
        """Book slots for this call, the calls in line and the lease's ahead; hand them out."""
        limit = -1 if max_wait is None else max(0, math.floor(max_wait * 1e6))
        if lease.paced and not lease.wasted:
            # Calls waited for their slots and none went unused: book further ahead.
            lease.ahead = min(self._lease_size, max(1, lease.ahead * 2))
        lease.paced = lease.wasted = False
        wanted = 1 + len(lease.line)
        extra = (str(limit), str(wanted), str(lease.ahead), str(self._horizon_us))
        lease.fetching = True
        try:
            booked, first, interval = await self._run(self._lease, scope, operation_id, *extra)
        except BaseException as exc:
            lease.fetching = False
            lease.hand_on()  # nothing booked (or lost with a cancellation): they ask again
            if not isinstance(exc, Unavailable):
                raise
            wait = await self._local.try_acquire(scope, operation_id)
            return TokenReservation(wait == 0, wait)
        lease.fetching = False
        received = asyncio.get_running_loop().time()
        booked, first = int(booked), int(first)
        self._counts["round_trips"] += 1
        self._counts["booked"] += booked
        if not booked:
            lease.hand_on()
            return TokenReservation(False, first / 1e6)
        # On this process's clock, from when the answer came: later than on Redis's, by
        # the way back, so no slot is ever sent before its time.
        step = float(text(interval))
        lease.slots.extend(received + max(0.0, first + i * step) / 1e6 for i in range(booked))
        mine = lease.slots.popleft()
        lease.hand_on()
        return self._hand_out(lease, mine, received, None)

    def _late(self, scope: str, operation_id: str) -> float:
        """How late a booked slot may still be sent: half a refill interval, at most 25 ms."""
        rate = self._reported.get((scope, operation_id)) or self.plan(operation_id)[0]
        return min(0.5 / rate, 0.025)

    def answered(self, scope: str, operation_id: str) -> None:
        """See :meth:`~spapi_services.LearningPlan.answered`: told to the in-process
        fallback, whose slow start goes by the answers while Redis is away."""
        self._local.answered(scope, operation_id)

    async def update_rate(self, scope: str, operation_id: str, rate: float) -> None:
        """See :meth:`UsagePlan.update_rate`: stored in Redis for every process."""
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf:
            return
        await self._local.update_rate(scope, operation_id, rate)  # ready should Redis fail
        with contextlib.suppress(Unavailable):
            await self._run(self._update_rate, scope, operation_id, repr(float(rate)))
        self._reported[scope, operation_id] = float(rate)

    async def throttled(self, scope: str, operation_id: str) -> None:
        """See :meth:`UsagePlan.throttled`: empties the bucket every process shares."""
        try:
            await self._run(self._drain, scope, operation_id)
        except Unavailable:
            await self._local.throttled(scope, operation_id)

    async def _run(self, script: Any, scope: str, operation_id: str, *extra: str) -> Any:
        reported = self._reported.get((scope, operation_id))
        rate = self.plan(operation_id)[0] if reported is None else reported
        args = [
            repr(float(rate)),
            "1" if reported is not None else "0",
            self.capacity(operation_id),
            self._ttl_ms,
            *extra,
        ]
        key = self.key(scope, operation_id)
        return await self._link.run(lambda: script(keys=[key], args=args))
