"""When to try a request again, and how long to wait first.

Two pure functions decide: :func:`should_retry` and :func:`retry_delay`.  The rules:

* A 429 is always retried: Amazon refused it before doing anything.
* A connection that never opened is retried: nothing was sent.
* 500, 502, 503, 504, timeouts and connections lost mid-request are ambiguous: the
  request may have taken effect.  They are retried only for idempotent operations, so
  an appointment or a reservation is never made twice, unless the caller opts in.
* A ``Retry-After`` longer than the policy allows means give up now, not sleep for it.
"""

from __future__ import annotations

import email.utils
import enum
import math
import random
from collections.abc import Callable
from datetime import UTC, datetime

import attrs

__all__ = ["Failure", "RetryPolicy", "retry_delay", "should_retry"]

_RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})


class Failure(enum.Enum):
    """What went wrong with an attempt, as far as retrying is concerned."""

    THROTTLED = "throttled"
    """HTTP 429."""
    SERVER = "server"
    """HTTP 500, 502, 503 or 504."""
    NOT_SENT = "not_sent"
    """The connection could not be opened."""
    AMBIGUOUS = "ambiguous"
    """Timeout or connection lost after the request may have been sent."""
    FINAL = "final"
    """Anything else: a 4xx answer, an undecodable body."""


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How many times, and how patiently, to retry a failed request.

    ``max_retries`` counts attempts after the first.  The delay doubles from
    ``base_delay`` up to ``max_delay``, less up to ``jitter`` of itself at random.  A
    ``Retry-After`` up to ``max_retry_after`` seconds is obeyed; a longer one ends the
    retries.  ``retry_non_idempotent=True`` also re-sends operations that create things
    (appointments, reservations, upload destinations) after an ambiguous failure, at the
    risk of creating them twice.
    """

    max_retries: int = attrs.field(default=3)
    base_delay: float = attrs.field(default=0.5)
    max_delay: float = attrs.field(default=8.0)
    max_retry_after: float = attrs.field(default=60.0)
    jitter: float = attrs.field(default=0.25)
    retry_non_idempotent: bool = False

    @max_retries.validator
    def _check_retries(self, _: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"RetryPolicy.max_retries: must be an integer >= 0, got {value!r}")

    @base_delay.validator
    @max_delay.validator
    @max_retry_after.validator
    def _check_delay(self, attribute: attrs.Attribute[float], value: float) -> None:
        # Only max_retry_after may be infinite ("always wait as long as told").
        may_be_infinite = attribute.name == "max_retry_after"
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 <= value <= math.inf
            or (value == math.inf and not may_be_infinite)
        ):
            raise ValueError(
                f"RetryPolicy.{attribute.name}: must be a number of seconds >= 0, got {value!r}"
            )

    @jitter.validator
    def _check_jitter(self, _: attrs.Attribute[float], value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise ValueError(f"RetryPolicy.jitter: must be between 0 and 1, got {value!r}")


def classify(status: int) -> Failure:
    """The failure kind of an HTTP error status."""
    if status == 429:
        return Failure.THROTTLED
    if status in _RETRYABLE_STATUSES:
        return Failure.SERVER
    return Failure.FINAL


def should_retry(
    policy: RetryPolicy,
    failure: Failure,
    *,
    retries_done: int,
    idempotent: bool,
    retry_after: float | None = None,
) -> bool:
    """Whether to make another attempt after ``failure``."""
    if retries_done >= policy.max_retries or failure is Failure.FINAL:
        return False
    if retry_after is not None and retry_after > policy.max_retry_after:
        return False
    if failure in (Failure.THROTTLED, Failure.NOT_SENT):
        return True
    return idempotent or policy.retry_non_idempotent


def retry_delay(
    policy: RetryPolicy,
    failure: Failure,
    *,
    retries_done: int,
    retry_after: float | None = None,
    paced: bool = False,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before the next attempt.

    ``paced`` says a rate limiter will hold the next attempt back anyway: after a 429 its
    bucket has been emptied, so the wait comes from there and adding a backoff on top
    would only slow bulk work below the plan's bound.
    """
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, policy.max_retry_after)
    if failure is Failure.THROTTLED and paced:
        return 0.0
    backoff = min(policy.base_delay * 2.0**retries_done, policy.max_delay)
    return backoff * (1.0 - policy.jitter * rand())


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header, or ``None`` when absent or unreadable.

    Both of HTTP's forms are read: delta-seconds (``"3"``; fractions allowed) and an
    HTTP-date, measured from ``now`` (a date already past means "now": ``0``).
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": UTC by RFC 5322
            when = when.replace(tzinfo=UTC)
        seconds = max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
    return seconds if seconds >= 0 else None
