"""One sync per seller at a time: a lock with a lease in Redis, and a "queued" mark.

A sync takes ``{prefix}:fleet:lock:{seller}`` with ``SET NX PX`` and a random token of
its own, and renews the lease while it runs; only the holder's token renews or releases
it.  A worker that dies stops renewing, and the lease runs out: the seller is free again
within one lease.

A lease is judged by this process's monotonic clock, never by whether Redis answers: a
renewal counts from the moment it was *sent* (Redis starts the new lease later than
that), and a holder that has not renewed for ``lease - margin`` seconds has lost the
lock, whatever Redis says afterwards.  Each renewal is bounded by the link's timeout and
by what is left of the lease, so a silent link (a half-open connection, a partition)
cannot hold the keeper up: the sync is cancelled ``margin`` seconds before the key can
expire and another worker take the seller.  What the stranded sync might still write is
refused by the mirror's fencing token (see :class:`~spapi_services.FencedOut`).  Should
Redis lose the key (a restart without persistence) while the lease still stands, the
holder takes it again if nobody else has.

The schedule marks a seller ``queued`` when it sends its task, and the task clears the
mark when it starts: a seller already queued or running is not sent again.  The mark
holds the id of the task's entry in the queue, so it stays true however long the task
waits (a backlog longer than the interval), and goes stale by itself once the entry is
gone (run, or lost with Redis).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from .._timing import LoopTimer, Timer
from ..redis._link import RedisLink, check_seconds

__all__ = ["LeaseLost", "SellerBusy", "SellerLocks"]

_log = logging.getLogger("spapi_services.fleet")

#: The mark of a task being sent (replaced by its queue entry's id once it is in).
SENDING = "sending"
#: How long a "sending" mark lives, in the link's timeouts (and at least
#: :data:`SENDING_FLOOR` seconds).  The send that follows the mark is bounded by the
#: link, so an older mark is a send that failed (Redis away, a timeout, the sender
#: gone), and must hold its seller back no longer than that: a minute's mark made the
#: schedule skip the seller for a minute after every failed send.
SENDING_TIMEOUTS = 5
SENDING_FLOOR = 1.0
#: How long a mark naming a queue entry lives at most (it is checked against the queue,
#: so this only sweeps marks nobody will look at again).
QUEUED_TTL = 7 * 86_400.0

# KEYS[1] the seller's lock, KEYS[2] its queued mark, KEYS[3] the task queue (stream);
# ARGV[1] the sending mark's life in ms.  1 if the seller was free and is now marked
# queued; 0 if it is running, being sent, or its task still waits in the queue.
_MARK_QUEUED = f"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local mark = redis.call('GET', KEYS[2])
if mark == '{SENDING}' then return 0 end
if mark and redis.call('EXISTS', KEYS[3]) == 1
   and #redis.call('XRANGE', KEYS[3], mark, mark) > 0 then return 0 end
redis.call('SET', KEYS[2], '{SENDING}', 'PX', ARGV[1])
return 1
"""

# KEYS the sellers' locks and marks, in pairs, then the queue; for each seller
# {running, queued}, a mark counting only while its entry is in the queue.
_STATES = f"""
local stream = KEYS[#KEYS]
local has_stream = redis.call('EXISTS', stream) == 1
local out = {{}}
for i = 1, #KEYS - 1, 2 do
  table.insert(out, redis.call('EXISTS', KEYS[i]))
  local mark = redis.call('GET', KEYS[i + 1])
  local queued = 0
  if mark == '{SENDING}' then queued = 1
  elseif mark and has_stream and #redis.call('XRANGE', stream, mark, mark) > 0 then queued = 1
  end
  table.insert(out, queued)
end
return out
"""

# KEYS[1] the lock; ARGV[1] the holder's token, ARGV[2] the lease in ms.  1: renewed;
# 2: the key was gone (Redis lost it) and is the holder's again; 0: another holds it.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0
"""

# KEYS[1] the seller's queued mark.  Deleted only while it still says "sending": its
# send failed.  A mark naming a queue entry belongs to a task that is in the queue.
_UNSENT = f"""
if redis.call('GET', KEYS[1]) == '{SENDING}' then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] the lock; ARGV[1] the holder's token.  Deleted only by its holder.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SellerBusy(Exception):
    """Another sync of the seller holds its lock."""

    def __init__(self, seller_id: str) -> None:
        super().__init__(f"seller {seller_id} is being synced by another worker")
        self.seller_id = seller_id


class LeaseLost(Exception):
    """The lock's lease ran out (or was taken) while the sync held it.

    ``reason`` says which: not renewed in time (Redis silent or away, or this process
    paused), or another holder found on the key.
    """

    def __init__(self, seller_id: str, reason: str = "its lease was not renewed in time") -> None:
        super().__init__(
            f"seller {seller_id}: the sync lost its lock ({reason}) and was stopped, so "
            "that it cannot run beside another"
        )
        self.seller_id = seller_id
        self.reason = reason


class SellerLocks:
    """The fleet's per-seller locks and queued marks in Redis.

    :param redis: a :class:`redis.asyncio.Redis` (the caller's to close).  Every command
        is bounded by ``timeout``.
    :param lease: seconds a lock lives unless renewed; it is renewed every third of it.
    :param margin: seconds before the lease runs out at which a holder that could not
        renew gives the lock up and cancels its block (default: a fifth of the lease).
    :param timeout: seconds any one Redis command may take (default: a fifth of the
        lease, at most 1 s).
    :param timer: the clock and sleep the lease keeper uses (the monotonic clock of the
        running loop; tests pass a manual one).
    :param queue: the Redis stream of the tasks, against which queued marks are checked.
    """

    def __init__(
        self,
        redis: Redis | RedisLink,
        *,
        prefix: str = "spapi",
        lease: float = 30.0,
        margin: float | None = None,
        timeout: float | None = None,
        timer: Timer | None = None,
        queue: str = "spapi:fleet:tasks",
    ) -> None:
        self.lease = check_seconds("SellerLocks", "lease", lease)
        self.margin = check_seconds(
            "SellerLocks", "margin", self.lease / 5 if margin is None else margin
        )
        if self.margin >= self.lease:
            raise ValueError(
                f"SellerLocks: margin must be shorter than the lease ({self.lease:g}s), "
                f"got {self.margin!r}"
            )
        if isinstance(redis, RedisLink):
            self.link = redis
        else:
            self.link = RedisLink(
                redis,
                owner="SellerLocks",
                what="seller locks and queued marks",
                timeout=min(1.0, self.lease / 5) if timeout is None else timeout,
                retry_interval=self.lease / 10,
                on_outage="wait for it; a sync whose lease cannot be renewed in time stops",
            )
        self.redis = self.link.client
        self.prefix = prefix
        self.queue = queue
        self.timer: Timer = timer if timer is not None else LoopTimer()
        self._mark = self.link.script(_MARK_QUEUED)
        self._states = self.link.script(_STATES)
        self._renew = self.link.script(_RENEW)
        self._release = self.link.script(_RELEASE)
        self._unsent = self.link.script(_UNSENT)

    def lock_key(self, seller_id: str) -> str:
        """The Redis key of the seller's sync lock (it exists while a sync holds it)."""
        return f"{self.prefix}:fleet:lock:{seller_id}"

    def queued_key(self, seller_id: str) -> str:
        """The Redis key of the seller's queued mark (it exists while a task waits)."""
        return self.queued_key_of(self.prefix, seller_id)

    @staticmethod
    def queued_key_of(prefix: str, seller_id: str) -> str:
        """The queued mark's key for a key prefix (what the fleet labels its tasks with)."""
        return f"{prefix}:fleet:queued:{seller_id}"

    @property
    def _lease_ms(self) -> int:
        return max(1, round(self.lease * 1000))

    @contextlib.asynccontextmanager
    async def hold(self, seller_id: str) -> AsyncIterator[None]:
        """Hold the seller's lock for the block, or raise :class:`SellerBusy` at once.

        Should the lease be lost meanwhile, the block is cancelled ``margin`` seconds
        before the lock can expire, and :class:`LeaseLost` raised in its place.  A
        cancellation from outside goes through as it is.  Redis not answering while
        the lock is taken raises :class:`redis.exceptions.RedisError`.
        """
        key, token = self.lock_key(seller_id), secrets.token_hex(16)
        sent = self.timer.now()
        taken = await self.link.call(lambda: self.redis.set(key, token, nx=True, px=self._lease_ms))
        if not taken:
            raise SellerBusy(seller_id)
        holder = asyncio.current_task()
        assert holder is not None
        lost: list[str] = []
        keeper = asyncio.create_task(self._keep(seller_id, key, token, sent, holder, lost))
        try:
            try:
                yield
            finally:
                keeper.cancel()
                # Waited for without swallowing a cancellation meant for the holder.
                await asyncio.wait([keeper])
        except asyncio.CancelledError:
            # The keeper's cancellation (delivered in the block, or at the wait above if
            # the block had just ended), and nobody else's: turned into an error.
            if lost and holder.uncancel() == 0:
                raise LeaseLost(seller_id, lost[0]) from None
            raise
        finally:
            if not lost:
                await _shielded(self._give_back(key, token))

    async def _keep(
        self,
        seller_id: str,
        key: str,
        token: str,
        sent: float,
        holder: asyncio.Task[object],
        lost: list[str],
    ) -> None:
        """Renew the lease until cancelled; cancel ``holder`` once it cannot be kept."""
        lease, timer = self.lease, self.timer
        deadline = sent + lease - self.margin  # by this process's clock: never later
        renew_at = sent + lease / 3
        retry = max(0.01, min(lease / 15, self.margin / 2))
        while True:
            await timer.sleep(max(0.0, min(renew_at, deadline) - timer.now()))
            now = timer.now()
            if now >= deadline:
                reason = f"not renewed within {lease - self.margin:g}s of the last renewal"
                break
            try:
                outcome = await self.link.call(
                    lambda: self._renew(keys=[key], args=[token, self._lease_ms]),
                    within=min(self.link.timeout, deadline - now),
                )
            except RedisError:
                renew_at = now + retry  # Redis away or slow: the lease still stands
                continue
            if not int(outcome):
                reason = "another worker holds it now"
                break
            if int(outcome) == 2:
                _log.info(
                    "seller %s: its lock had vanished from Redis (restarted without its "
                    "data?); taken again, as nobody else had it",
                    seller_id,
                )
            deadline = now + lease - self.margin
            renew_at = now + lease / 3
        _log.warning("seller %s: lost its sync lock (%s); stopping the sync", seller_id, reason)
        lost.append(reason)
        holder.cancel()

    async def _give_back(self, key: str, token: str) -> None:
        with contextlib.suppress(RedisError):
            await self.link.call(lambda: self._release(keys=[key], args=[token]))

    async def mark_queued(self, seller_id: str, ttl: float | None = None) -> bool:
        """Mark the seller queued unless it is running or queued; whether it was marked.

        The mark says "being sent" for at most ``ttl`` seconds (default: five of the
        link's timeouts, at least a second: a send that fails leaves it behind); once the
        task is in the queue the broker replaces it with the task's entry id (see
        :meth:`FleetBroker.kick <spapi_services.fleet.FleetBroker.kick>`), and it holds
        as long as that entry waits.
        """
        if ttl is None:
            ttl = max(SENDING_FLOOR, SENDING_TIMEOUTS * self.link.timeout)
        marked = await self.link.call(
            lambda: self._mark(
                keys=[self.lock_key(seller_id), self.queued_key(seller_id), self.queue],
                args=[max(1, round(ttl * 1000))],
            )
        )
        return bool(int(marked))

    async def unmark_unsent(self, seller_id: str) -> None:
        """Clear the seller's mark if it still says "being sent" (the send failed), so
        the next round sends it; a mark naming a queued task is left as it is."""
        await self.link.call(lambda: self._unsent(keys=[self.queued_key(seller_id)]))

    async def unmark_queued(self, seller_id: str) -> None:
        """Clear the seller's queued mark (its task has started, or was dropped)."""
        await self.link.call(lambda: self.redis.delete(self.queued_key(seller_id)))

    async def running(self, seller_ids: Sequence[str]) -> tuple[set[str], set[str]]:
        """Which of the sellers are running, and which are queued."""
        if not seller_ids:
            return set(), set()
        keys = [k for s in seller_ids for k in (self.lock_key(s), self.queued_key(s))]
        answers = await self.link.call(lambda: self._states(keys=[*keys, self.queue]))
        running = {s for s, n in zip(seller_ids, answers[0::2], strict=True) if int(n)}
        queued = {s for s, n in zip(seller_ids, answers[1::2], strict=True) if int(n)}
        return running, queued


async def _shielded(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` to its end even if the caller is cancelled meanwhile.

    A cancellation goes on to the caller at once; the work finishes in the background
    (it is bounded: a Redis command through the link).
    """
    task = asyncio.ensure_future(work)
    _background.add(task)  # kept until done, should the caller stop waiting for it
    task.add_done_callback(_background.discard)
    await asyncio.shield(task)


_background: set[asyncio.Future[None]] = set()
