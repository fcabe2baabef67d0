"""The clock and the sleep the request pipeline waits with, behind one small seam.

The pipeline never calls :func:`asyncio.sleep` or reads a clock directly: it asks its
:class:`Timer`.  The default follows the running event loop, so a test that drives the
loop's clock drives the SDK too; a test can also pass a timer that records the back-offs
instead of sleeping them.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["LoopTimer", "Timer"]


class Timer(Protocol):
    """What the pipeline asks of time."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class LoopTimer:
    """The running event loop's clock and :func:`asyncio.sleep`."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "LoopTimer()"
