"""A Redis command whose caller was cancelled meanwhile ends in ``CancelledError``.

redis-py writes each command under :func:`asyncio.wait_for`, and on Python 3.11 a
``wait_for`` whose inner write completes in the same turn as a cancellation returns the
write's result and drops the cancellation (CPython issue 86296, fixed in 3.12).  The
command then goes on as if nothing had been asked: it waits for the answer, and the call
that was cancelled carries on, maybe for ever in a loop.  The cancellation is still
counted on the task (:meth:`asyncio.Task.cancelling`), so it can be raised again once the
command is over, whichever way it ended.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from ._link import RedisLink

__all__ = ["run_cancellable"]

T = TypeVar("T")


async def run_cancellable(link: RedisLink, command: Callable[[], Awaitable[T]]) -> T:
    """``link.run(command)``, which itself raises ``CancelledError`` when the calling
    task was asked to cancel while the command ran and redis-py lost the request (instead
    of the answer, or of ``Unavailable`` when the lost cancellation left the command to
    time out).  Kept as the name the plan and the token cache call."""
    return await link.run(command)
