"""A timer for the SDK that records its back-offs instead of sleeping them.

Pass it as ``ServicesClient(timer=...)``: every wait the request pipeline would sleep
(a retry's back-off, a Retry-After, a wait for the usage plan) is appended to the list
and skipped; its clock moves on by what was skipped, so deadlines still run out.
"""

from __future__ import annotations

import asyncio


class RecordingTimer(list[float]):
    """The seconds the SDK asked to sleep, in order (it is the list itself)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time() + sum(self)

    async def sleep(self, seconds: float) -> None:
        self.append(seconds)
        await asyncio.sleep(0)  # still a turn of the loop, as a real sleep would be


class ManualTimer(RecordingTimer):
    """A recording timer whose clock moves only when told (``advance``) or when slept."""

    def __init__(self, start: float = 1_000.0) -> None:
        super().__init__()
        self.start = start

    def now(self) -> float:
        return self.start + sum(self)

    def advance(self, seconds: float) -> None:
        self.start += seconds
