"""A timer for the SDK that records its back-offs instead of sleeping them.

Pass it as ``ServicesClient(timer=...)``: every wait the request pipeline would sleep
(a retry's back-off, a Retry-After, a wait for the usage plan) is appended to the list
and skipped; its clock moves on by what was skipped, so deadlines still run out.  Both
timers tell the date too (``utcnow()``: they are :class:`~spapi_services.WallClockTimer`),
and it moves with their monotonic clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


class RecordingTimer(list[float]):
    """The seconds the SDK asked to sleep, in order (it is the list itself)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time() + sum(self)

    async def sleep(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)  # still a turn of the loop, as a real sleep would be

    def utcnow(self) -> datetime:
        """The system's date, moved on by what was skipped (as :meth:`now` is)."""
        return datetime.now(UTC) + timedelta(seconds=sum(self))


class ManualTimer(RecordingTimer):
    """A recording timer whose clock moves only when told (``advance``) or when slept.

    Its date starts at ``date`` (default: the system's when it is made) and moves with
    :meth:`now`.
    """

    def __init__(self, start: float = 1_000.0, date: datetime | None = None) -> None:
        super().__init__()
        self.start = start
        self._origin = (datetime.now(UTC) if date is None else date, start)

    def now(self) -> float:
        return self.start + sum(self)

    def advance(self, seconds: float) -> None:
        self.start += seconds

    def utcnow(self) -> datetime:
        date, start = self._origin
        return date + timedelta(seconds=self.now() - start)
