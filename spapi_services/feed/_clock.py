"""The feed's two clocks, read from the client's :class:`~spapi_services.Timer`.

Polls are spaced on the timer's monotonic clock and wait with its ``sleep``.  Windows
need the wall clock (``lastUpdatedAfter`` is a date): a timer that has a ``utcnow()``
method (an aware datetime) supplies it, so a test's fake timer moves both together; the
default timer reads the system's; any other timer gets a wall clock anchored once to the
system's and moved by its own monotonic clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .._timing import LoopTimer, Timer

__all__ = ["FeedClock"]


class FeedClock:
    """Monotonic time, wall time and sleep, all from one timer."""

    def __init__(self, timer: Timer) -> None:
        self._timer = timer
        self._anchor: tuple[datetime, float] | None = None

    def monotonic(self) -> float:
        """Seconds on the timer's monotonic clock."""
        return self._timer.now()

    def wall(self) -> datetime:
        """The time now, aware and in UTC."""
        utcnow = getattr(self._timer, "utcnow", None)
        if callable(utcnow):
            moment = utcnow()
            if not isinstance(moment, datetime) or moment.tzinfo is None:
                raise TypeError("Timer.utcnow() must return an aware datetime")
            return moment.astimezone(UTC)
        if isinstance(self._timer, LoopTimer):
            return datetime.now(UTC)
        if self._anchor is None:
            self._anchor = (datetime.now(UTC), self._timer.now())
        wall, mono = self._anchor
        return wall + timedelta(seconds=self._timer.now() - mono)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the timer."""
        await self._timer.sleep(seconds)
