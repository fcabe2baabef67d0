"""Delivering the mirror's outbox to the fleet's webhook endpoints, from every worker.

Each worker process runs one :class:`WebhookRelay` beside its syncs.  The outbox is the
truth; the relays share it through PostgreSQL, never through memory:

1. **Fan-out.**  Outbox rows not yet relayed are taken (``FOR UPDATE SKIP LOCKED``, so two
   relays never take the same), one delivery row is made for each endpoint that takes
   the change, and the rows are marked relayed, in one statement.
2. **Claim.**  Due deliveries (pending, their time come, their endpoint enabled and not
   held back, no live lease) are claimed with ``UPDATE … WHERE … IN (SELECT … FOR UPDATE
   SKIP LOCKED) RETURNING``: each gets a lease (``lease`` seconds, longer than an attempt
   may take) and a claim id.
3. **Attempt.**  The change is posted, signed, with ``webhook-id`` ``msg_<mirror>_<outbox
   id>``; at most ``concurrency`` attempts at once per endpoint in a process.
4. **Record.**  The answer decides (:func:`~spapi_services.webhooks.outcome_of`,
   :class:`~spapi_services.webhooks.RetrySchedule`): delivered; tried again later; the
   endpoint held back (429 and the like, ``Retry-After`` obeyed); the endpoint disabled
   (410, its pending deliveries dead-lettered); or, attempts spent, dead-lettered.  The
   record is conditional on the claim: a relay that lost its lease (paused, cut off)
   changes nothing.

A relay killed at any point loses nothing: its claimed deliveries stay pending, and
once their lease runs out another relay takes them.  A receiver may then get a message
twice, always with the same ``webhook-id``.  Relays wake on ``LISTEN`` (the outbox's
channel, for new changes, and the webhooks' channel, for redeliveries and endpoints
set) and on a timer (``poll_interval``: retries falling due, leases running out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from datetime import UTC, timedelta
from typing import Any

import attrs

from .. import _serde
from ..sync._buyer import BuyerKeys, reveal_record
from ..sync._postgres import Pool, Reconnecting, outbox_channel
from ..webhooks import (
    AttemptOutcome,
    AttemptResult,
    RetrySchedule,
    WebhookEndpoint,
    WebhookMessage,
    WebhookSender,
    change_message,
)
from ._webhooks import WebhookBook, message_id

__all__ = ["RelayStats", "WebhookRelay"]

_log = logging.getLogger("spapi_services.webhooks")

#: Outbox rows fanned out per statement.
FAN_OUT_BATCH = 500
#: How often a relay removes the changes every endpoint has (past the retention).
_UPKEEP_EVERY = 60.0
#: How long endpoints (and their opened secrets) are kept before being read again.
_ENDPOINTS_FOR = 5.0
#: How long a relay holds back what it claimed for an endpoint that answered 410 (the
#: deliveries are dead-lettered in the database meanwhile).
_GONE_HOLD = 5.0
#: How often a lost LISTEN connection is made again.
_LISTEN_RETRY = 5.0


@attrs.define
class RelayStats:
    """What a relay did since it started (this process only)."""

    fanned_out: int = 0
    attempts: int = 0
    delivered: int = 0
    failed: int = 0
    dead: int = 0
    lost_claims: int = 0
    """Attempts whose lease had passed to another relay by the time they were recorded."""


@attrs.frozen
class _Claimed:
    outbox_id: int
    endpoint_id: str
    attempts: int
    claim: uuid.UUID


class WebhookRelay:
    """Delivers the outbox's changes to the endpoints, sharing the work with other relays.

    :param pool: the fleet's PostgreSQL pool.
    :param dsn: the database's URL, for the ``LISTEN`` connection.
    :param book: the endpoints.
    :param sender: makes the attempts (its guard decides which addresses are allowed).
    :param schedule: when to try again, and when to give up.
    :param lease: seconds a claimed delivery is this relay's; past it, another takes it.
        Longer than the sender's timeout.
    :param worker: this process's name in the deliveries it claims.
    :param buyer_keys: the mirror's buyer key(s), to decrypt encrypted buyer data before
        each endpoint's own choice (keep, hash, drop) applies.
    :param capacity: attempts under way at once in this process.
    :param concurrency: attempts under way at once per endpoint in this process.
    :param poll_interval: seconds between looks for due retries and ended leases.
    :param retention: how long a change every endpoint has is kept in the outbox (for
        ``fleet redeliver``) before it is removed.
    """

    def __init__(
        self,
        pool: Pool,
        dsn: str,
        book: WebhookBook,
        *,
        sender: WebhookSender,
        schedule: RetrySchedule,
        lease: float,
        worker: str,
        buyer_keys: BuyerKeys | None = None,
        capacity: int = 32,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        retention: timedelta = timedelta(days=7),
        reconnect_timeout: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if lease <= sender.timeout:
            raise ValueError(
                f"lease: must be longer than an attempt may take ({sender.timeout:g} s), "
                f"got {lease!r}"
            )
        self.book = book
        self.schema = book.schema
        self.sender = sender
        self.schedule = schedule
        self.lease = float(lease)
        self.worker = worker
        self.capacity = capacity
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.retention = retention
        self.stats = RelayStats()
        self._dsn = dsn
        self._db = Reconnecting(pool, reconnect_timeout, what="the webhook relay")
        self._buyer_keys = buyer_keys
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._lanes: dict[str, asyncio.Semaphore] = {}
        self._endpoints: dict[str, WebhookEndpoint] = {}
        self._held_until: dict[str, float] = {}
        self._endpoints_at = -_ENDPOINTS_FOR
        self._listener: Any = None
        self._listen_tried = -_LISTEN_RETRY
        self._upkeep_at = 0.0
        self._mirror: str | None = None
        self._failing = False
        s = self.schema
        self._outbox, self._deliveries = f"{s}.change_outbox", f"{s}.webhook_deliveries"
        self._endpoint_table = f"{s}.webhook_endpoints"

    def __repr__(self) -> str:
        return f"WebhookRelay(schema={self.schema!r}, worker={self.worker!r})"

    # --- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until cancelled; attempts under way are then cancelled (their
        deliveries are taken again once their lease runs out)."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._wake.clear()
                await self._listen(loop.time())
                try:
                    await self.step()
                except Exception as exc:  # the database away past its reconnect time
                    if not self._failing:
                        _log.warning("webhooks: the relay could not reach PostgreSQL: %s", exc)
                    self._failing = True
                else:
                    if self._failing:
                        _log.info("webhooks: the relay reaches PostgreSQL again")
                    self._failing = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()
        finally:
            await self._stop()

    async def step(self) -> int:
        """Fan out new changes and start every due delivery there is room for; how many
        were started (they run on in the background)."""
        loop = asyncio.get_running_loop()
        if self._mirror is None:
            self._mirror = await self.book.mirror_id()
        await self.fan_out()
        if loop.time() >= self._upkeep_at:
            self._upkeep_at = loop.time() + _UPKEEP_EVERY
            await self.remove_delivered()
        room = self.capacity - len(self._tasks)
        if room <= 0:
            return 0
        claimed = await self._claim(room)
        if not claimed:
            return 0
        rows = await self._changes([c.outbox_id for c in claimed])
        await self._load_endpoints(loop.time(), {c.endpoint_id for c in claimed})
        for item in claimed:
            task = loop.create_task(self._deliver(item, rows.get(item.outbox_id)))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    async def drain(self) -> None:
        """Wait for the attempts under way (a test's or a shutdown's)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            _log.error("webhooks: a delivery failed unexpectedly", exc_info=task.exception())

    async def _stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(listener.close(), 2)

    async def _listen(self, now: float) -> None:
        """Keep a ``LISTEN`` connection (made again if lost, every few seconds at most)."""
        if self._listener is not None and not self._listener.is_closed():
            return
        if now - self._listen_tried < _LISTEN_RETRY:
            return
        self._listen_tried = now
        import asyncpg

        try:
            conn = await asyncpg.connect(self._dsn, timeout=5)
            for channel in (outbox_channel(self.schema), self.book.channel):
                await conn.add_listener(channel, self._notified)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _log.debug("webhooks: LISTEN not available (%s); polling", exc)
            return
        self._listener = conn

    def _notified(self, *_: object) -> None:
        self._wake.set()

    # --- the steps --------------------------------------------------------------------------

    async def fan_out(self) -> int:
        """Make the deliveries of the changes not yet relayed; how many changes."""
        row: Any = await self._db.run(
            lambda conn: conn.fetchrow(
                f"WITH taken AS (SELECT id, seller_id, kind FROM {self._outbox}"
                " WHERE relayed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED),"
                f" fanned AS (INSERT INTO {self._deliveries} (outbox_id, endpoint_id, state,"
                " last_error) SELECT o.id, e.endpoint_id,"
                " CASE WHEN e.enabled THEN 'pending' ELSE 'dead' END,"
                " CASE WHEN e.enabled THEN NULL"
                "  ELSE 'endpoint disabled: ' || coalesce(e.disabled_reason, 'by hand') END"
                f" FROM taken o JOIN {self._endpoint_table} e ON"
                " (e.seller_id IS NULL OR e.seller_id = o.seller_id) AND (e.event_types IS NULL"
                "  OR 'service_job.' || o.kind = ANY(e.event_types))"
                # Held until the commit: an endpoint being disabled meanwhile is read as
                # it ends up, and its disabling waits for these rows to bury them.
                " FOR SHARE OF e"
                " ON CONFLICT DO NOTHING RETURNING 1),"
                f" marked AS (UPDATE {self._outbox} SET relayed_at = now()"
                " WHERE id IN (SELECT id FROM taken) RETURNING 1)"
                " SELECT (SELECT count(*) FROM marked) AS changes,"
                " (SELECT count(*) FROM fanned) AS deliveries",
                FAN_OUT_BATCH,
            )
        )
        changes: int = row["changes"]
        self.stats.fanned_out += changes
        if changes == FAN_OUT_BATCH:
            self._wake.set()  # more are waiting
        return changes

    async def remove_delivered(self) -> int:
        """Remove the changes past the retention that every endpoint has; how many.

        Changes with a delivery pending or dead-lettered stay (for ``redeliver``).
        """
        removed: int = await self._db.fetchval(
            f"WITH gone AS (DELETE FROM {self._outbox} WHERE id IN (SELECT o.id FROM"
            f" {self._outbox} o WHERE o.relayed_at < now() - $1::interval AND NOT EXISTS"
            f" (SELECT 1 FROM {self._deliveries} d WHERE d.outbox_id = o.id"
            " AND d.state <> 'delivered') LIMIT 5000) RETURNING 1) SELECT count(*) FROM gone",
            self.retention,
        )
        return removed

    async def _claim(self, room: int) -> list[_Claimed]:
        claim = uuid.uuid4()
        rows = await self._db.fetch(
            f"UPDATE {self._deliveries} d SET lease_until = now() + $2 * interval '1 second',"
            " leased_by = $3, claim = $4 FROM (SELECT c.outbox_id, c.endpoint_id"
            f" FROM {self._deliveries} c JOIN {self._endpoint_table} e USING (endpoint_id)"
            " WHERE c.state = 'pending' AND c.next_attempt_at <= now()"
            " AND (c.lease_until IS NULL OR c.lease_until <= now())"
            " AND e.enabled AND (e.paused_until IS NULL OR e.paused_until <= now())"
            " ORDER BY c.next_attempt_at, c.outbox_id LIMIT $1 FOR UPDATE OF c SKIP LOCKED) due"
            " WHERE d.outbox_id = due.outbox_id AND d.endpoint_id = due.endpoint_id"
            " RETURNING d.outbox_id, d.endpoint_id, d.attempts",
            room,
            self.lease,
            self.worker,
            claim,
        )
        return [_Claimed(r["outbox_id"], r["endpoint_id"], r["attempts"], claim) for r in rows]

    async def _changes(self, ids: list[int]) -> dict[int, Any]:
        rows = await self._db.fetch(
            "SELECT id, seller_id, kind, content_hash, seen_at, job::text AS job"
            f" FROM {self._outbox} WHERE id = ANY($1::bigint[])",
            ids,
        )
        return {row["id"]: row for row in rows}

    async def _load_endpoints(self, now: float, wanted: set[str]) -> None:
        if now - self._endpoints_at < _ENDPOINTS_FOR and wanted <= set(self._endpoints):
            return
        self._endpoints = {e.id: e for e in await self.book.endpoints()}
        self._endpoints_at = now

    def message(self, change: Any) -> WebhookMessage:
        """The message of an outbox row (its job decrypted for the endpoints' choices)."""
        assert self._mirror is not None
        record = reveal_record(_serde.loads(change["job"]), self._buyer_keys)
        return change_message(
            change["kind"],
            record,
            seen_at=change["seen_at"].astimezone(UTC),
            seller_id=change["seller_id"],
            content_hash=change["content_hash"],
            message_id=message_id(self._mirror, change["id"]),
        )

    async def _deliver(self, item: _Claimed, change: Any) -> None:
        endpoint = self._endpoints.get(item.endpoint_id)
        if change is None or endpoint is None:
            return  # removed meanwhile (the change past retention, the endpoint by hand)
        message = self.message(change)
        lane = self._lanes.setdefault(endpoint.id, asyncio.Semaphore(self.concurrency))
        async with lane:
            # What an attempt before this one (waited for in the lane) found out: a 410
            # (the delivery is dead-lettered with its endpoint, or the endpoint was
            # enabled again since) or a "slow down".
            wait = self._held_until.get(endpoint.id, 0.0) - asyncio.get_running_loop().time()
            if wait > 0:
                await self._release(item, wait)
                return
            result = await self.sender.attempt(endpoint, message.id, endpoint.body(message))
            self._learn(endpoint, result)  # before the next attempt leaves the lane
        await self._record(item, endpoint, message, result)

    def _learn(self, endpoint: WebhookEndpoint, result: AttemptResult) -> None:
        """What an answer says about the endpoint's other attempts in this process."""
        pause = self.schedule.endpoint_pause(result.outcome, result.retry_after)
        if result.outcome is AttemptOutcome.GONE:
            pause = _GONE_HOLD
        if pause > 0:
            until = asyncio.get_running_loop().time() + pause
            self._held_until[endpoint.id] = max(self._held_until.get(endpoint.id, 0.0), until)

    async def _release(self, item: _Claimed, wait: float) -> None:
        """Give a claimed delivery back unattempted, due in ``wait`` seconds (its
        endpoint is held back, or was disabled: then it is dead already)."""
        await self._db.execute(
            f"UPDATE {self._deliveries} SET lease_until = NULL, leased_by = NULL, claim = NULL,"
            " next_attempt_at = now() + $4 * interval '1 second'"
            " WHERE outbox_id = $1 AND endpoint_id = $2 AND claim = $3",
            item.outbox_id,
            item.endpoint_id,
            item.claim,
            wait,
        )

    # --- recording ------------------------------------------------------------------------

    async def _record(
        self,
        item: _Claimed,
        endpoint: WebhookEndpoint,
        message: WebhookMessage,
        result: AttemptResult,
    ) -> None:
        attempts = item.attempts + 1
        self.stats.attempts += 1
        label = (
            f"webhook {message.id} ({message.type}) to endpoint {endpoint.id} "
            f"({endpoint.origin}), attempt {attempts}"
        )
        key = (item.outbox_id, item.endpoint_id, attempts, result.status)
        if result.outcome is AttemptOutcome.DELIVERED:
            ours = await self._db.execute(
                f"UPDATE {self._deliveries} SET state = 'delivered', attempts = $3,"
                " last_status = $4, last_attempt_at = now(), delivered_at = now(),"
                " lease_until = NULL, leased_by = NULL, claim = NULL"
                " WHERE outbox_id = $1 AND endpoint_id = $2 AND claim = $5",
                *key,
                item.claim,
            )
            self.stats.delivered += 1
            self._note(ours, label)
            _log.debug("%s: delivered (HTTP %s, %.3f s)", label, result.status, result.elapsed)
            return
        self.stats.failed += 1
        if result.outcome is AttemptOutcome.GONE:
            await self._disable(item, key, result, label)
            return
        pause = self.schedule.endpoint_pause(result.outcome, result.retry_after)
        delay = self.schedule.next_delay(attempts, result.retry_after, self._rng)
        ours = await self._db.execute(
            f"WITH paused AS (UPDATE {self._endpoint_table} SET paused_until ="
            " greatest(coalesce(paused_until, now()), now() + $7 * interval '1 second')"
            " WHERE endpoint_id = $2 AND $7::float8 > 0 RETURNING 1)"
            f" UPDATE {self._deliveries} SET attempts = $3, last_status = $4, last_error = $5,"
            " last_attempt_at = now(), lease_until = NULL, leased_by = NULL, claim = NULL,"
            " state = CASE WHEN $6::float8 IS NULL THEN 'dead' ELSE 'pending' END,"
            " next_attempt_at = now() + coalesce($6::float8, 0) * interval '1 second'"
            " WHERE outbox_id = $1 AND endpoint_id = $2 AND claim = $8",
            *key,
            result.error,
            delay,
            pause,
            item.claim,
        )
        self._note(ours, label)
        if delay is None:
            self.stats.dead += 1
            _log.warning("%s: %s; no attempts left, dead-lettered", label, result.error)
        else:
            _log.info("%s: %s; next attempt in %.0f s", label, result.error, delay)

    async def _disable(
        self, item: _Claimed, key: tuple[Any, ...], result: AttemptResult, label: str
    ) -> None:
        reason = "HTTP 410 Gone"

        async def disable(conn: Any) -> str:
            # The endpoint first: a fan-out under way holds it (FOR SHARE) and is waited
            # for, so the next statement, seeing what it committed, buries its rows too.
            await conn.execute(
                f"UPDATE {self._endpoint_table} SET enabled = false, disabled_reason = $2,"
                " updated_at = now() WHERE endpoint_id = $1",
                item.endpoint_id,
                reason,
            )
            await conn.execute(
                f"UPDATE {self._deliveries} SET state = 'dead', last_error = 'endpoint"
                " disabled: ' || $2, lease_until = NULL, leased_by = NULL, claim = NULL"
                " WHERE endpoint_id = $1 AND state = 'pending' AND outbox_id <> $3",
                item.endpoint_id,
                reason,
                item.outbox_id,
            )
            status: str = await conn.execute(
                f"UPDATE {self._deliveries} SET state = 'dead', attempts = $3, last_status = $4,"
                " last_error = $5, last_attempt_at = now(), lease_until = NULL, leased_by = NULL,"
                " claim = NULL WHERE outbox_id = $1 AND endpoint_id = $2 AND claim = $6",
                *key,
                reason,
                item.claim,
            )
            return status

        ours = await self._db.run(disable, transaction=True)
        self._note(ours, label)
        self.stats.dead += 1
        _log.warning("%s: %s; endpoint disabled, its deliveries dead-lettered", label, reason)

    def _note(self, status: str, label: str) -> None:
        if status == "UPDATE 0":
            self.stats.lost_claims += 1
            _log.info("%s: recorded by another relay meanwhile (this one's lease ran out)", label)
