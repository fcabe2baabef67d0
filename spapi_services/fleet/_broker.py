"""The fleet's task queue: taskiq-redis's stream broker, re-delivering a dead worker's tasks.

:class:`~taskiq_redis.RedisStreamBroker` reads a Redis stream through a consumer group:
a task stays pending in the group until its worker acknowledges it (after running it,
with the ``ack_type`` the fleet's task sets), and a pending task idle for
``idle_timeout`` is claimed by another worker (``XAUTOCLAIM``).  Its habits, in
taskiq-redis 1.2, are changed here:

* it looks for idle tasks only after reading new ones, so a quiet queue never gives
  back a dead worker's tasks: :class:`FleetBroker` looks every ``reclaim_interval``
  whether or not anything new came (taskiq-redis PR #129 proposes the same);
* a task running longer than ``idle_timeout`` looks idle, and another worker claims it
  while it still runs: :class:`FleetBroker` keeps its own running tasks fresh (an
  ``XCLAIM ... JUSTID`` to itself every third of ``idle_timeout``, only of entries the
  group still lists under this worker, so one another worker has taken over is never
  taken back, nor acknowledged from under it), from the first read until the broker
  shuts down, so a worker finishing its syncs after SIGTERM keeps them too;
* its Redis calls have no bound, and a dropped connection ends the listener and so the
  worker process: here every call is bounded (a blocking read by its block time plus
  the link's timeout), and the listener outlives Redis restarts, failovers and
  dropped connections.  It backs off (up to ``max_backoff`` seconds) and reconnects,
  and recreates the consumer group when Redis comes back without it (``NOGROUP``: a
  restart without persistence; the tasks lost with it are sent again by the schedule).
  An outage is logged once, and its end once.

It also reads one task at a time (``XREADGROUP COUNT 1``), so tasks wait in the stream,
not in a busy worker, and deletes a task from the stream once acknowledged, so the
stream holds only what is queued or running.  A task sent with the label
:data:`MARK_LABEL` (the key of its seller's queued mark) has its entry id written in
that mark in the same step as it enters the queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError
from taskiq import AckableMessage
from taskiq.message import BrokerMessage
from taskiq_redis import RedisStreamBroker

from ..redis._link import RedisLink, bounded_options, check_seconds, text
from ._locks import QUEUED_TTL

__all__ = ["MARK_LABEL", "FleetBroker"]

_log = logging.getLogger("spapi_services.fleet")

#: The label of a task naming its seller's queued mark (set by the fleet when it sends).
MARK_LABEL = "spapi_queued_mark"

# KEYS[1] the stream, KEYS[2] (if given) the seller's queued mark; ARGV[1] the task,
# ARGV[2] the mark's life in ms.  The entry's id, written in the mark if it still exists.
_KICK = """
local id = redis.call('XADD', KEYS[1], '*', 'data', ARGV[1])
if KEYS[2] then redis.call('SET', KEYS[2], id, 'XX', 'PX', ARGV[2]) end
return id
"""

# KEYS[1] the stream; ARGV[1] the group, ARGV[2] this consumer, ARGV[3...] the entries it
# runs.  Each entry the group still lists under this consumer is made fresh (idle 0);
# the others are returned, in pairs: the entry, and who holds it now ('' if nobody).
_KEEP_FRESH = """
local taken = {}
for i = 3, #ARGV do
  local entry = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #entry > 0 and entry[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    table.insert(taken, ARGV[i])
    table.insert(taken, #entry > 0 and entry[1][2] or '')
  end
end
return taken
"""

# KEYS[1] the stream; ARGV[1] the group, ARGV[2] the entry, ARGV[3] this consumer.  The
# entry acknowledged and deleted, unless another consumer holds it now (-1: theirs to
# acknowledge when their run ends).
_ACK = """
local entry = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #entry > 0 and entry[1][2] ~= ARGV[3] then return -1 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
"""


class FleetBroker(RedisStreamBroker):
    """A :class:`~taskiq_redis.RedisStreamBroker` that gives back a dead worker's tasks
    within ``idle_timeout`` plus ``reclaim_interval`` seconds, and never a live one's,
    and whose listener survives Redis going away and coming back.

    :param url: the Redis URL.
    :param queue_name: the stream's key.
    :param idle_timeout: seconds without a sign of life after which a worker's task is
        given to another.
    :param reclaim_interval: seconds between looks for such tasks.
    :param redis_timeout: seconds any one Redis call may take (a blocking read: its
        block time more).
    :param max_backoff: the longest wait between tries while Redis is unreachable.
    """

    def __init__(
        self,
        url: str,
        *,
        queue_name: str = "spapi:fleet:tasks",
        consumer_group_name: str = "spapi-fleet",
        idle_timeout: float = 60.0,
        reclaim_interval: float = 5.0,
        redis_timeout: float = 1.0,
        max_backoff: float = 5.0,
        **connection_kwargs: Any,
    ) -> None:
        if not idle_timeout > 0 or not reclaim_interval > 0:
            raise ValueError("idle_timeout and reclaim_interval: must be positive seconds")
        self.redis_timeout = check_seconds("FleetBroker", "redis_timeout", redis_timeout)
        self.max_backoff = check_seconds("FleetBroker", "max_backoff", max_backoff)
        block = min(reclaim_interval, 2.0)
        super().__init__(
            url,
            queue_name=queue_name,
            consumer_group_name=consumer_group_name,
            consumer_id="0",
            xread_block=max(1, round(block * 1000)),
            xread_count=1,
            idle_timeout=max(1, round(idle_timeout * 1000)),
            **{
                **bounded_options(self.redis_timeout, read_timeout=block + self.redis_timeout),
                **connection_kwargs,
            },
        )
        self.reclaim_interval = float(reclaim_interval)
        self.link = RedisLink(
            Redis(connection_pool=self.connection_pool),
            owner="FleetBroker",
            what="the task queue",
            timeout=self.redis_timeout,
            retry_interval=1.0,
            on_outage=(
                "waits for it: workers keep their running syncs and reconnect "
                f"(backing off up to {self.max_backoff:g}s)"
            ),
        )
        self._kick = self.link.script(_KICK)
        self._keep_fresh = self.link.script(_KEEP_FRESH)
        self._ack = self.link.script(_ACK)
        self._running: dict[str, str] = {}  # stream entry id -> stream
        self._acking: set[str] = set()  # entries being acknowledged right now
        self._keeper: asyncio.Task[None] | None = None

    # --- sending ----------------------------------------------------------------------

    async def kick(self, message: BrokerMessage) -> None:
        """Put a task in the queue (bounded), its entry id in its seller's mark if labelled."""
        queue = message.labels.get("queue_name") or self.queue_name
        mark = message.labels.get(MARK_LABEL)
        keys = [queue] if not mark else [queue, str(mark)]
        await self.link.call(
            lambda: self._kick(keys=keys, args=[message.message, round(QUEUED_TTL * 1000)])
        )

    async def _declare_consumer_group(self) -> None:
        """Create the consumer group (bounded); Redis away here is waited out by listen."""
        try:
            await self._create_group()
        except RedisError as exc:
            _log.warning("could not create the task queue's consumer group yet: %s", exc)

    async def _create_group(self) -> None:
        try:
            await self.link.call(
                lambda: self.link.client.xgroup_create(
                    self.queue_name, self.consumer_group_name, id=self.consumer_id, mkstream=True
                )
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):  # already there: what we want
                raise

    # --- receiving --------------------------------------------------------------------

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """New tasks, and every ``reclaim_interval`` the idle tasks of dead workers.

        Never ends on a Redis failure: it backs off and tries again until Redis answers.
        """
        # Worker processes forked from one parent would share the name it drew; each
        # reads under a name of its own, so the group lists one consumer per process.
        self.consumer_name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep_running_fresh())
        backoff = _Backoff(self.max_backoff)
        reclaim_at = 0.0
        while True:
            try:
                fetched: Any = await self._read()
            except RedisError as exc:
                await self._recover(exc, backoff)
                continue
            backoff.reset()
            _raise_if_cancelled()
            for stream, entries in fetched or ():
                for entry_id, fields in entries:
                    yield self._delivery(text(stream), text(entry_id), fields)
            if time.monotonic() < reclaim_at:
                continue
            reclaim_at = time.monotonic() + self.reclaim_interval
            try:
                reclaimed = await self._reclaim()
            except RedisError as exc:
                await self._recover(exc, backoff)
                continue
            for entry_id, fields in reclaimed:
                _log.info("taking over task %s from a worker that went quiet", entry_id)
                yield self._delivery(self.queue_name, entry_id, fields)

    async def _read(self) -> Any:
        return await self.link.call(
            lambda: self.link.client.xreadgroup(
                self.consumer_group_name,
                self.consumer_name,
                {self.queue_name: ">"},
                block=self.block,
                count=self.count,
            ),
            within=self.block / 1000 + self.redis_timeout,
        )

    async def _reclaim(self) -> list[tuple[str, Any]]:
        answer = await self.link.call(
            lambda: self.link.client.xautoclaim(
                self.queue_name,
                self.consumer_group_name,
                self.consumer_name,
                min_idle_time=self.idle_timeout,
                count=self.unacknowledged_batch_size,
            )
        )
        # Entries deleted meanwhile come back empty (Redis 6.2) or apart (Redis 7).
        return [(text(e), fields) for e, fields in answer[1] if fields]

    async def _recover(self, exc: RedisError, backoff: _Backoff) -> None:
        """After a failed read: recreate a lost consumer group, or wait and try again."""
        if _no_group(exc):
            _log.warning(
                "the task queue %s had no consumer group (Redis restarted without its "
                "data?): created again; tasks sent before are lost, and the schedule's "
                "next round sends them again",
                self.queue_name,
            )
            try:
                await self._create_group()
                return
            except RedisError:
                pass  # the wait below, then the read says what is wrong now
        await asyncio.sleep(backoff.next())

    def _delivery(self, stream: str, entry_id: str, fields: Any) -> AckableMessage:
        self._running[entry_id] = stream
        return AckableMessage(data=fields[b"data"], ack=self._acknowledge(stream, entry_id))

    def _acknowledge(self, stream: str, entry_id: str) -> Callable[[], Awaitable[None]]:
        async def ack() -> None:
            # Tried until Redis answers (for up to idle_timeout): the entry stays fresh
            # meanwhile, so no other worker runs the finished task again.
            backoff = _Backoff(self.max_backoff)
            give_up = time.monotonic() + self.idle_timeout / 1000
            self._acking.add(entry_id)
            try:
                while True:
                    try:
                        done = await self.link.call(
                            lambda: self._ack(
                                keys=[stream],
                                args=[self.consumer_group_name, entry_id, self.consumer_name],
                            )
                        )
                        if int(done) < 0:
                            _log.info(
                                "task %s ran here, but another worker has taken it over "
                                "since: left for that one to acknowledge",
                                entry_id,
                            )
                        return
                    except RedisError as exc:
                        if _no_group(exc):
                            return  # lost with Redis's data: nothing left to acknowledge
                        if time.monotonic() >= give_up:
                            _log.warning(
                                "task %s ran, but Redis did not take its acknowledgement "
                                "(%s); another worker may run it again (harmlessly: it "
                                "resumes from the checkpoint)",
                                entry_id,
                                exc,
                            )
                            return
                    await asyncio.sleep(backoff.next())
            finally:
                self._running.pop(entry_id, None)
                self._acking.discard(entry_id)

        return ack

    async def _keep_running_fresh(self) -> None:
        """Reset the idle time of this worker's running tasks, so none looks abandoned."""
        while True:
            await asyncio.sleep(self.idle_timeout / 3000)
            by_stream: dict[str, list[str]] = {}
            for entry_id, stream in list(self._running.items()):
                by_stream.setdefault(stream, []).append(entry_id)
            for stream, ids in by_stream.items():
                await self._refresh(stream, ids)

    async def _refresh(self, stream: str, ids: list[str]) -> None:
        try:
            taken = await self.link.call(
                lambda: self._keep_fresh(
                    keys=[stream], args=[self.consumer_group_name, self.consumer_name, *ids]
                )
            )
        except RedisError as exc:
            if _no_group(exc):
                for entry_id in ids:
                    self._running.pop(entry_id, None)
                _log.warning(
                    "Redis lost the queue's running tasks %s (restarted without its data?); "
                    "their syncs go on, and the schedule sends them again",
                    ", ".join(ids),
                )
            return  # an outage: logged by the link, and tried again next round
        for entry_id, holder in zip(map(text, taken[0::2]), map(text, taken[1::2]), strict=True):
            if entry_id in self._acking or self._running.pop(entry_id, None) is None:
                continue  # acknowledged meanwhile: gone from the group, as it should be
            _log.warning(
                "task %s was taken over by %s while this worker still ran it (it was "
                "silent for longer than idle_timeout); the seller's lock and fencing "
                "token keep the two syncs apart",
                entry_id,
                holder or "nobody (acknowledged or lost)",
            )

    async def shutdown(self) -> None:
        """Stop keeping running tasks fresh, then close the queue's connections."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            await asyncio.wait([keeper])
        await super().shutdown()


class _Backoff:
    """Waits that double from 0.1 s up to ``ceiling``, with jitter so workers spread out."""

    def __init__(self, ceiling: float) -> None:
        self.ceiling = ceiling
        self._next = 0.1

    def next(self) -> float:
        wait = min(self._next, self.ceiling)
        self._next = min(self._next * 2, self.ceiling)
        return wait * random.uniform(0.8, 1.0)

    def reset(self) -> None:
        self._next = 0.1


def _no_group(exc: BaseException) -> bool:
    """Whether Redis said the stream or its consumer group does not exist."""
    return isinstance(exc, ResponseError) and str(exc).startswith("NOGROUP")


def _raise_if_cancelled() -> None:
    """Raise CancelledError if this task was asked to stop.

    A cancellation that lands as a blocking read's answer arrives can be lost inside
    redis-py (the read completes and the next one starts), and the worker would then
    never stop on SIGTERM; the task's own record of the request is checked instead.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
