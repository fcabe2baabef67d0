"""One sync per seller at a time: a lock with a lease in Redis, and a "queued" mark.

A sync takes ``{prefix}:fleet:lock:{seller}`` with ``SET NX PX`` (redis-py's
:class:`~redis.asyncio.lock.Lock`, with a random token of its own) and renews the lease
while it runs; only the holder's token can renew or release it.  A worker that dies
stops renewing, and the lease runs out: the seller is free again within one lease.  A
holder that fails to renew in time (Redis away, a frozen process) has lost the lock,
and its sync is cancelled rather than go on beside another.

The schedule marks a seller ``queued`` when it sends its task, and the task clears the
mark when it starts: a seller already queued or running is not sent again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError

__all__ = ["LeaseLost", "SellerBusy", "SellerLocks"]

_log = logging.getLogger("spapi_services.fleet")

# KEYS[1] the seller's lock, KEYS[2] its queued mark; ARGV[1] the mark's life in ms.
# 1 if the seller was free and is now marked queued; 0 if it is running or queued.
_MARK_QUEUED = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
"""


class SellerBusy(Exception):
    """Another sync of the seller holds its lock."""

    def __init__(self, seller_id: str) -> None:
        super().__init__(f"seller {seller_id} is being synced by another worker")
        self.seller_id = seller_id


class LeaseLost(Exception):
    """The lock's lease ran out (or was taken) while the sync held it."""

    def __init__(self, seller_id: str) -> None:
        super().__init__(
            f"seller {seller_id}: the sync lost its lock (its lease was not renewed in time) "
            "and was stopped, so that it cannot run beside another"
        )
        self.seller_id = seller_id


class SellerLocks:
    """The fleet's per-seller locks and queued marks in Redis.

    :param redis: a :class:`redis.asyncio.Redis` (the caller's to close).
    :param lease: seconds a lock lives unless renewed; it is renewed every third of it.
    """

    def __init__(self, redis: Redis, *, prefix: str = "spapi", lease: float = 30.0) -> None:
        if not lease > 0:
            raise ValueError(f"lease: must be a positive number of seconds, got {lease!r}")
        self.redis = redis
        self.prefix = prefix
        self.lease = float(lease)
        self._mark = redis.register_script(_MARK_QUEUED)

    def lock_key(self, seller_id: str) -> str:
        """The Redis key of the seller's sync lock (it exists while a sync holds it)."""
        return f"{self.prefix}:fleet:lock:{seller_id}"

    def queued_key(self, seller_id: str) -> str:
        """The Redis key of the seller's queued mark (it exists while a task waits)."""
        return f"{self.prefix}:fleet:queued:{seller_id}"

    @contextlib.asynccontextmanager
    async def hold(self, seller_id: str) -> AsyncIterator[None]:
        """Hold the seller's lock for the block, or raise :class:`SellerBusy` at once.

        Should the lease be lost meanwhile, the block is cancelled and
        :class:`LeaseLost` raised in its place.
        """
        lock = Lock(self.redis, self.lock_key(seller_id), timeout=self.lease, thread_local=False)
        if not await lock.acquire(blocking=False):
            raise SellerBusy(seller_id)
        holder = asyncio.current_task()
        assert holder is not None
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep(lock, seller_id, holder, lost))
        try:
            yield
        except asyncio.CancelledError:
            if lost.is_set():
                holder.uncancel()  # our own cancellation, turned into an error
                raise LeaseLost(seller_id) from None
            raise
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            if not lost.is_set():
                with contextlib.suppress(LockError, RedisError):
                    await lock.release()

    async def _keep(
        self, lock: Lock, seller_id: str, holder: asyncio.Task[object], lost: asyncio.Event
    ) -> None:
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                await lock.reacquire()
                renewed = time.monotonic()
                continue
            except LockError:
                pass  # not ours any more
            except RedisError:
                if time.monotonic() - renewed < self.lease:
                    continue  # Redis away for a moment: the lease still stands
            _log.warning("seller %s: lost its sync lock; stopping the sync", seller_id)
            lost.set()
            holder.cancel()
            return

    async def mark_queued(self, seller_id: str, ttl: float) -> bool:
        """Mark the seller queued unless it is running or queued; whether it was marked."""
        marked = await self._mark(
            keys=[self.lock_key(seller_id), self.queued_key(seller_id)],
            args=[max(1, round(ttl * 1000))],
        )
        return bool(int(marked))

    async def unmark_queued(self, seller_id: str) -> None:
        """Clear the seller's queued mark (its task has started, or was dropped)."""
        await self.redis.delete(self.queued_key(seller_id))

    async def running(self, seller_ids: Sequence[str]) -> tuple[set[str], set[str]]:
        """Which of the sellers are running, and which are queued."""
        if not seller_ids:
            return set(), set()
        async with self.redis.pipeline(transaction=False) as pipe:
            for seller_id in seller_ids:
                pipe.exists(self.lock_key(seller_id))
                pipe.exists(self.queued_key(seller_id))
            answers = await pipe.execute()
        running = {s for s, n in zip(seller_ids, answers[0::2], strict=True) if n}
        queued = {s for s, n in zip(seller_ids, answers[1::2], strict=True) if n}
        return running, queued
