"""A SQLite file as the mirror: one row per service job, upserted by its id.

Tables:

``service_jobs``
    ``service_job_id`` (primary key), ``status``, ``marketplace_id``, ``store_id``,
    ``create_time``, ``synced_at`` (when the row was last written; the API's jobs carry
    no last-update time) and ``job``, the whole job as the API's JSON.  Times are UTC
    text of fixed width, so they sort and compare as text.
``sync_checkpoints``
    Per scope (marketplace): ``synced_until``, the end of the last complete run.
``sync_runs`` and ``sync_windows``
    The unfinished run of a scope, if any, and each window's next page token.

Every page is one transaction: its rows and its window's new token go in together.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .. import _serde
from ..models.jobs import ServiceJob
from ._plan import Mode, SyncPlan, Window, format_time, parse_time
from ._sink import SinkState, ThreadedSink, job_record

__all__ = ["SqliteSink"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS service_jobs (
    service_job_id TEXT PRIMARY KEY,
    status TEXT,
    marketplace_id TEXT,
    store_id TEXT,
    create_time TEXT,
    synced_at TEXT NOT NULL,
    job TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS service_jobs_status ON service_jobs (status);
CREATE INDEX IF NOT EXISTS service_jobs_marketplace ON service_jobs (marketplace_id);
CREATE INDEX IF NOT EXISTS service_jobs_store ON service_jobs (store_id);
CREATE INDEX IF NOT EXISTS service_jobs_create_time ON service_jobs (create_time);
CREATE INDEX IF NOT EXISTS service_jobs_synced_at ON service_jobs (synced_at);
CREATE TABLE IF NOT EXISTS sync_checkpoints (
    scope TEXT PRIMARY KEY,
    synced_until TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_runs (
    scope TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    range_start TEXT NOT NULL,
    range_end TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sync_windows (
    scope TEXT NOT NULL,
    idx INTEGER NOT NULL,
    range_start TEXT NOT NULL,
    range_end TEXT NOT NULL,
    query_start TEXT NOT NULL,
    query_end TEXT NOT NULL,
    page_token TEXT,
    done INTEGER NOT NULL DEFAULT 0,
    pages INTEGER NOT NULL DEFAULT 0,
    jobs INTEGER NOT NULL DEFAULT 0,
    expected INTEGER,
    PRIMARY KEY (scope, idx)
);
"""

_UPSERT = """
INSERT INTO service_jobs
    (service_job_id, status, marketplace_id, store_id, create_time, synced_at, job)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (service_job_id) DO UPDATE SET
    status = excluded.status,
    marketplace_id = excluded.marketplace_id,
    store_id = excluded.store_id,
    create_time = excluded.create_time,
    synced_at = excluded.synced_at,
    job = excluded.job
"""


class SqliteSink(ThreadedSink):
    """Mirror service jobs into a SQLite file (created if missing).

    ::

        report = await sync_jobs(client, SqliteSink("service_jobs.sqlite"), since=since)

    The file uses write-ahead logging, so it can be read (``sqlite3``, pandas, a
    dashboard) while a sync writes to it.  Run one sync per file at a time.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None

    _thread_name = "spapi-sync-sqlite"

    def __repr__(self) -> str:
        return f"SqliteSink({str(self.path)!r})"

    # --- on the sink's thread ---------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("SqliteSink is not open")
        return self._db

    def _open(self) -> None:
        if self.path.parent != Path():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        self._db = db
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA busy_timeout = 5000")
        db.executescript(_SCHEMA)

    def _scope_state(self, scope: str) -> SinkState:
        db = self._conn()
        row = db.execute(
            "SELECT synced_until FROM sync_checkpoints WHERE scope = ?", (scope,)
        ).fetchone()
        checkpoint = parse_time(row[0]) if row else None
        return SinkState(checkpoint=checkpoint, plan=self._load_plan(db, scope))

    @staticmethod
    def _load_plan(db: sqlite3.Connection, scope: str) -> SyncPlan | None:
        run = db.execute(
            "SELECT run_id, mode, range_start, range_end FROM sync_runs WHERE scope = ?",
            (scope,),
        ).fetchone()
        if run is None:
            return None
        rows = db.execute(
            "SELECT idx, range_start, range_end, query_start, query_end, page_token, done,"
            " pages, jobs, expected FROM sync_windows WHERE scope = ? ORDER BY idx",
            (scope,),
        ).fetchall()
        windows = [
            Window(
                index=r[0],
                start=parse_time(r[1]),
                end=parse_time(r[2]),
                query_start=parse_time(r[3]),
                query_end=parse_time(r[4]),
                page_token=r[5],
                done=bool(r[6]),
                pages=r[7],
                jobs=r[8],
                expected=r[9],
            )
            for r in rows
        ]
        return SyncPlan(
            run_id=run[0],
            scope=scope,
            mode=Mode(run[1]),
            start=parse_time(run[2]),
            end=parse_time(run[3]),
            windows=windows,
        )

    def _begin(self, plan: SyncPlan) -> None:
        db = self._conn()
        with _transaction(db):
            db.execute("DELETE FROM sync_windows WHERE scope = ?", (plan.scope,))
            db.execute(
                "INSERT OR REPLACE INTO sync_runs (scope, run_id, mode, range_start, range_end)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    plan.scope,
                    plan.run_id,
                    plan.mode.value,
                    format_time(plan.start),
                    format_time(plan.end),
                ),
            )
            db.executemany(
                "INSERT INTO sync_windows (scope, idx, range_start, range_end, query_start,"
                " query_end, page_token, done, pages, jobs, expected)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        plan.scope,
                        w.index,
                        format_time(w.start),
                        format_time(w.end),
                        format_time(w.query_start),
                        format_time(w.query_end),
                        w.page_token,
                        int(w.done),
                        w.pages,
                        w.jobs,
                        w.expected,
                    )
                    for w in plan.windows
                ],
            )

    def _write_page(
        self, plan: SyncPlan, window: Window, jobs: Sequence[ServiceJob], next_token: str | None
    ) -> int:
        db = self._conn()
        now = format_time(datetime.now(UTC))
        rows = [_row(job, now) for job in jobs if job.service_job_id]
        with _transaction(db):
            db.executemany(_UPSERT, rows)
            db.execute(
                "UPDATE sync_windows SET page_token = ?, done = ?, pages = pages + 1,"
                " jobs = jobs + ?, expected = ? WHERE scope = ? AND idx = ?",
                (
                    next_token,
                    int(next_token is None),
                    len(rows),
                    window.expected,
                    plan.scope,
                    window.index,
                ),
            )
        return len(rows)

    def _finish(self, plan: SyncPlan) -> None:
        db = self._conn()
        with _transaction(db):
            db.execute(
                "INSERT OR REPLACE INTO sync_checkpoints (scope, synced_until, updated_at)"
                " VALUES (?, ?, ?)",
                (plan.scope, format_time(plan.end), format_time(datetime.now(UTC))),
            )
            db.execute("DELETE FROM sync_windows WHERE scope = ?", (plan.scope,))
            db.execute("DELETE FROM sync_runs WHERE scope = ?", (plan.scope,))

    def _close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _row(job: ServiceJob, synced_at: str) -> tuple[str | None, ...]:
    return (
        job.service_job_id,
        str(job.service_job_status) if job.service_job_status is not None else None,
        job.marketplace_id,
        job.store_id,
        format_time(job.create_time) if job.create_time is not None else None,
        synced_at,
        _serde.dumps(job_record(job)),
    )
