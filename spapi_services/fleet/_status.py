"""Each seller's syncs as the fleet saw them, in PostgreSQL (table ``fleet_status``).

Written by the workers at the start and end of every sync; read by ``Fleet.status()``
(and so ``spapi-services fleet status``).  The lag comes from the mirror's own
checkpoints: how long ago the oldest of the seller's marketplaces was last synced up to.

A sync's start takes the seller's next fencing token (``sync_fences``) in the same
statement that records the run; every later write of the run's status is conditional
on that token still being the seller's latest, so a sync another worker has taken over
can no longer say anything about the seller.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from ..sync._postgres import Pool, Reconnecting, fenced, fencing_token_sql

__all__ = ["SellerState", "SellerStatus", "StatusBook"]


class SellerState:
    """The states a seller's status row can be in."""

    NEW = "new"
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"
    INTERRUPTED = "interrupted"


@attrs.frozen(kw_only=True)
class SellerStatus:
    """What the fleet knows of one seller.

    ``state`` is ``new`` (never synced), ``running``, ``ok`` (the last sync succeeded),
    ``failed`` (it raised; ``last_error`` says what, and the next round tries again),
    ``refused`` (Amazon refused its refresh token: skipped until the token changes) or
    ``interrupted`` (its worker stopped mid-sync; the next round resumes it).
    ``running`` and ``queued`` are what Redis says right now; when Redis did not answer
    they are unknown (``False``) and ``redis_unreachable`` is ``True``.  ``lag`` is how far
    behind now the seller's mirror is (its oldest marketplace checkpoint); ``jobs`` and
    ``throttled`` count the last run's jobs written and 429 answers, ``jobs_total`` and
    ``throttled_total`` every run's (a job written again, changed or repeated after an
    interruption, counts again: the mirror holds each job once).  ``fencing_token`` is
    the token the seller's latest run took; a sync holding an older one can no longer
    write (see :class:`~spapi_services.FencedOut`).
    """

    seller_id: str
    state: str
    running: bool = False
    queued: bool = False
    worker: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    last_success_at: datetime | None = None
    synced_until: datetime | None = None
    lag: timedelta | None = None
    runs: int = 0
    failures: int = 0
    jobs: int | None = None
    requests: int | None = None
    throttled: int | None = None
    jobs_total: int = 0
    throttled_total: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    fencing_token: int | None = None
    redis_unreachable: bool = False


class StatusBook:
    """Reads and writes ``fleet_status`` rows; a run's writes fenced by its token."""

    def __init__(self, pool: Pool, schema: str, *, reconnect_timeout: float = 30.0) -> None:
        self._pool = pool
        self._schema = schema
        self._table = f"{schema}.fleet_status"
        self._checkpoints = f"{schema}.sync_checkpoints"
        self._jobs = f"{schema}.service_jobs"
        self._db = Reconnecting(pool, reconnect_timeout, what="the fleet's status")

    async def started(self, seller_id: str, worker: str) -> int:
        """Record the run and take the seller's next fencing token (one statement); it."""
        token: int = await self._db.fetchval(
            f"WITH fence AS ({fencing_token_sql(self._schema)})"
            f" INSERT INTO {self._table} AS s (seller_id, state, worker, started_at,"
            " fencing_token) SELECT $1, 'running', $2, now(), token FROM fence"
            " ON CONFLICT (seller_id) DO UPDATE SET state = 'running', worker = $2,"
            " started_at = now(), updated_at = now(), fencing_token = excluded.fencing_token"
            " RETURNING fencing_token",
            seller_id,
            worker,
        )
        return token

    async def succeeded(
        self, seller_id: str, token: int, *, jobs: int, requests: int, throttled: int
    ) -> bool:
        """The run ended well; whether its token still held (else nothing was written)."""
        return await self._fenced_update(
            "state = 'ok', finished_at = now(), last_success_at = now(), runs = runs + 1,"
            " failures = 0, jobs_last = $3::integer, requests_last = $4,"
            " throttled_last = $5::integer, jobs_total = jobs_total + $3::integer,"
            " throttled_total = throttled_total + $5::integer, refused_token = NULL",
            seller_id,
            token,
            jobs,
            requests,
            throttled,
        )

    async def failed(
        self,
        seller_id: str,
        token: int,
        error: str,
        *,
        state: str = SellerState.FAILED,
        throttled: int = 0,
        refused_token: str | None = None,
    ) -> bool:
        """The run failed with ``error``; whether its token still held."""
        return await self._fenced_update(
            "state = $3, finished_at = now(), runs = runs + 1, failures = failures + 1,"
            " last_error = $4, last_error_at = now(), throttled_last = $5::integer,"
            " throttled_total = throttled_total + $5::integer, refused_token = $6",
            seller_id,
            token,
            state,
            error,
            throttled,
            refused_token,
        )

    async def interrupted(self, seller_id: str, token: int) -> bool:
        """The run stopped midway; whether its token still held (no other run since)."""
        return await self._fenced_update(
            "state = 'interrupted', finished_at = now(),"
            " last_error = 'stopped midway; the next run resumes it', last_error_at = now()",
            seller_id,
            token,
        )

    async def _fenced_update(self, changes: str, seller_id: str, token: int, *args: object) -> bool:
        status = await self._db.execute(
            fenced(
                self._schema,
                f"UPDATE {self._table} SET {changes}, updated_at = now()"
                " WHERE seller_id = $1 AND EXISTS (SELECT 1 FROM fence)",
            ),
            seller_id,
            token,
            *args,
        )
        return status != "UPDATE 0"

    async def refused_tokens(self, seller_ids: Sequence[str] | None = None) -> dict[str, str]:
        """``seller_id -> fingerprint`` of the refresh tokens Amazon refused."""
        rows = await self._db.fetch(
            f"SELECT seller_id, refused_token FROM {self._table}"
            " WHERE refused_token IS NOT NULL AND ($1::text[] IS NULL OR seller_id = ANY($1))",
            None if seller_ids is None else list(seller_ids),
        )
        return {row[0]: row[1] for row in rows}

    async def clear_refusal(self, seller_id: str) -> bool:
        """Forget that the seller's token was refused; whether it was marked."""
        cleared = await self._db.fetchval(
            f"WITH c AS (UPDATE {self._table} SET refused_token = NULL,"
            " state = CASE WHEN state = 'refused' THEN 'new' ELSE state END, updated_at = now()"
            " WHERE seller_id = $1 AND refused_token IS NOT NULL RETURNING 1)"
            " SELECT count(*) FROM c",
            seller_id,
        )
        return bool(cleared)

    async def read(
        self,
        seller_ids: Sequence[str],
        *,
        running: Collection[str] = (),
        queued: Collection[str] = (),
        redis_unreachable: bool = False,
        now: datetime | None = None,
    ) -> list[SellerStatus]:
        """The status of each of the sellers, in their order (``new`` for those with none)."""
        rows = await self._db.fetch(
            f"SELECT s.*, c.synced_until FROM {self._table} s LEFT JOIN"
            f" (SELECT seller_id, min(synced_until) AS synced_until FROM {self._checkpoints}"
            "  GROUP BY seller_id) c USING (seller_id) WHERE s.seller_id = ANY($1)",
            list(seller_ids),
        )
        found = {row["seller_id"]: row for row in rows}
        moment = now or datetime.now(UTC)
        statuses: list[SellerStatus] = []
        for seller_id in seller_ids:
            row = found.get(seller_id)
            now_running, now_queued = seller_id in running, seller_id in queued
            if row is None:
                statuses.append(
                    SellerStatus(
                        seller_id=seller_id,
                        state=SellerState.NEW,
                        running=now_running,
                        queued=now_queued,
                        redis_unreachable=redis_unreachable,
                    )
                )
                continue
            until = row["synced_until"]
            statuses.append(
                SellerStatus(
                    seller_id=seller_id,
                    state=row["state"],
                    worker=row["worker"],
                    started_at=row["started_at"],
                    finished_at=row["finished_at"],
                    last_success_at=row["last_success_at"],
                    synced_until=until,
                    lag=None if until is None else max(timedelta(0), moment - until),
                    runs=row["runs"],
                    failures=row["failures"],
                    jobs=row["jobs_last"],
                    requests=row["requests_last"],
                    throttled=row["throttled_last"],
                    jobs_total=row["jobs_total"],
                    throttled_total=row["throttled_total"],
                    last_error=row["last_error"],
                    last_error_at=row["last_error_at"],
                    fencing_token=row["fencing_token"],
                    running=now_running,
                    queued=now_queued,
                    redis_unreachable=redis_unreachable,
                )
            )
        return statuses

    async def growth(
        self, *, window: timedelta, points: int = 60, now: datetime | None = None
    ) -> list[tuple[datetime, int]]:
        """The mirror's job count over time: ``(moment, jobs)`` pairs, oldest first.

        The pairs span the last ``window``, or less when the oldest row is younger
        (so a new fleet's chart fills its width); each job counts from its last write,
        so a job written again moves forward.  Empty when the mirror is.
        """
        moment = now or datetime.now(UTC)
        oldest = await self._db.fetchval(f"SELECT min(synced_at) FROM {self._jobs}")
        if oldest is None:
            return []
        start = max(oldest, moment - window)
        if moment <= start:
            start = moment - timedelta(seconds=1)
        span = moment - start
        rows = await self._db.fetch(
            f"SELECT width_bucket(extract(epoch FROM synced_at), $1::float8, $2::float8, $3)"
            f" AS bucket, count(*) AS jobs FROM {self._jobs} GROUP BY bucket",
            start.timestamp(),
            moment.timestamp(),
            points,
        )
        by_bucket = {row["bucket"]: row["jobs"] for row in rows}
        # Bucket 0 is before the window; the last bucket's end is now, so anything past
        # it (a clock step) is counted there too.
        total = by_bucket.get(0, 0)
        series = [(start, total)]
        for bucket in range(1, points + 1):
            total += by_bucket.get(bucket, 0)
            if bucket == points:
                total += by_bucket.get(points + 1, 0)
            series.append((start + span * bucket / points, total))
        return series
