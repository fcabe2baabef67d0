"""What an attempt's answer means, and when to try again: pure functions and a schedule.

The receiver's answer decides (as the Standard Webhooks specification advises): a 2xx
is delivered; 410 Gone means the endpoint is gone, so it is disabled; 429, 502, 503 and
504 mean "slow down", so the whole endpoint waits (as long as ``Retry-After`` says);
anything else, a redirect included (redirects are never followed), is a failure to try
again.  Failures are retried on a schedule that spreads attempts over hours, each delay
jittered so that deliveries failed together do not come back together; after the last
attempt the delivery is dead-lettered, to be replayed by hand.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Sequence

import attrs

__all__ = ["DEFAULT_DELAYS", "AttemptOutcome", "RetrySchedule", "outcome_of"]

#: Seconds to wait before each attempt: now, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
#: 14 h, 20 h and 24 h (ten attempts over about three days).
DEFAULT_DELAYS: tuple[float, ...] = (
    0.0,
    5.0,
    5 * 60.0,
    30 * 60.0,
    2 * 3600.0,
    5 * 3600.0,
    10 * 3600.0,
    14 * 3600.0,
    20 * 3600.0,
    24 * 3600.0,
)

#: Statuses that ask the sender to slow down.
_SLOW_DOWN = frozenset({429, 502, 503, 504})


class AttemptOutcome(enum.Enum):
    """What one attempt's answer means for the delivery and its endpoint."""

    DELIVERED = "delivered"
    """A 2xx: the receiver has the message."""
    FAILED = "failed"
    """No answer (a timeout, a refused connection), a redirect, or an error status:
    try again later."""
    SLOW_DOWN = "slow_down"
    """429, 502, 503 or 504: try again later, and hold the whole endpoint back."""
    GONE = "gone"
    """410 Gone: the receiver wants no more; the endpoint is disabled."""


def outcome_of(status: int | None) -> AttemptOutcome:
    """The outcome of an attempt answered with ``status`` (``None``: no answer)."""
    if status is None:
        return AttemptOutcome.FAILED
    if 200 <= status < 300:
        return AttemptOutcome.DELIVERED
    if status == 410:
        return AttemptOutcome.GONE
    if status in _SLOW_DOWN:
        return AttemptOutcome.SLOW_DOWN
    return AttemptOutcome.FAILED


def _delays(value: Sequence[float]) -> tuple[float, ...]:
    delays = tuple(float(v) for v in value)
    if not delays:
        raise ValueError("delays: give at least one (the wait before the first attempt)")
    for index, delay in enumerate(delays):
        if not delay >= 0 or delay == float("inf"):
            raise ValueError(f"delays[{index}]: must be a finite number of seconds >= 0")
    return delays


@attrs.frozen(kw_only=True)
class RetrySchedule:
    """When a delivery is attempted, and when it is given up.

    :param delays: seconds to wait before each attempt, the first usually ``0``; there
        are as many attempts as delays, then the delivery is dead-lettered.
    :param jitter: each delay is multiplied by a random factor within ``1 ± jitter``.
    :param max_retry_after: the longest ``Retry-After`` obeyed (a longer one is cut to it).
    :param slow_down: seconds an endpoint is held back after a "slow down" status that
        came without ``Retry-After``.
    """

    #: Seconds to wait before each attempt; as many attempts as delays, then the delivery is
    #: dead-lettered.
    delays: tuple[float, ...] = attrs.field(default=DEFAULT_DELAYS, converter=_delays)
    #: Each delay is multiplied by a random factor within 1 ± jitter.
    jitter: float = attrs.field(default=0.2)
    #: The longest ``Retry-After`` obeyed, in seconds (a longer one is cut to it).
    max_retry_after: float = attrs.field(default=24 * 3600.0)
    #: Seconds an endpoint is held back after a slow-down status without ``Retry-After``.
    slow_down: float = attrs.field(default=5.0)

    @jitter.validator
    def _check_jitter(self, _attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 <= value < 1:
            raise ValueError(f"jitter: must be at least 0 and less than 1, got {value!r}")

    @max_retry_after.validator
    @slow_down.validator
    def _check_seconds(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not 0 <= value < float("inf"):
            raise ValueError(f"{attribute.name}: must be a finite number of seconds >= 0")

    @property
    def attempts(self) -> int:
        """How many attempts a delivery gets before it is dead-lettered."""
        return len(self.delays)

    def first_delay(self, rng: random.Random | None = None) -> float:
        """Seconds before a new delivery's first attempt."""
        return self._jittered(self.delays[0], rng)

    def next_delay(
        self, attempts: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait after ``attempts`` failed attempts, or ``None``: dead-letter it.

        A ``Retry-After`` (seconds) is obeyed up to ``max_retry_after`` when it asks for
        longer than the schedule would wait.
        """
        if attempts < 1:
            raise ValueError(f"attempts: must be at least 1, got {attempts}")
        if attempts >= len(self.delays):
            return None
        delay = self._jittered(self.delays[attempts], rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    def endpoint_pause(self, outcome: AttemptOutcome, retry_after: float | None) -> float:
        """Seconds the whole endpoint is held back after an attempt with ``outcome``."""
        if outcome is not AttemptOutcome.SLOW_DOWN:
            return 0.0
        if retry_after is None:
            return self.slow_down
        return min(retry_after, self.max_retry_after)

    def _jittered(self, delay: float, rng: random.Random | None) -> float:
        if delay == 0 or self.jitter == 0:
            return delay
        draw = (rng or random).uniform(-self.jitter, self.jitter)
        return delay * (1 + draw)
