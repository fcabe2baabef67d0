"""Each seller's syncs as the fleet saw them, in PostgreSQL (table ``fleet_status``).

Written by the workers at the start and end of every sync; read by ``Fleet.status()``
(and so ``spapi-services fleet status``).  The lag comes from the mirror's own
checkpoints: how long ago the oldest of the seller's marketplaces was last synced up to.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from ..sync._postgres import Pool

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
    ``running`` and ``queued`` are what Redis says right now.  ``lag`` is how far behind
    now the seller's mirror is (its oldest marketplace checkpoint); ``jobs`` and
    ``throttled`` count the last run's jobs written and 429 answers, ``jobs_total`` and
    ``throttled_total`` every run's.
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


class StatusBook:
    """Reads and writes ``fleet_status`` rows."""

    def __init__(self, pool: Pool, schema: str) -> None:
        self._pool = pool
        self._table = f"{schema}.fleet_status"
        self._checkpoints = f"{schema}.sync_checkpoints"
        self._jobs = f"{schema}.service_jobs"

    async def started(self, seller_id: str, worker: str) -> None:
        await self._pool.execute(
            f"INSERT INTO {self._table} AS s (seller_id, state, worker, started_at)"
            " VALUES ($1, 'running', $2, now()) ON CONFLICT (seller_id) DO UPDATE SET"
            " state = 'running', worker = $2, started_at = now(), updated_at = now()",
            seller_id,
            worker,
        )

    async def succeeded(self, seller_id: str, *, jobs: int, requests: int, throttled: int) -> None:
        await self._pool.execute(
            f"UPDATE {self._table} SET state = 'ok', finished_at = now(),"
            " last_success_at = now(), runs = runs + 1, failures = 0, jobs_last = $2::integer,"
            " requests_last = $3, throttled_last = $4::integer,"
            " jobs_total = jobs_total + $2::integer,"
            " throttled_total = throttled_total + $4::integer,"
            " refused_token = NULL, updated_at = now()"
            " WHERE seller_id = $1",
            seller_id,
            jobs,
            requests,
            throttled,
        )

    async def failed(
        self,
        seller_id: str,
        error: str,
        *,
        state: str = SellerState.FAILED,
        throttled: int = 0,
        refused_token: str | None = None,
    ) -> None:
        await self._pool.execute(
            f"INSERT INTO {self._table} (seller_id, state) VALUES ($1, $2)"
            " ON CONFLICT (seller_id) DO NOTHING",
            seller_id,
            state,
        )
        await self._pool.execute(
            f"UPDATE {self._table} SET state = $2, finished_at = now(), runs = runs + 1,"
            " failures = failures + 1, last_error = $3, last_error_at = now(),"
            " throttled_last = $4::integer, throttled_total = throttled_total + $4::integer,"
            " refused_token = $5, updated_at = now() WHERE seller_id = $1",
            seller_id,
            state,
            error,
            throttled,
            refused_token,
        )

    async def interrupted(self, seller_id: str, worker: str) -> None:
        """The sync this worker started stopped midway (unless another has taken over)."""
        await self._pool.execute(
            f"UPDATE {self._table} SET state = 'interrupted', finished_at = now(),"
            " last_error = 'stopped midway; the next run resumes it', last_error_at = now(),"
            " updated_at = now() WHERE seller_id = $1 AND worker = $2 AND state = 'running'",
            seller_id,
            worker,
        )

    async def refused_tokens(self, seller_ids: Sequence[str] | None = None) -> dict[str, str]:
        """``seller_id -> fingerprint`` of the refresh tokens Amazon refused."""
        rows = await self._pool.fetch(
            f"SELECT seller_id, refused_token FROM {self._table}"
            " WHERE refused_token IS NOT NULL AND ($1::text[] IS NULL OR seller_id = ANY($1))",
            None if seller_ids is None else list(seller_ids),
        )
        return {row[0]: row[1] for row in rows}

    async def clear_refusal(self, seller_id: str) -> bool:
        """Forget that the seller's token was refused; whether it was marked."""
        cleared = await self._pool.fetchval(
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
        now: datetime | None = None,
    ) -> list[SellerStatus]:
        """The status of each of the sellers, in their order (``new`` for those with none)."""
        rows = await self._pool.fetch(
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
                    running=now_running,
                    queued=now_queued,
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
        oldest = await self._pool.fetchval(f"SELECT min(synced_at) FROM {self._jobs}")
        if oldest is None:
            return []
        start = max(oldest, moment - window)
        if moment <= start:
            start = moment - timedelta(seconds=1)
        span = moment - start
        rows = await self._pool.fetch(
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
