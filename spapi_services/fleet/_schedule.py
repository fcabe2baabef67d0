"""The fleet's schedule: taskiq's scheduler sends each seller's task every ``interval``.

:class:`SellerScheduleSource` gives taskiq's scheduler one interval schedule per seller
of the directory (read again every ``update_interval`` of the scheduler), leaving out
sellers whose current refresh token Amazon refused.  Before each send it marks the
seller queued in Redis, which fails, and cancels the send, while the seller is still
running or its last task is still waiting, however long it has waited (the mark names
the task's entry in the queue): a slow seller, or a long queue, is never piled up
behind itself.  A task lost with Redis's data (a restart without persistence) leaves no
mark behind, so the next round sends it again.  A send the queue refuses (Redis away
between the mark and the send) is one line in the log, and its mark is cleared, so the
next round sends the seller (the mark expires within a few of the link's timeouts
should Redis not answer that either).
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import TYPE_CHECKING

from redis.exceptions import RedisError
from taskiq import ScheduleSource, TaskiqScheduler
from taskiq.exceptions import ScheduledTaskCancelledError, SendTaskError
from taskiq.scheduler.scheduled_task import ScheduledTask

if TYPE_CHECKING:
    from ._fleet import Fleet

__all__ = ["SellerScheduleSource", "SellerScheduler"]

_log = logging.getLogger("spapi_services.fleet")


class SellerScheduleSource(ScheduleSource):
    """One schedule per due seller, every ``fleet.interval``; running sellers skipped."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    async def get_schedules(self) -> list[ScheduledTask]:
        """One interval schedule of the sync task for each due seller.

        Sellers whose current refresh token was refused are left out; the scheduler
        asks again every ``update_interval``, so sellers added meanwhile join then.
        """
        seconds = max(1, math.ceil(self.fleet.interval.total_seconds()))
        task = self.fleet.sync_seller
        return [
            ScheduledTask(
                task_name=task.task_name,
                labels={**task.labels, **self.fleet.mark_labels(seller_id)},
                args=[seller_id],
                kwargs={},
                schedule_id=f"spapi-sync:{seller_id}",
                interval=seconds,
            )
            for seller_id in await self.fleet.due_seller_ids()
        ]

    async def pre_send(self, task: ScheduledTask) -> None:
        """Mark the seller queued before its task is sent, or cancel this send.

        The send is cancelled (taskiq's ``ScheduledTaskCancelledError``) while the
        seller is running or its previous task still waits in the queue, and when
        Redis does not answer (the next round tries again).
        """
        seller_id = str(task.args[0])
        try:
            marked = await self.fleet.mark_queued(seller_id)
        except RedisError as exc:
            _log.warning("seller %s: not sent this round, Redis did not answer: %s", seller_id, exc)
            raise ScheduledTaskCancelledError from None
        if not marked:
            # Still running, or its last task still waits: this round skips it.
            raise ScheduledTaskCancelledError

    async def shutdown(self) -> None:
        """Close the fleet's connections when the scheduler stops."""
        await self.fleet.aclose()


class SellerScheduler(TaskiqScheduler):
    """taskiq's scheduler, for the fleet's schedule: a send the queue refused is logged
    in one line (not as a task exception nobody retrieved) and frees its seller for the
    next round."""

    async def on_ready(self, source: ScheduleSource, task: ScheduledTask) -> None:
        """Send the task (see :meth:`taskiq.TaskiqScheduler.on_ready`)."""
        try:
            await super().on_ready(source, task)
        except SendTaskError as exc:
            if not isinstance(source, SellerScheduleSource):
                raise
            seller_id = str(task.args[0])
            _log.warning(
                "seller %s: not sent this round, the queue did not take it: %s",
                seller_id,
                exc.__cause__ or exc,
            )
            with contextlib.suppress(RedisError):
                await source.fleet.mark_unsent(seller_id)
