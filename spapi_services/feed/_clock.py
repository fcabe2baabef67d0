"""The feed's two clocks, read from the client's :class:`~spapi_services.Timer`.

Polls are spaced on the timer's monotonic clock and wait with its ``sleep``.  Windows
need the date (``lastUpdatedAfter`` is one): a :class:`~spapi_services.WallClockTimer`
tells it (the default timer reads the system's; a test's fake timer moves it with its
monotonic clock); any other timer gets the system's date read once and moved on by its
monotonic clock (``_timing.WallClock``).
"""

from __future__ import annotations

from datetime import datetime

from .._timing import Timer, WallClock

__all__ = ["FeedClock"]


class FeedClock:
    """Monotonic time, wall time and sleep, all from one timer."""

    __slots__ = ("_timer", "_wall")

    def __init__(self, timer: Timer) -> None:
        self._timer = timer
        self._wall = WallClock(timer)

    def monotonic(self) -> float:
        """Seconds on the timer's monotonic clock."""
        return self._timer.now()

    def wall(self) -> datetime:
        """The time now, aware and in UTC."""
        return self._wall.now()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the timer."""
        await self._timer.sleep(seconds)
