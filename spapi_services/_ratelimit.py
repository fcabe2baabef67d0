"""Client-side usage plans: one token bucket per operation.

Amazon meters each operation with a token bucket per application and selling partner:
``rate`` tokens a second, at most ``burst`` saved up.  Holding our own bucket of the same
size means bulk work runs at the plan's bound without drawing 429s.  The buckets are
aiolimiter leaky buckets (``AsyncLimiter(burst, burst / rate)``), acquired before every
attempt, retries included.

Our bucket is a copy of Amazon's, but the two clocks differ: requests taken from ours
together can reach Amazon spread out, and requests spaced out by ours can reach it
bunched (a fresh connection is slower than a warm one).  A request that arrives a
moment before Amazon's bucket has refilled is throttled.  So each bucket keeps a little
headroom: it lets out ``burst - headroom`` at once and then refills at the full rate.
The tokens held back never run out in steady state (both sides refill at the same
rate), so they absorb the jitter; the cost is ``headroom / rate`` seconds once.

The request pipeline talks to a plan through the :class:`UsagePlan` protocol: take a
token now or say how long until one is due, follow the rate the API reports, empty a
bucket after a 429.  :class:`RateLimits` is the in-process plan; other stores (Redis,
for processes that share a seller) implement the same three methods, and a store where
every question is a round trip also :class:`ReservingPlan` (book a token ahead); a plan
that learns from answers is a :class:`LearningPlan` (told of every answer).  Buckets are kept
per *scope*, the application and selling partner Amazon meters by, so one plan object
can serve the clients of many sellers without mixing their budgets.

Several processes spending one seller's plan, each with a copy of it, together send
several times the plan.  So by default the buckets are graceful in two ways, as TCP is
on a shared link: a bucket that has been idle (or is new) starts with an eighth of its
burst and ramps up to the whole of it as answers come back, never slower than the plan
refills (:data:`SLOW_START`), so that eight cold processes do not fire eight bursts at
one bucket; and a 429 to a request the bucket let out, which an exact copy alone on the
plan never draws, tells it that something else spends the same budget: it cuts its rate
to the share of the plan it had got (or by :data:`CUT`) and climbs back along a CUBIC
curve, as the AWS SDKs' adaptive retry mode does (see :class:`AdaptiveBucket`).  The
processes settle where their rates add up to the plan.  A process alone on the plan
never draws a 429, so it keeps the exact bucket's pace, and the ramp costs it no
throughput (it spends its burst faster than the plan refills).
``RateLimits(adaptive=False)`` is the exact bucket with its whole burst at once, for a
process that knows it is alone; a store shared by the processes (Redis) meters the one
budget exactly instead.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from contextvars import ContextVar
from typing import NamedTuple, Protocol, runtime_checkable

from aiolimiter import AsyncLimiter

from ._routes import ROUTES

__all__ = [
    "AdaptiveBucket",
    "Bucket",
    "LearningPlan",
    "RateLimits",
    "ReservingPlan",
    "TokenReservation",
    "UsagePlan",
    "default_headroom",
]


@runtime_checkable
class UsagePlan(Protocol):
    """Where a client takes its tokens: one bucket per scope (seller) and operation.

    ``scope`` identifies the application and selling partner whose budget is meant;
    every method must be safe to call from many tasks at once.

    Capabilities beyond these three methods are declared by implementing a further
    protocol, never guessed from an attribute: a plan kept out of process (a round trip
    per question) should also be a :class:`ReservingPlan`.  The client checks which
    protocols a plan implements once, when it is made (``isinstance``), so a wrapper
    around a plan (one that counts, logs or meters) must implement the same protocols as
    the plan it wraps, delegating each method, or the client treats it as the lesser kind.
    """

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        """Take a token if one is free now and return ``0``; otherwise take nothing and
        return the seconds until one is due (the caller sleeps, then asks again)."""
        ...

    async def update_rate(self, scope: str, operation_id: str, rate: float) -> None:
        """The API reported ``rate`` requests a second in ``x-amzn-RateLimit-Limit``."""
        ...

    async def throttled(self, scope: str, operation_id: str) -> None:
        """The API answered 429: empty the bucket, so the next request waits a refill."""
        ...


class TokenReservation(NamedTuple):
    """What a :meth:`ReservingPlan.reserve` did: whether the token is the caller's, and when."""

    reserved: bool
    """``True``: the token is spoken for; send when ``wait`` has passed, asking nothing more."""
    wait: float
    """Seconds until the token is (or would be) due; ``0`` for now."""


@runtime_checkable
class ReservingPlan(UsagePlan, Protocol):
    """A usage plan that can book a caller's next token ahead of time.

    The client then asks the plan once per request, however long the wait: the caller
    sleeps until its own token is due instead of asking again, and callers are served in
    the order they reserved.  Worth it for a plan out of process, where every question is
    a round trip; :class:`~spapi_services.redis.RedisRateLimits` is one.

    A reserved token is spent, whether or not its request goes out: a call cancelled (or
    out of time) while it sleeps for its token, or waits for a place in the request
    queue afterwards, leaves its slot unused, and the bucket lets one request fewer
    through in that interval.  Nothing is given back: a refund would be one more round
    trip from a call that was asked to stop, and could hand the same slot out twice.
    """

    async def reserve(
        self, scope: str, operation_id: str, *, max_wait: float | None
    ) -> TokenReservation:
        """Book the next token, due now or later, unless it is due later than ``max_wait``
        seconds (``None``: whenever it is due); then nothing is booked and ``wait`` says
        when it would have been."""
        ...


@runtime_checkable
class LearningPlan(UsagePlan, Protocol):
    """A usage plan that hears of every request that got through: an answer, not a 429.

    A plan that ramps up to its burst as answers come back (a slow start, as
    :class:`RateLimits` does) needs them: without this news it can only go by the clock.
    The client calls :meth:`answered` once per answer of an operation whose token the
    plan gave; a wrapper around such a plan should implement it too, delegating.
    """

    def answered(self, scope: str, operation_id: str) -> None:
        """A request of this scope and operation got an answer that was not a 429.

        Called in the request's task as the answer is read: it must return at once
        (no I/O, no await)."""
        ...


def _check_plan(operation_id: str, rate: float, burst: int) -> None:
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < math.inf:
        raise ValueError(
            f"rate_limits[{operation_id!r}]: rate must be a positive number, got {rate!r}"
        )
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(
            f"rate_limits[{operation_id!r}]: burst must be an integer >= 1, got {burst!r}"
        )


def default_headroom(burst: int) -> int:
    """Tokens held back from a bucket of ``burst``: 2 for Amazon's 20s and 40s, 0 for a 2."""
    return min(2, burst // 10)


class Bucket:
    """The bucket of one operation: a published burst, and a rate the API may adjust.

    ``headroom`` tokens of the burst are held back (see the module's docstring).
    """

    def __init__(
        self,
        operation_id: str,
        rate: float,
        burst: int,
        headroom: int | None = None,
        *,
        slow_start: bool = False,
    ) -> None:
        _check_plan(operation_id, rate, burst)
        self.operation_id = operation_id
        self.burst = burst
        if headroom is None:
            headroom = default_headroom(burst)
        self.capacity = max(1, burst - headroom)
        """How many requests go out at once from a full bucket."""
        self._limiter = AsyncLimiter(self.capacity, self.capacity / rate)
        self.slow_start = slow_start
        """Whether a full bucket lets its burst out gradually (see :data:`SLOW_START`)."""
        self._ramp: _Ramp | None = None
        """The slow start under way, if any."""

    def __repr__(self) -> str:
        return f"Bucket({self.operation_id!r}, rate={self.rate:g}, burst={self.burst})"

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._limiter.max_rate / self._limiter.time_period

    async def acquire(self) -> None:
        """Wait for a token and take it."""
        await self._limiter.acquire()

    def try_take(self) -> float:
        """Take a token if one is free (``0``), else the seconds until one will be."""
        limiter = self._limiter
        if limiter.has_capacity():  # also settles what has leaked out since last time
            if self.slow_start:
                wait = self._ramp_wait(limiter)
                if wait > 0:
                    return wait
            limiter._level += 1
            return 0.0
        # aiolimiter keeps its level in tokens and leaks ``_rate_per_sec`` of them a second;
        # room for one more opens when the level drops to ``max_rate - 1``.
        due = (limiter._level + 1 - limiter.max_rate) / limiter._rate_per_sec
        return max(due, 1e-3)

    def answered(self) -> None:
        """A request this bucket let out got an answer (not a 429): a slow start goes on."""
        ramp = self._ramp
        if ramp is not None:
            ramp.answered += 1

    @property
    def ramping(self) -> bool:
        """Whether a slow start is under way (the burst is not all free yet)."""
        return self._ramp is not None

    def _ramp_wait(self, limiter: AsyncLimiter) -> float:
        """``0`` if the slow start (begun now, if the bucket is full) lets one more token
        out, counting it; else the seconds until it will."""
        now = limiter._last_check  # the moment has_capacity() just settled the bucket at
        ramp = self._ramp
        if ramp is None:
            if limiter._level > 1e-9:
                return 0.0  # not full: no slow start begins
            ramp = self._ramp = _Ramp(now, limiter.max_rate, limiter._rate_per_sec)
        wait = ramp.wait(now, limiter.max_rate, limiter._rate_per_sec)
        if wait < 0:
            self._ramp = None  # the ramp has caught up with the bucket: it is over
            return 0.0
        if wait == 0:
            ramp.let_out += 1
        return wait

    def follow_header(self, rate: float) -> None:
        """Refill at the rate the API reported in ``x-amzn-RateLimit-Limit``.

        The header carries no burst, so the published one is kept.
        """
        if not math.isfinite(rate) or rate <= 0 or abs(rate - self.rate) < 1e-9:
            return
        limiter = self._limiter
        # Settle what has leaked at the old rate before changing it.  aiolimiter has no
        # public setter for the rate; these attributes are stable across its 1.x releases.
        limiter.has_capacity()
        limiter.time_period = self.capacity / rate
        limiter._rate_per_sec = rate
        # A task already waiting was timed at the old rate: time it again.
        limiter._wake_next()

    def drain(self) -> None:
        """Empty the bucket after a 429, so the next attempt waits a full refill interval."""
        limiter = self._limiter
        limiter.has_capacity()  # brings the level up to date
        limiter._level = float(limiter.max_rate)
        self._ramp = None

    generation = 0
    """How many times the bucket has lowered its rate after 429s (never, for this one)."""

    def throttled(self, sent_in: int | None = None) -> None:
        """The API answered 429 to a request this bucket let out: empty the bucket.

        ``sent_in`` is the :attr:`generation` the request was let out in, if known (an
        :class:`AdaptiveBucket` reads it; this exact bucket has no use for it).
        """
        self.drain()


#: A slow start's first step: a full bucket lets this share of its burst out at once
#: (at least one token), and the rest as the ramp allows (see :class:`_Ramp`).
SLOW_START = 1 / 8
"""A full bucket lets this share of its burst out at once (at least one token)."""
#: A slow start that has heard of no answer for this many seconds takes it that nobody
#: passes them on (a wrapper around the plan that is not a :class:`LearningPlan`), and
#: ramps up by the clock alone.
DEAF_AFTER = 1.0
#: How often, at most, a request held back by a slow start for want of answers asks
#: again: one refill interval, within these bounds in seconds.
_RAMP_POLL = (0.005, 0.1)


class _Ramp:
    """A slow start: how many tokens a bucket found full at ``start`` may have let out.

    ``first`` tokens at once (:data:`SLOW_START` of the burst), then as many as two
    paces allow, whichever is slower:

    * the answers': two more tokens for every request that got an answer (not a 429), so
      that what goes out doubles with every round trip, as TCP's window does in its slow
      start, however long round trips take;
    * the clock's: ``first · 2^(t / step)`` with ``step = e · ln 2 · first / rate``, the
      slowest exponential that still lets out at least ``rate · t`` by every ``t``; it
      holds only while requests are in flight (one at a time is no burst).

    So a process alone on the plan spends its burst within a few round trips and always
    faster than the plan refills: Amazon's bucket never fills up again and no token is
    lost (the ramp costs some latency on the burst's last requests, no throughput).
    Several processes that start together each send a fraction of the plan at first,
    and learn from the first 429s that they share it.  The ramp ends when it allows at
    least what the bucket itself does.
    """

    __slots__ = ("answered", "first", "let_out", "start", "step")

    def __init__(self, start: float, capacity: float, rate: float) -> None:
        self.start = start
        self.first = max(1, math.floor(capacity * SLOW_START))
        self.step = math.e * math.log(2) * self.first / rate
        self.let_out = 0
        """Tokens let out since the slow start began."""
        self.answered = 0
        """Answers (not 429s) heard since the slow start began."""

    def wait(self, now: float, capacity: float, rate: float) -> float:
        """Seconds until the next token may be allowed (``0``: now; ``-1``: the ramp is over)."""
        elapsed = now - self.start
        by_clock = self.first * 2.0 ** min(elapsed / self.step, 40.0)
        deaf = not self.answered and elapsed >= DEAF_AFTER
        by_answers = math.inf if deaf else self.first + 2 * self.answered
        if min(by_clock, by_answers) >= capacity + rate * elapsed:
            return -1.0
        wanted = self.let_out + 1
        if self.let_out <= self.answered:
            return 0.0  # nothing in flight: one request at a time is no burst
        clock_wait = self.start + self.step * math.log2(wanted / self.first) - now
        if wanted <= by_answers and clock_wait <= 0:
            return 0.0
        # Held back: answers, which come in their own time, may let it out before the
        # clock does, so ask again within a refill interval at most.
        low, high = _RAMP_POLL
        return min(max(clock_wait, 1e-3), min(max(1 / rate, low), high))

    def share(self, let_out: int, at: float, capacity: float, rate: float) -> float:
        """The share of the plan a process got, when the ``let_out``-th token of this ramp
        (let out ``at``, loop time) was refused: the tokens let out before it, over what a
        full bucket of ``capacity`` refilled at ``rate`` would have allowed by then."""
        return min(1.0, max(0, let_out - 1) / (capacity + rate * max(0.0, at - self.start)))


#: The rate after a cut, as a fraction of the rate before it: AWS's adaptive mode and
#: CUBIC (RFC 9438) both use 0.7, a gentler cut than TCP Reno's halving.
CUT = 0.7
#: CUBIC's C, the curve's steepness, as a fraction of the ceiling per second cubed.
#: Scaled by the ceiling, every plan gets the same curve in time, so a 1/s plan recovers
#: as many seconds after a cut as a 20/s one does (3.1 s back to the old rate).  AWS uses
#: C = 0.4 requests/s³ whatever the rate (0.02 of a 20/s plan); half of that was measured
#: to draw a third fewer 429s from 8 processes sharing a plan, for the same throughput
#: (bench_processes; see RESULTS.md).
STEEPNESS = 0.01
#: The lowest rate a cut goes to, as a fraction of the ceiling: a rate of nothing would
#: never refill.  A fiftieth still lets fifty processes share one seller's plan.
FLOOR = 0.02
#: When a 429 cannot be matched to the moment its request was let out, one that comes
#: within this long (plus one refill interval) of a cut is taken to answer a request sent
#: before the cut: SP-API round trips take a few hundred milliseconds.
ROUND_TRIP_ALLOWANCE = 0.5


class AdaptiveBucket(Bucket):
    """A bucket that lowers its rate on 429s it did not expect and climbs back by CUBIC.

    The plan's rate (or the rate ``x-amzn-RateLimit-Limit`` reports) is the *ceiling*.
    A 429 to a request this bucket let out means something else spends the same budget
    (another process of the same seller): the rate is cut to :data:`CUT` of what it was,
    never below :data:`FLOOR` of the ceiling, and then follows CUBIC's curve

        rate(t) = w_max + C · (t − K)³,   K = ∛((w_max − cut rate) / C)

    from the cut: quickly up at first, flat near ``w_max`` (the rate that drew the 429,
    where the trouble started), then probing faster past it, until it meets the ceiling,
    which it never passes.  ``C`` is :data:`STEEPNESS` of the ceiling.  During a slow
    start (``slow_start=True``) the bucket has no rate of its own yet to cut from: a 429
    past the ramp's first step sets ``w_max`` to the share of the plan it had got so far.
    A cut that comes
    before the rate is back at the last ``w_max`` means the others want more of the plan
    than before: ``w_max`` is then set lower, halfway between the rate and the cut rate
    (CUBIC's fast convergence), so the processes even out their shares sooner.

    A burst of requests sent together draws its 429s together; they say one thing, so
    they make one cut.  Every cut starts a new :attr:`generation`; a 429 to a request let
    out in an older generation than the current one answers a request sent before the
    last cut, which that cut already allowed for.

    The burst shrinks with the rate (``capacity × rate / ceiling``): a process entitled to
    a quarter of the rate may not save up the whole burst while idle and then spend it
    into a budget it shares.
    """

    def __init__(
        self,
        operation_id: str,
        rate: float,
        burst: int,
        headroom: int | None = None,
        *,
        slow_start: bool = False,
    ) -> None:
        super().__init__(operation_id, rate, burst, headroom, slow_start=slow_start)
        self._ceiling = float(rate)
        self.generation = 0
        self._cut_at: float | None = None
        """Loop time of the last cut while the rate is below the ceiling, else ``None``."""
        self._last_cut = -math.inf
        self._w_max = self._ceiling
        self._k = 0.0
        self._c = 0.0

    def __repr__(self) -> str:
        return (
            f"AdaptiveBucket({self.operation_id!r}, rate={self.rate:g}, "
            f"ceiling={self._ceiling:g}, burst={self.burst})"
        )

    @property
    def ceiling(self) -> float:
        """The rate the bucket climbs back to and never passes: the plan's or the header's."""
        return self._ceiling

    def current_rate(self) -> float:
        """The rate now, moved along the curve since the last cut."""
        self._climb(asyncio.get_running_loop().time())
        return self.rate

    async def acquire(self) -> None:
        """Wait for a token and take it."""
        self._climb(asyncio.get_running_loop().time())
        await super().acquire()

    def try_take(self) -> float:
        """Take a token if one is free (``0``), else the seconds until one will be."""
        if self._cut_at is not None:
            self._climb(asyncio.get_running_loop().time())
        return super().try_take()

    def follow_header(self, rate: float) -> None:
        """The API reported its rate: that is the new ceiling (a cut rate stays below it)."""
        if not math.isfinite(rate) or rate <= 0 or abs(rate - self._ceiling) < 1e-9:
            return
        self._ceiling = float(rate)
        if self._cut_at is None:
            self._w_max = self._ceiling
            self._retime(self._ceiling)
        else:
            self._climb(asyncio.get_running_loop().time())

    def throttled(self, sent_in: int | None = None, let_out: LetOut | None = None) -> None:
        """A 429: cut the rate unless a cut has already answered the same burst; empty the bucket.

        ``sent_in`` is the generation the request was let out in.  Unknown (``None``), a
        429 within one refill interval plus :data:`ROUND_TRIP_ALLOWANCE` of the last cut
        is taken for an answer to a request sent before it.  ``let_out`` (the request's
        token, when known) tells where in a slow start it went out: a 429 during the ramp,
        past its first step, cuts the rate to the share of the plan the bucket had got
        until then (see :meth:`_Ramp.share`), not only by :data:`CUT`, since a process
        that shares the plan from its start has no earlier rate to go by.
        """
        now = asyncio.get_running_loop().time()
        if let_out is not None:
            sent_in = let_out.generation
        if sent_in is not None:
            fresh = sent_in >= self.generation
        else:
            fresh = now - self._last_cut >= 1 / self.rate + ROUND_TRIP_ALLOWANCE
        if fresh:
            self._cut(now, self._share(let_out, now))
        self.drain()

    def _share(self, let_out: LetOut | None, now: float) -> float:
        """The share of the plan a 429 during a slow start says this bucket had (else 1)."""
        ramp = self._ramp
        if ramp is None:
            return 1.0
        if let_out is not None and let_out.ramp is ramp:
            count, at = let_out.place, let_out.at
        else:  # not matched to its token: count what the ramp has let out so far
            count, at = ramp.let_out, now
        if count <= ramp.first:
            # Refused in the first step, sent all at once: the bucket had fewer tokens than
            # that, which says little of a share (another process, or a fault): the usual cut.
            return 1.0
        return ramp.share(count, at, self._limiter.max_rate, self.rate)

    def _cut(self, now: float, share: float = 1.0) -> None:
        if self._cut_at is not None:
            self._climb(now)
        rate = self.rate
        if share < 1.0:
            # Refused in a slow start: the share it had got is the most it can count on.
            rate = min(rate, max(share * self._ceiling, self._ceiling * FLOOR))
            self._w_max = rate
        # Cut again below the last plateau: others want more of the plan than before, so
        # aim the climb lower and leave them room (CUBIC's "fast convergence").
        elif rate < self._w_max:
            self._w_max = rate * (1 + CUT) / 2
        else:
            self._w_max = rate
        lowered = max(rate * CUT, self._ceiling * FLOOR)
        self._c = STEEPNESS * self._ceiling
        # Where the curve starts: at the lowered rate when t = 0.
        self._k = math.cbrt(max(self._w_max - lowered, 0.0) / self._c)
        self._cut_at = self._last_cut = now
        self.generation += 1
        self._retime(lowered)

    def _climb(self, now: float) -> None:
        """Move the rate along the curve to where it is at ``now``."""
        if self._cut_at is None:
            return
        t = now - self._cut_at - self._k
        rate = self._w_max + self._c * t * t * t
        if rate >= self._ceiling:
            self._cut_at = None
            self._w_max = rate = self._ceiling
        rate = max(rate, self._ceiling * FLOOR)
        if abs(rate - self.rate) > 1e-9 * rate:
            self._retime(rate)

    def _retime(self, rate: float) -> None:
        """Refill at ``rate`` from now on, with the burst scaled to match."""
        limiter = self._limiter
        limiter.has_capacity()  # settle what leaked out at the old rate first
        capacity = max(1.0, self.capacity * rate / self._ceiling)
        limiter.max_rate = capacity
        limiter.time_period = capacity / rate
        limiter._rate_per_sec = rate
        limiter._level = min(limiter._level, capacity)
        limiter._wake_next()


class RateLimits:
    """Rate and burst per operation, and the in-process buckets that enforce them.

    With no arguments it holds Amazon's published usage plans.  ``overrides`` maps an
    operationId to ``(rate, burst)`` for a seller whose plan is larger.  Pass one
    instance to several clients, in the same event loop, and clients of the same
    application and selling partner share their buckets, as Amazon's meter does (clients
    of other sellers get buckets of their own).  ``headroom`` sets how many tokens of
    each burst are held back against network jitter (default: 2 of a burst of 20 or more,
    none of smaller ones; 0 turns it off).

    By default the buckets are graceful towards other processes spending the same
    seller's plan without a shared store (see the module's docstring):

    * ``adaptive`` (default ``True``): a 429 to a request a bucket let out lowers its
      rate to its share of the plan, and it climbs back to the plan's rate along a CUBIC
      curve (:class:`AdaptiveBucket`).  Alone on the plan, a bucket never draws a 429
      and never changes its rate.
    * ``slow_start`` (default: as ``adaptive``): a bucket that is new or has been idle
      long enough to fill lets an eighth of its burst out at once and ramps up to the
      whole of it within about half a second (:data:`SLOW_START`), instead of firing the
      whole burst into a budget other processes may be spending too.

    ``adaptive=False`` is the exact bucket with its whole burst at once: right when this
    plan object is the only one spending the budget (one process, or a plan shared by
    every client of the seller).
    """

    def __init__(
        self,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        *,
        headroom: int | None = None,
        adaptive: bool = True,
        slow_start: bool | None = None,
    ) -> None:
        self._plans = plans_with(overrides)
        if headroom is not None and (
            isinstance(headroom, bool) or not isinstance(headroom, int) or headroom < 0
        ):
            raise ValueError(f"rate_limits: headroom must be an integer >= 0, got {headroom!r}")
        if not isinstance(adaptive, bool):
            raise TypeError(f"rate_limits: adaptive must be True or False, got {adaptive!r}")
        if slow_start is None:
            slow_start = adaptive
        elif not isinstance(slow_start, bool):
            raise TypeError(
                f"rate_limits: slow_start must be True, False or None, got {slow_start!r}"
            )
        self._headroom = headroom
        self._adaptive = adaptive
        self._slow_start = slow_start
        self._kind: type[Bucket] = AdaptiveBucket if adaptive else Bucket
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def __repr__(self) -> str:
        mode = "adaptive" if self._adaptive else "exact"
        if self._slow_start:
            mode += ", slow start"
        return f"RateLimits({len(self._buckets)} buckets in use, {mode})"

    @property
    def adaptive(self) -> bool:
        """Whether the buckets adapt their rate to 429s (see :class:`AdaptiveBucket`)."""
        return self._adaptive

    @property
    def slow_start(self) -> bool:
        """Whether a full bucket ramps up to its burst (see :data:`SLOW_START`)."""
        return self._slow_start

    @property
    def headroom(self) -> int | None:
        """Tokens held back per bucket (``None``: the default rule)."""
        return self._headroom

    def plan(self, operation_id: str) -> tuple[float, int]:
        """``(rate, burst)`` configured for an operation."""
        return self._plans[operation_id]

    def bucket(self, operation_id: str, scope: str = "") -> Bucket:
        """The bucket of an operation in a scope, made on first use."""
        key = (scope, operation_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            rate, burst = self._plans[operation_id]
            bucket = self._buckets[key] = self._kind(
                operation_id, rate, burst, self._headroom, slow_start=self._slow_start
            )
        return bucket

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        """See :meth:`UsagePlan.try_acquire`."""
        bucket = self._buckets.get((scope, operation_id)) or self.bucket(operation_id, scope)
        due = bucket.try_take()
        if due == 0 and self._adaptive:
            # The task that sends the request is the one that reads its answer: a 429 to
            # it finds here the generation (and the place in a slow start) it went out in.
            ramp = bucket._ramp
            _LET_OUT.set(
                LetOut(
                    bucket,
                    bucket.generation,
                    ramp,
                    0 if ramp is None else ramp.let_out,
                    bucket._limiter._last_check,
                )
            )
        return due

    def answered(self, scope: str, operation_id: str) -> None:
        """See :meth:`LearningPlan.answered`: a slow start under way goes on."""
        bucket = self._buckets.get((scope, operation_id))
        if bucket is not None and bucket._ramp is not None:
            bucket._ramp.answered += 1

    async def update_rate(self, scope: str, operation_id: str, rate: float) -> None:
        """See :meth:`UsagePlan.update_rate`."""
        self.bucket(operation_id, scope).follow_header(rate)

    async def throttled(self, scope: str, operation_id: str) -> None:
        """See :meth:`UsagePlan.throttled`."""
        bucket = self.bucket(operation_id, scope)
        if not isinstance(bucket, AdaptiveBucket):
            bucket.throttled()
            return
        let_out = _LET_OUT.get()
        if let_out is not None and let_out.bucket is bucket:
            _LET_OUT.set(None)
            bucket.throttled(let_out=let_out)
        else:
            bucket.throttled()


class LetOut(NamedTuple):
    """Where a request's token came from, for the 429 it may draw (adaptive plans)."""

    bucket: Bucket
    generation: int
    """The bucket's :attr:`~AdaptiveBucket.generation` when the token was taken."""
    ramp: _Ramp | None
    """The slow start under way then, if any."""
    place: int
    """The token's place in that slow start (1 for its first token)."""
    at: float
    """Loop time the token was taken."""


#: The last token this task took (adaptive plans only): the UsagePlan protocol does not
#: pass it from the request's token to the request's 429.
_LET_OUT: ContextVar[LetOut | None] = ContextVar("spapi_services_let_out", default=None)


def plans_with(overrides: Mapping[str, tuple[float, int]] | None) -> dict[str, tuple[float, int]]:
    """Every operation's published ``(rate, burst)``, with ``overrides`` checked and applied."""
    plans = {op: (r.rate, r.burst) for op, r in ROUTES.items()}
    for operation_id, plan in (overrides or {}).items():
        if operation_id not in plans:
            raise ValueError(f"rate_limits: unknown operationId {operation_id!r}")
        rate, burst = plan
        _check_plan(operation_id, rate, burst)
        plans[operation_id] = (float(rate), int(burst))
    return plans
