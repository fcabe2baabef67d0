"""The clock and the sleep the request pipeline waits with, behind one small seam.

The pipeline never calls :func:`asyncio.sleep` or reads a clock directly: it asks its
:class:`Timer`.  The default follows the running event loop, so a test that drives the
loop's clock drives the SDK too; a test can also pass a timer that records the back-offs
instead of sleeping them.

Some parts need the date as well (a change feed asks for the jobs updated after a
moment).  A timer that can tell it declares so by being a :class:`WallClockTimer` (it
has ``utcnow()``): a test's fake timer then moves the date with its monotonic clock.
For any other timer, :class:`WallClock` reads the system's date once and moves it on by
the timer's monotonic clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["LoopTimer", "Timer", "WallClock", "WallClockTimer"]


class Timer(Protocol):
    """What the pipeline asks of time.

    Only ``now()`` and ``sleep()`` are required.  A timer may also tell the date (a
    ``utcnow()`` method: see :class:`WallClockTimer`); the SDK's own timer does.
    """

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


@runtime_checkable
class WallClockTimer(Timer, Protocol):
    """A :class:`Timer` that also tells the date, on a clock that moves with ``now()``.

    Give a fake timer ``utcnow()`` and the parts of the SDK that need dates (the change
    feed's polling windows) follow it: a test that moves the timer moves the date with
    it.  A timer without it gets the system's date, moved on by its ``now()``.
    """

    def utcnow(self) -> datetime:
        """The time now, as an aware datetime (in UTC or any other zone)."""
        ...


class LoopTimer:
    """The running event loop's clock and :func:`asyncio.sleep`; the system's date."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def utcnow(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "LoopTimer()"


class WallClock:
    """The date, as a timer tells it: its own ``utcnow()`` if it is a
    :class:`WallClockTimer`, else the system's date read once (at the first reading) and
    moved on by the timer's monotonic clock."""

    __slots__ = ("_anchor", "_timer", "_utcnow")

    def __init__(self, timer: Timer) -> None:
        self._timer = timer
        # Asked once: an isinstance check against a protocol is slow.
        self._utcnow: Callable[[], datetime] | None = (
            timer.utcnow if isinstance(timer, WallClockTimer) else None
        )
        self._anchor: tuple[datetime, float] | None = None

    def now(self) -> datetime:
        """The time now, aware and in UTC."""
        if self._utcnow is not None:
            moment = self._utcnow()
            if not isinstance(moment, datetime) or moment.utcoffset() is None:
                raise TypeError(
                    f"{type(self._timer).__name__}.utcnow(): must return an aware datetime, "
                    f"got {moment!r}"
                )
            return moment if moment.tzinfo is UTC else moment.astimezone(UTC)
        if self._anchor is None:
            self._anchor = (datetime.now(UTC), self._timer.now())
        wall, mono = self._anchor
        return wall + timedelta(seconds=self._timer.now() - mono)
