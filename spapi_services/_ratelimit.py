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
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from aiolimiter import AsyncLimiter

from ._routes import ROUTES

__all__ = ["Bucket", "RateLimits", "default_headroom"]


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
    """Rate and burst per operation, and the buckets that enforce them.

    With no arguments it holds Amazon's published usage plans.  ``overrides`` maps an
    operationId to ``(rate, burst)`` for a seller whose plan is larger (or for a shared
    budget).  Pass one instance to several clients of the same selling partner, in the
    same event loop, and they share the buckets, as Amazon's meter does.  ``headroom``
    sets how many tokens of each burst are held back against network jitter (default:
    2 of a burst of 20 or more, none of smaller ones; 0 turns it off).
    """

    def __init__(
        self,
        overrides: Mapping[str, tuple[float, int]] | None = None,
        *,
        headroom: int | None = None,
    ) -> None:
        plans = {op: (r.rate, r.burst) for op, r in ROUTES.items()}
        for operation_id, plan in (overrides or {}).items():
            if operation_id not in plans:
                raise ValueError(f"rate_limits: unknown operationId {operation_id!r}")
            rate, burst = plan
            _check_plan(operation_id, rate, burst)
            plans[operation_id] = (float(rate), int(burst))
        if headroom is not None and (
            isinstance(headroom, bool) or not isinstance(headroom, int) or headroom < 0
        ):
            raise ValueError(f"rate_limits: headroom must be an integer >= 0, got {headroom!r}")
        self._plans = plans
        self._headroom = headroom
        self._buckets: dict[str, Bucket] = {}

    def __repr__(self) -> str:
        return f"RateLimits({len(self._buckets)} buckets in use)"

    def plan(self, operation_id: str) -> tuple[float, int]:
        """``(rate, burst)`` configured for an operation."""
        return self._plans[operation_id]

    def bucket(self, operation_id: str) -> Bucket:
        """The bucket of an operation, made on first use (inside the running loop)."""
        bucket = self._buckets.get(operation_id)
        if bucket is None:
            rate, burst = self._plans[operation_id]
            bucket = self._buckets[operation_id] = Bucket(operation_id, rate, burst, self._headroom)
        return bucket
