"""When to try a request again, how long to wait first, and the one loop that does it.

Two pure functions decide: :func:`should_retry` and :func:`retry_delay`; one classifier
reads a failed attempt (:func:`classify` for a status, :func:`classify_exception` for no
answer); one loop, :func:`run_attempts`, applies them.  API calls, the Login with Amazon
token exchange and the document PUT all retry through it.  The rules:

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
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import aiohttp
import attrs

from ._timing import Timer
from .errors import ApiConnectionError, ApiStatusError, ApiTimeoutError, SpApiError

__all__ = [
    "AttemptFailed",
    "Deadline",
    "Failure",
    "RetryNote",
    "RetryPolicy",
    "classify",
    "classify_exception",
    "parse_retry_after",
    "retry_delay",
    "run_attempts",
    "should_retry",
]

T = TypeVar("T")

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

    #: Attempts after the first, at most (0: never retry).
    max_retries: int = attrs.field(default=3)
    #: Seconds to wait before the first retry; the wait doubles from there.
    base_delay: float = attrs.field(default=0.5)
    #: The longest wait between two attempts, in seconds.
    max_delay: float = attrs.field(default=8.0)
    #: The longest ``Retry-After`` obeyed, in seconds; a longer one ends the retries (``math.inf``:
    #: always wait as told).
    max_retry_after: float = attrs.field(default=60.0)
    #: The share of each wait taken off at random (0 to 1), so clients do not retry in step.
    jitter: float = attrs.field(default=0.25)
    #: Also re-send operations that create things after an ambiguous failure, at the risk of
    #: creating them twice.
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


def classify_exception(exc: BaseException) -> tuple[Failure, str, type[ApiConnectionError]]:
    """What a failed attempt that got no HTTP answer means: kind, description, error class.

    The one place that reads aiohttp's exceptions, for API calls, the token exchange and
    the document PUT alike.
    """
    if isinstance(exc, aiohttp.ClientSSLError):
        # A certificate or TLS failure fails the same way again: never retried.
        return Failure.FINAL, f"TLS failed ({type(exc).__name__})", ApiConnectionError
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Failure.NOT_SENT, "timed out connecting", ApiTimeoutError
    if isinstance(exc, TimeoutError):
        return Failure.AMBIGUOUS, "timed out waiting for the answer", ApiTimeoutError
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure.NOT_SENT, f"could not connect ({exc.os_error})", ApiConnectionError
    if isinstance(exc, aiohttp.ClientPayloadError):
        return Failure.AMBIGUOUS, "the answer was cut short", ApiConnectionError
    return Failure.AMBIGUOUS, f"connection lost ({type(exc).__name__})", ApiConnectionError


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
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before the next attempt.

    A ``Retry-After`` is obeyed (up to the policy's cap).  After a 429 the wait is drawn
    at random between nothing and the exponential back-off ("full jitter"): callers
    throttled together then come back spread out instead of in the same instant, which
    matters most when something else (another client, another process) shares the plan.
    Other failures wait the back-off less up to ``jitter`` of it.
    """
    if retry_after is not None and retry_after >= 0:
        return min(retry_after, policy.max_retry_after)
    backoff = min(policy.base_delay * 2.0**retries_done, policy.max_delay)
    if failure is Failure.THROTTLED:
        return backoff * rand()
    return backoff * (1.0 - policy.jitter * rand())


class Deadline:
    """When a whole call must be over: waits, attempts and back-offs included.

    ``seconds=None`` means no bound beyond each attempt's own timeout.
    """

    __slots__ = ("at", "seconds", "what")

    def __init__(self, seconds: float | None, timer: Timer, *, what: str | None = None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else timer.now() + seconds
        if what is None:
            what = "no deadline" if seconds is None else f"the call's deadline of {seconds:g} s"
        self.what = what
        """How the deadline is named in messages."""

    def remaining(self, timer: Timer) -> float | None:
        """Seconds left (never below 0), or ``None`` when unbounded."""
        return None if self.at is None else max(self.at - timer.now(), 0.0)

    def ran_out(self, operation: str, stage: str) -> ApiTimeoutError:
        """The error for a call whose deadline passed while it was ``stage``."""
        return ApiTimeoutError(f"{operation}: {self.what} ran out while {stage}", stage=stage)


class AttemptFailed(Exception):
    """Raised by one attempt: what went wrong, and the error to raise if it is not retried."""

    def __init__(
        self,
        failure: Failure,
        error: SpApiError,
        *,
        reason: str,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.failure = failure
        self.error = error
        self.reason = reason
        self.retry_after = retry_after


@attrs.frozen
class RetryNote:
    """One retry about to be made: for log lines and traces."""

    attempt: int
    """The attempt that failed, from 1."""
    reason: str
    """What went wrong, such as ``HTTP 503`` or ``timed out connecting``."""
    delay: float
    """Seconds waited before the next attempt."""


async def run_attempts(
    attempt: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    idempotent: bool,
    timer: Timer,
    deadline: Deadline | None = None,
    throttled_within_deadline: bool = False,
    on_retry: Callable[[RetryNote], None] | None = None,
) -> T:
    """Run ``attempt`` until it succeeds or a failure should not be retried.

    ``attempt`` raises :class:`AttemptFailed` for a failure; anything else it raises
    passes through.  The last failure's error is raised, with a note when an earlier
    attempt got no clear answer (it may have taken effect).  With
    ``throttled_within_deadline`` (API calls paced by a usage plan) 429s are not counted
    against ``max_retries``: they are retried while the deadline leaves room.
    """
    counted = 0  # retries after failures other than paced 429s
    throttled = 0
    uncertain = False
    number = 0
    while True:
        number += 1
        try:
            return await attempt()
        except AttemptFailed as failed:
            failure = failed.failure
            paced = (
                failure is Failure.THROTTLED
                and throttled_within_deadline
                and deadline is not None
                and deadline.at is not None
            )
            done = throttled if paced else counted
            error = failed.error
            if not should_retry(
                policy,
                failure,
                retries_done=0 if paced else counted,
                idempotent=idempotent,
                retry_after=failed.retry_after,
            ):
                raise _final(error, uncertain, number) from error.__cause__
            delay = retry_delay(policy, failure, retries_done=done, retry_after=failed.retry_after)
            remaining = None if deadline is None else deadline.remaining(timer)
            if deadline is not None and remaining is not None and delay >= remaining:
                error.add_note(f"Not retried: {deadline.what} would pass before the next attempt.")
                raise _final(error, uncertain, number) from error.__cause__
            uncertain = uncertain or failure in (Failure.AMBIGUOUS, Failure.SERVER)
            if on_retry is not None:
                on_retry(RetryNote(attempt=number, reason=failed.reason, delay=delay))
            await timer.sleep(delay)
            if paced:
                throttled += 1
            else:
                counted += 1


_MAY_HAVE_RUN = (
    "An earlier attempt of this call got no clear answer (a timeout, a lost connection or "
    "a 5xx) and may have taken effect: this error may describe the state it left behind."
)


def _final(error: SpApiError, uncertain: bool, attempts: int) -> SpApiError:
    error.attempts = attempts
    if attempts > 1:
        error.add_note(f"Gave up after {attempts} attempts.")
    if uncertain and isinstance(error, ApiStatusError):
        # A cancel whose answer was lost, retried, meets a job already cancelled.
        error.may_have_taken_effect = True
        error.add_note(_MAY_HAVE_RUN)
    return error


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
