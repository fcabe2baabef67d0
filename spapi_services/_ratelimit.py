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
every question is a round trip also :class:`ReservingPlan` (book a token ahead).  Buckets are kept
per *scope*, the application and selling partner Amazon meters by, so one plan object
can serve the clients of many sellers without mixing their budgets.

Several processes spending one seller's plan each hold a full copy of it, so together
they send several times the plan and draw 429s.  ``RateLimits(adaptive=True)`` makes
each process find its share instead, as the AWS SDKs' adaptive retry mode does: a 429
cuts the bucket's rate, and the rate then climbs back to the plan along a CUBIC curve
(see :class:`AdaptiveBucket`).  The processes settle where their rates add up to the
plan.  A store shared by the processes (Redis) meters the one budget exactly instead.
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
        self, operation_id: str, rate: float, burst: int, headroom: int | None = None
    ) -> None:
        _check_plan(operation_id, rate, burst)
        self.operation_id = operation_id
        self.burst = burst
        if headroom is None:
            headroom = default_headroom(burst)
        self.capacity = max(1, burst - headroom)
        """How many requests go out at once from a full bucket."""
        self._limiter = AsyncLimiter(self.capacity, self.capacity / rate)

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
            limiter._level += 1
            return 0.0
        # aiolimiter keeps its level in tokens and leaks ``_rate_per_sec`` of them a second;
        # room for one more opens when the level drops to ``max_rate - 1``.
        due = (limiter._level + 1 - limiter.max_rate) / limiter._rate_per_sec
        return max(due, 1e-3)

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

    generation = 0
    """How many times the bucket has lowered its rate after 429s (never, for this one)."""

    def throttled(self, sent_in: int | None = None) -> None:
        """The API answered 429 to a request this bucket let out: empty the bucket.

        ``sent_in`` is the :attr:`generation` the request was let out in, if known (an
        :class:`AdaptiveBucket` reads it; this exact bucket has no use for it).
        """
        self.drain()


#: The rate after a cut, as a fraction of the rate before it: AWS's adaptive mode and
#: CUBIC (RFC 9438) both use 0.7, a gentler cut than TCP Reno's halving.
CUT = 0.7
#: CUBIC's C, the curve's steepness, as a fraction of the ceiling per second cubed.
#: AWS uses C = 0.4 requests/s³ whatever the rate; scaled by the ceiling, a 20/s plan gets
#: exactly AWS's curve and every other plan the same curve in time, so a 1/s plan
#: recovers as many seconds after a cut as a 20/s one does (2.5 s back to the old rate).
STEEPNESS = 0.02
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
    which it never passes.  ``C`` is :data:`STEEPNESS` of the ceiling.  A cut that comes
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
        self, operation_id: str, rate: float, burst: int, headroom: int | None = None
    ) -> None:
        super().__init__(operation_id, rate, burst, headroom)
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

    def throttled(self, sent_in: int | None = None) -> None:
        """A 429: cut the rate unless a cut has already answered the same burst; empty the bucket.

        ``sent_in`` is the generation the request was let out in.  Unknown (``None``), a
        429 within one refill interval plus :data:`ROUND_TRIP_ALLOWANCE` of the last cut
        is taken for an answer to a request sent before it.
        """
        now = asyncio.get_running_loop().time()
        if sent_in is not None:
            fresh = sent_in >= self.generation
        else:
            fresh = now - self._last_cut >= 1 / self.rate + ROUND_TRIP_ALLOWANCE
        if fresh:
            self._cut(now)
        self.drain()

    def _cut(self, now: float) -> None:
        if self._cut_at is not None:
            self._climb(now)
        rate = self.rate
        lowered = max(rate * CUT, self._ceiling * FLOOR)
        # Cut again below the last plateau: others want more of the plan than before, so
        # aim the climb lower and leave them room (CUBIC's "fast convergence").
        self._w_max = rate * (1 + CUT) / 2 if rate < self._w_max else rate
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

    ``adaptive=True`` is for several processes that spend one seller's plan without a
    shared store: each bucket lowers its rate when the API throttles a request it let out,
    and climbs back to the plan's rate along a CUBIC curve (:class:`AdaptiveBucket`).  The
    default is the exact bucket, right when this plan is the only one spending the budget.
    """

    def __init__(
        self,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        *,
        headroom: int | None = None,
        adaptive: bool = False,
    ) -> None:
        self._plans = plans_with(overrides)
        if headroom is not None and (
            isinstance(headroom, bool) or not isinstance(headroom, int) or headroom < 0
        ):
            raise ValueError(f"rate_limits: headroom must be an integer >= 0, got {headroom!r}")
        if not isinstance(adaptive, bool):
            raise TypeError(f"rate_limits: adaptive must be True or False, got {adaptive!r}")
        self._headroom = headroom
        self._adaptive = adaptive
        self._kind: type[Bucket] = AdaptiveBucket if adaptive else Bucket
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def __repr__(self) -> str:
        mode = ", adaptive" if self._adaptive else ""
        return f"RateLimits({len(self._buckets)} buckets in use{mode})"

    @property
    def adaptive(self) -> bool:
        """Whether the buckets adapt their rate to 429s (see :class:`AdaptiveBucket`)."""
        return self._adaptive

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
            bucket = self._buckets[key] = self._kind(operation_id, rate, burst, self._headroom)
        return bucket

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        """See :meth:`UsagePlan.try_acquire`."""
        bucket = self.bucket(operation_id, scope)
        due = bucket.try_take()
        if due == 0 and self._adaptive:
            # The task that sends the request is the one that reads its answer: a 429 to
            # it finds here the generation the request went out in.
            _LET_OUT.set((bucket, bucket.generation))
        return due

    async def update_rate(self, scope: str, operation_id: str, rate: float) -> None:
        """See :meth:`UsagePlan.update_rate`."""
        self.bucket(operation_id, scope).follow_header(rate)

    async def throttled(self, scope: str, operation_id: str) -> None:
        """See :meth:`UsagePlan.throttled`."""
        bucket = self.bucket(operation_id, scope)
        sent_in = None
        if self._adaptive:
            let_out = _LET_OUT.get()
            if let_out is not None and let_out[0] is bucket:
                sent_in = let_out[1]
                _LET_OUT.set(None)
        bucket.throttled(sent_in)


#: The bucket and generation of the last token this task took (adaptive plans only): the
#: UsagePlan protocol does not pass it from the request's token to the request's 429.
_LET_OUT: ContextVar[tuple[Bucket, int] | None] = ContextVar("spapi_services_let_out", default=None)


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
