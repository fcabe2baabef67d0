"""Usage plans: a token bucket per (selling partner, operation), as Amazon enforces them.

Each operation's rate and burst come from the route table.  A bucket starts full, refills
at ``rate`` tokens a second up to ``burst``, and a request that finds it empty is
throttled.  ``rate_scale`` multiplies every refill rate (tests use it to make a throttled
client recover quickly); :meth:`UsagePlans.set` overrides one operation; ``enforce=False``
switches throttling off.  Time comes from the injected clock's monotonic reading.
"""

from __future__ import annotations

from .._routes import ROUTES
from .clock import Clock

__all__ = ["TokenBucket", "UsagePlans"]


class TokenBucket:
    """A token bucket with a fractional fill level."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(float(self.burst), self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class UsagePlans:
    """Every bucket of the emulator, and the plan each operation runs on."""

    def __init__(self, clock: Clock, *, enforce: bool = True, rate_scale: float = 1.0) -> None:
        if rate_scale <= 0:
            raise ValueError("rate_scale: must be positive")
        self.enforce = enforce
        self._clock = clock
        self._scale = rate_scale
        self._overrides: dict[str, tuple[float, int]] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._headers: dict[str, str] = {}

    def plan(self, operation: str) -> tuple[float, int]:
        """The effective (rate per second, burst) of ``operation``."""
        override = self._overrides.get(operation)
        if override is not None:
            return override
        route = ROUTES[operation]
        return route.rate * self._scale, route.burst

    def set(self, operation: str, *, rate: float, burst: int) -> None:
        """Run ``operation`` on a plan of its own (its buckets start again, full)."""
        if operation not in ROUTES:
            raise KeyError(f"unknown operation {operation!r}")
        if rate <= 0 or burst < 1:
            raise ValueError("a usage plan needs rate > 0 and burst >= 1")
        self._overrides[operation] = (float(rate), int(burst))
        self._headers.pop(operation, None)
        for key in [k for k in self._buckets if k[1] == operation]:
            del self._buckets[key]

    def allow(self, owner: str, operation: str) -> bool:
        """Whether ``owner`` may call ``operation`` now (spends a token if so)."""
        if not self.enforce:
            return True
        key = (owner, operation)
        bucket = self._buckets.get(key)
        now = self._clock.monotonic()
        if bucket is None:
            rate, burst = self.plan(operation)
            bucket = self._buckets[key] = TokenBucket(rate, burst, now)
        return bucket.take(now)

    def header(self, operation: str) -> str:
        """The ``x-amzn-RateLimit-Limit`` value: the refill rate, as Amazon writes it."""
        value = self._headers.get(operation)
        if value is None:
            value = self._headers[operation] = repr(float(self.plan(operation)[0]))
        return value

    def reset(self) -> None:
        """Fill every bucket again (by forgetting them) and drop the overrides."""
        self._buckets.clear()
        self._overrides.clear()
        self._headers.clear()
