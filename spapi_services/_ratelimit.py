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
for processes that share a seller) implement the same three methods.  Buckets are kept
per *scope*, the application and selling partner Amazon meters by, so one plan object
can serve the clients of many sellers without mixing their budgets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from aiolimiter import AsyncLimiter

from ._routes import ROUTES

__all__ = ["Bucket", "RateLimits", "UsagePlan", "default_headroom"]


@runtime_checkable
class UsagePlan(Protocol):
    """Where a client takes its tokens: one bucket per scope (seller) and operation.

    ``scope`` identifies the application and selling partner whose budget is meant;
    every method must be safe to call from many tasks at once.
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


class RateLimits:
    """Rate and burst per operation, and the in-process buckets that enforce them.

    With no arguments it holds Amazon's published usage plans.  ``overrides`` maps an
    operationId to ``(rate, burst)`` for a seller whose plan is larger.  Pass one
    instance to several clients, in the same event loop, and clients of the same
    application and selling partner share their buckets, as Amazon's meter does (clients
    of other sellers get buckets of their own).  ``headroom`` sets how many tokens of
    each burst are held back against network jitter (default: 2 of a burst of 20 or more,
    none of smaller ones; 0 turns it off).
    """

    def __init__(
        self,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        *,
        headroom: int | None = None,
    ) -> None:
        self._plans = plans_with(overrides)
        if headroom is not None and (
            isinstance(headroom, bool) or not isinstance(headroom, int) or headroom < 0
        ):
            raise ValueError(f"rate_limits: headroom must be an integer >= 0, got {headroom!r}")
        self._headroom = headroom
        self._buckets: dict[tuple[str, str], Bucket] = {}

    def __repr__(self) -> str:
        return f"RateLimits({len(self._buckets)} buckets in use)"

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
            bucket = self._buckets[key] = Bucket(operation_id, rate, burst, self._headroom)
        return bucket

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        """See :meth:`UsagePlan.try_acquire`."""
        return self.bucket(operation_id, scope).try_take()

    async def update_rate(self, scope: str, operation_id: str, rate: float) -> None:
        """See :meth:`UsagePlan.update_rate`."""
        self.bucket(operation_id, scope).follow_header(rate)

    async def throttled(self, scope: str, operation_id: str) -> None:
        """See :meth:`UsagePlan.throttled`."""
        self.bucket(operation_id, scope).drain()


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
