"""The fleet's task queue: taskiq-redis's stream broker, re-delivering a dead worker's tasks.

:class:`~taskiq_redis.RedisStreamBroker` reads a Redis stream through a consumer group:
a task stays pending in the group until its worker acknowledges it (after running it,
with the ``ack_type`` the fleet's task sets), and a pending task idle for
``idle_timeout`` is claimed by another worker (``XAUTOCLAIM``).  Two of its habits, in
taskiq-redis 1.2, are changed here:

* it looks for idle tasks only after reading new ones, so a quiet queue never gives
  back a dead worker's tasks: :class:`FleetBroker` looks every ``reclaim_interval``
  whether or not anything new came (taskiq-redis PR #129 proposes the same);
* a task running longer than ``idle_timeout`` looks idle, and another worker claims it
  while it still runs: :class:`FleetBroker` keeps its own running tasks fresh (an
  ``XCLAIM ... JUSTID`` to itself every third of ``idle_timeout``), so only a dead
  worker's tasks go idle.

It also reads one task at a time (``XREADGROUP COUNT 1``), so tasks wait in the stream,
not in a busy worker, and deletes a task from the stream once acknowledged, so the
stream holds only what is queued or running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

__all__ = ["FleetBroker"]

_log = logging.getLogger("spapi_services.fleet")


class FleetBroker(RedisStreamBroker):
    """A :class:`~taskiq_redis.RedisStreamBroker` that gives back a dead worker's tasks
    within ``idle_timeout`` plus ``reclaim_interval`` seconds, and never a live one's.

    :param url: the Redis URL.
    :param queue_name: the stream's key.
    :param idle_timeout: seconds without a sign of life after which a worker's task is
        given to another.
    :param reclaim_interval: seconds between looks for such tasks.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_name: str = "spapi:fleet:tasks",
        consumer_group_name: str = "spapi-fleet",
        idle_timeout: float = 60.0,
        reclaim_interval: float = 5.0,
        **connection_kwargs: Any,
    ) -> None:
        if not idle_timeout > 0 or not reclaim_interval > 0:
            raise ValueError("idle_timeout and reclaim_interval: must be positive seconds")
        super().__init__(
            url,
            queue_name=queue_name,
            consumer_group_name=consumer_group_name,
            consumer_id="0",
            xread_block=max(1, round(min(reclaim_interval, 2.0) * 1000)),
            xread_count=1,
            idle_timeout=max(1, round(idle_timeout * 1000)),
            **connection_kwargs,
        )
        self.reclaim_interval = float(reclaim_interval)
        self._running: dict[str, str] = {}  # stream entry id -> stream

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """New tasks, and every ``reclaim_interval`` the idle tasks of dead workers."""
        # Worker processes forked from one parent would share the name it drew; each
        # reads under a name of its own, so the group lists one consumer per process.
        self.consumer_name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        async with Redis(connection_pool=self.connection_pool) as conn:
            keeper = asyncio.create_task(self._keep_running_fresh())
            try:
                reclaim_at = 0.0
                while True:
                    fetched: Any = await conn.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        count=self.count,
                    )
                    _raise_if_cancelled()
                    for stream, entries in fetched or ():
                        for entry_id, fields in entries:
                            yield self._delivery(_text(stream), _text(entry_id), fields)
                    if time.monotonic() < reclaim_at:
                        continue
                    reclaim_at = time.monotonic() + self.reclaim_interval
                    for entry_id, fields in await self._reclaim(conn):
                        _log.info("taking over task %s from a worker that went quiet", entry_id)
                        yield self._delivery(self.queue_name, entry_id, fields)
            finally:
                keeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await keeper

    async def _reclaim(self, conn: Redis) -> list[tuple[str, dict[bytes, bytes]]]:
        answer = await conn.xautoclaim(
            self.queue_name,
            self.consumer_group_name,
            self.consumer_name,
            min_idle_time=self.idle_timeout,
            count=self.unacknowledged_batch_size,
        )
        # Entries deleted meanwhile come back empty (Redis 6.2) or apart (Redis 7).
        return [(_text(e), fields) for e, fields in answer[1] if fields]

    def _delivery(self, stream: str, entry_id: str, fields: Any) -> AckableMessage:
        self._running[entry_id] = stream
        return AckableMessage(data=fields[b"data"], ack=self._acknowledge(stream, entry_id))

    def _acknowledge(self, stream: str, entry_id: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            self._running.pop(entry_id, None)
            async with (
                Redis(connection_pool=self.connection_pool) as conn,
                conn.pipeline(transaction=True) as pipe,
            ):
                pipe.xack(stream, self.consumer_group_name, entry_id)
                pipe.xdel(stream, entry_id)
                await pipe.execute()

        return ack

    async def _keep_running_fresh(self) -> None:
        """Reset the idle time of this worker's running tasks, so none looks abandoned."""
        while True:
            await asyncio.sleep(self.idle_timeout / 3000)
            by_stream: dict[str, list[str | bytes | int | memoryview[int]]] = {}
            for entry_id, stream in list(self._running.items()):
                by_stream.setdefault(stream, []).append(entry_id)
            try:
                async with Redis(connection_pool=self.connection_pool) as conn:
                    for stream, ids in by_stream.items():
                        await conn.xclaim(
                            stream,
                            self.consumer_group_name,
                            self.consumer_name,
                            min_idle_time=0,
                            message_ids=ids,
                            justid=True,
                        )
            except RedisError as exc:
                _log.warning("could not renew this worker's running tasks: %s", exc)


def _raise_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop.

    A cancellation that lands as a blocking read's answer arrives can be lost inside
    redis-py (the read completes and the next one starts), and the worker would then
    never stop on SIGTERM; the task's own record of the request is checked instead.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
