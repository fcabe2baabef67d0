"""The emulator's two clocks: a monotonic one and a wall clock, behind one injectable object.

Usage plans, token lifetimes and upload-URL expiry run on the monotonic clock, so a jump
of the system time cannot refill a bucket or revive a token.  Business rules ("start time
in the past", creation dates) need the wall clock.  Tests pass a :class:`FakeClock` and move
both together with :meth:`FakeClock.advance` instead of sleeping; or a
:class:`ShiftedClock`, whose wall clock starts at a chosen instant and then runs in real
time, when the same world is wanted whatever the date but time must still pass (usage
plans that refill, tokens that expire).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "FakeClock", "ShiftedClock", "SystemClock"]


class Clock(Protocol):
    """What the emulator asks of a clock."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def now(self) -> datetime:
        """The current time, aware and in UTC."""
        ...


class SystemClock:
    """The real clocks of this machine."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        return time.monotonic()

    def now(self) -> datetime:
        """The current time, aware and in UTC."""
        return datetime.now(UTC)


class ShiftedClock:
    """The real clocks, with the wall clock reading ``start`` at the moment it is made.

    From then on both run at real speed: the monotonic clock is the system's own, and the
    wall clock is ``start`` plus the monotonic time elapsed since (so it never jumps with
    the system time either).

    :param start: the wall-clock time to start at (an aware datetime).
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ShiftedClock: start must be an aware datetime")
        self._start = start.astimezone(UTC)
        self._origin = time.monotonic()

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        return time.monotonic()

    def now(self) -> datetime:
        """``start`` plus the real time elapsed since the clock was made, in UTC."""
        return self._start + timedelta(seconds=time.monotonic() - self._origin)


class FakeClock:
    """A clock that only moves when told to.

    :param start: the wall-clock time it starts at (default: now, to the second).
    :param monotonic: the monotonic reading it starts at.
    """

    def __init__(self, start: datetime | None = None, *, monotonic: float = 1_000.0) -> None:
        if start is None:
            start = datetime.now(UTC).replace(microsecond=0)
        if start.tzinfo is None:
            raise ValueError("FakeClock: start must be an aware datetime")
        self._now = start.astimezone(UTC)
        self._monotonic = float(monotonic)

    def monotonic(self) -> float:
        """Seconds on the fake monotonic clock: they move only with :meth:`advance`."""
        return self._monotonic

    def now(self) -> datetime:
        """The fake wall clock's time, aware and in UTC: it moves only with :meth:`advance`."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by ``seconds``."""
        if seconds < 0:
            raise ValueError("FakeClock.advance: a clock does not go back")
        self._monotonic += seconds
        self._now += timedelta(seconds=seconds)
