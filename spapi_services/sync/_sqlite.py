"""A SQLite file as the mirror: one row per service job, upserted by its id.

Tables:

``service_jobs``
    ``service_job_id`` (primary key), ``status``, ``marketplace_id``, ``store_id``,
    ``create_time``, ``last_activity`` (the latest time the job records: what pruning
    goes by), ``synced_at`` (when the row was last written; the API's jobs carry no
    last-update time), ``job``, the whole job as the API's JSON, its buyer data as
    the sync's ``buyer_data`` left it, and ``content_hash``, the hash of the job as the
    API sent it (what tells a change from a repeat, see
    :class:`~spapi_services.sync.ChangeSink`).  Times are UTC text of fixed width, so they sort
    and compare as text.
``sync_checkpoints``
    Per scope (marketplace): ``synced_until``, the end of the last complete run.
``sync_runs`` and ``sync_windows``
    The unfinished run of a scope, if any, and each window's next page token.
``erased_buyers`` and ``mirror_meta``
    Salted digests of the buyers forgotten, and the salt.

Every page is one transaction: its rows and its window's new token go in together.

The file, and the write-ahead log and index SQLite keeps beside it (``-wal``, ``-shm``),
are readable by their owner only: the file is created with mode 0600 before SQLite
opens it, and SQLite gives its companions the mode of the file.  Deleted rows are
overwritten (``secure_delete``), temporary tables stay in memory, and after a prune or
an erasure the log is emptied and the file rebuilt (``VACUUM``), so nothing removed
survives in a free page or an old log frame.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import _serde
from ..models.jobs import ServiceJob
from ._buyer import (
    BuyerDataPolicy,
    BuyerKeyLike,
    ErasedBuyers,
    buyer_matches,
    erase_record,
    last_activity,
    reveal_record,
    stale_hashes,
)
from ._files import create_private, make_private_folders, warn_if_shared
from ._plan import Mode, SyncPlan, Window, format_time, parse_time
from ._sink import (
    PageWrite,
    RewriteReport,
    SinkState,
    ThreadedSink,
    changes_of,
    job_record,
    stored_hash,
)

__all__ = ["SqliteSink"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS service_jobs (
    service_job_id TEXT PRIMARY KEY,
    status TEXT,
    marketplace_id TEXT,
    store_id TEXT,
    create_time TEXT,
    last_activity TEXT,
    synced_at TEXT NOT NULL,
    job TEXT NOT NULL,
    content_hash TEXT
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
CREATE TABLE IF NOT EXISTS erased_buyers (
    digest TEXT PRIMARY KEY,
    erased_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mirror_meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# After the migration of a mirror made before the column existed.
_LAST_ACTIVITY_INDEX = (
    "CREATE INDEX IF NOT EXISTS service_jobs_last_activity ON service_jobs (last_activity)"
)

_UPSERT = """
INSERT INTO service_jobs
    (service_job_id, status, marketplace_id, store_id, create_time, last_activity, synced_at, job,
     content_hash)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (service_job_id) DO UPDATE SET
    status = excluded.status,
    marketplace_id = excluded.marketplace_id,
    store_id = excluded.store_id,
    create_time = excluded.create_time,
    last_activity = excluded.last_activity,
    synced_at = excluded.synced_at,
    job = excluded.job,
    content_hash = excluded.content_hash
"""


#: Ids asked for in one statement (SQLite's default limit of variables is far above it).
_ID_BATCH = 500


class SqliteSink(ThreadedSink):
    """Mirror service jobs into a SQLite file (created if missing).

    ::

        report = await sync_jobs(client, SqliteSink("service_jobs.sqlite"), since=since)

    The file uses write-ahead logging, so it can be read (``sqlite3``, pandas, a
    dashboard) while a sync writes to it.  Run one sync per file at a time.  A new file
    (and any folder made for it) is private to its owner; an existing one keeps its
    mode, with a warning if others can read it.

    :param buyer_key: the key, or ring of keys, that decrypts buyer data for
        :meth:`iter_jobs` and :meth:`get` and finds a buyer's protected jobs for
        :meth:`forget_buyer`; ``sync_jobs`` also protects with it by default.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, buyer_key: BuyerKeyLike | None = None
    ) -> None:
        super().__init__(buyer_key=buyer_key)
        #: The SQLite database file.
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._erased = ErasedBuyers()
        self._salt_stored = False

    _thread_name = "spapi-sync-sqlite"

    def __repr__(self) -> str:
        return f"SqliteSink({str(self.path)!r})"

    # --- on the sink's thread ---------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("SqliteSink is not open")
        return self._db

    def _open(self) -> None:
        if self.path.parent != Path() and not self.path.parent.exists():
            make_private_folders(self.path.parent)
        # SQLite would create the file with the umask's mode; made here first, it is
        # private from its first byte, and SQLite gives the -wal and -shm files the
        # file's own mode.
        if not create_private(self.path):
            for companion in ("", "-wal", "-shm", "-journal"):
                warn_if_shared(self.path.with_name(self.path.name + companion))
        db = sqlite3.connect(self.path, isolation_level=None)
        self._db = db
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA busy_timeout = 5000")
        # Deleted content is zeroed, not left in free pages; temporary b-trees (a VACUUM,
        # a large sort) stay in memory instead of a file in the system's temporary folder.
        db.execute("PRAGMA secure_delete = ON")
        db.execute("PRAGMA temp_store = MEMORY")
        db.executescript(_SCHEMA)
        self._migrate(db)
        self._erased = self._load_erased(db)

    def _migrate(self, db: sqlite3.Connection) -> None:
        columns = {row[1] for row in db.execute("PRAGMA table_info(service_jobs)")}
        if "last_activity" not in columns:
            with _transaction(db):
                db.execute("ALTER TABLE service_jobs ADD COLUMN last_activity TEXT")
                rows = db.execute("SELECT service_job_id, job FROM service_jobs").fetchall()
                db.executemany(
                    "UPDATE service_jobs SET last_activity = ? WHERE service_job_id = ?",
                    [(_last_activity(_serde.loads(job)), job_id) for job_id, job in rows],
                )
        db.execute(_LAST_ACTIVITY_INDEX)
        if "content_hash" not in columns:
            # Jobs stored before are judged by their stored record until written again.
            db.execute("ALTER TABLE service_jobs ADD COLUMN content_hash TEXT")

    def _load_erased(self, db: sqlite3.Connection) -> ErasedBuyers:
        row = db.execute("SELECT value FROM mirror_meta WHERE name = 'erasure_salt'").fetchone()
        self._salt_stored = row is not None
        digests = [r[0] for r in db.execute("SELECT digest FROM erased_buyers")]
        return ErasedBuyers(bytes.fromhex(row[0]) if row else None, digests)

    def _scope_state(self, scope: str) -> SinkState:
        db = self._conn()
        row = db.execute(
            "SELECT synced_until FROM sync_checkpoints WHERE scope = ?", (scope,)
        ).fetchone()
        checkpoint = parse_time(row[0]) if row else None
        return SinkState(
            checkpoint=checkpoint, plan=self._load_plan(db, scope), erased=self._erased
        )

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

    def _write_page_changes(
        self,
        plan: SyncPlan,
        window: Window,
        jobs: Sequence[ServiceJob],
        next_token: str | None,
        hashes: Sequence[str],
    ) -> PageWrite:
        db = self._conn()
        moment = datetime.now(UTC)
        now = format_time(moment)
        kept = [
            (job, digest) for job, digest in zip(jobs, hashes, strict=True) if job.service_job_id
        ]
        rows = [_row(job, now, digest) for job, digest in kept]
        with _transaction(db):
            held = self._held(db, [job.service_job_id for job, _ in kept if job.service_job_id])
            changes = changes_of([j for j, _ in kept], [h for _, h in kept], held, moment)
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
        return PageWrite(written=len(rows), changes=tuple(changes))

    @staticmethod
    def _held(db: sqlite3.Connection, ids: Sequence[str]) -> dict[str, str]:
        """The content hash of each of ``ids`` the mirror holds."""
        held: dict[str, str] = {}
        for start in range(0, len(ids), _ID_BATCH):
            chunk = ids[start : start + _ID_BATCH]
            marks = ", ".join("?" * len(chunk))
            for job_id, digest, job in db.execute(
                f"SELECT service_job_id, content_hash, job FROM service_jobs"
                f" WHERE service_job_id IN ({marks})",
                chunk,
            ):
                held[job_id] = stored_hash(digest, job)
        return held

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

    # --- reading and maintenance ------------------------------------------------------

    def _read_page(self, cursor: Any, limit: int) -> tuple[list[dict[str, Any]], Any]:
        rows = (
            self._conn()
            .execute(
                "SELECT service_job_id, job FROM service_jobs WHERE service_job_id > ?"
                " ORDER BY service_job_id LIMIT ?",
                ("" if cursor is None else cursor, limit),
            )
            .fetchall()
        )
        records = [_serde.loads(job) for _, job in rows]
        return records, (rows[-1][0] if len(rows) == limit else None)

    def _read_one(self, service_job_id: str) -> dict[str, Any] | None:
        row = (
            self._conn()
            .execute("SELECT job FROM service_jobs WHERE service_job_id = ?", (service_job_id,))
            .fetchone()
        )
        return None if row is None else dict(_serde.loads(row[0]))

    def _prune(self, cutoff: datetime, statuses: frozenset[str]) -> int:
        db = self._conn()
        marks = ", ".join("?" * len(statuses))
        with _transaction(db):
            # A job that records no time is judged by when the mirror last stored it.
            removed = db.execute(
                f"DELETE FROM service_jobs WHERE status IN ({marks})"
                " AND COALESCE(last_activity, synced_at) < ?",
                (*sorted(statuses), format_time(cutoff)),
            ).rowcount
        self._compact()
        return removed

    def _forget(self, buyer_id: str) -> int:
        db = self._conn()
        with _transaction(db):
            # Every row is looked at before any is changed: a row whose key is missing
            # stops the erasure before it starts.
            with self._records(db) as records:
                theirs = [
                    (job_id, record)
                    for job_id, record in records
                    if buyer_matches(record, buyer_id, self.buyer_keys)
                ]
            db.executemany(
                "UPDATE service_jobs SET job = ? WHERE service_job_id = ?",
                [(_serde.dumps(erase_record(record)), job_id) for job_id, record in theirs],
            )
            if not self._salt_stored:
                db.execute(
                    "INSERT INTO mirror_meta (name, value) VALUES ('erasure_salt', ?)",
                    (self._erased.salt.hex(),),
                )
            db.execute(
                "INSERT OR IGNORE INTO erased_buyers (digest, erased_at) VALUES (?, ?)",
                (self._erased.digest(buyer_id), format_time(datetime.now(UTC))),
            )
        self._salt_stored = True
        self._erased.add(buyer_id)
        self._compact()
        return len(theirs)

    def _rewrite(self, policy: BuyerDataPolicy) -> RewriteReport:
        db = self._conn()
        changed: list[tuple[str, str]] = []
        stale = 0
        with _transaction(db):
            with self._records(db) as records:
                for job_id, record in records:
                    stored = policy.protect(reveal_record(record, self.buyer_keys))
                    if stored != record:
                        changed.append((_serde.dumps(stored), job_id))
                    stale += stale_hashes(stored, policy.keys)
            db.executemany("UPDATE service_jobs SET job = ? WHERE service_job_id = ?", changed)
        self._compact()
        return RewriteReport(jobs=len(changed), stale_hashes=stale)

    @staticmethod
    @contextlib.contextmanager
    def _records(db: sqlite3.Connection) -> Iterator[Iterator[tuple[str, dict[str, Any]]]]:
        """Every row's id and record, its cursor closed on leaving, error or not.

        A cursor left open (held by a traceback) keeps the connection alive after
        ``close()``, and with it a read of the log that no checkpoint can get past.
        """
        cursor = db.execute("SELECT service_job_id, job FROM service_jobs")
        try:
            yield ((job_id, _serde.loads(job)) for job_id, job in cursor)
        finally:
            cursor.close()

    def _compact(self) -> None:
        """Leave no copy of removed data in the file, its free pages or its log."""
        db = self._conn()
        db.execute("VACUUM")
        busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise sqlite3.OperationalError(
                f"{self.path}: the change is saved, but another connection is reading the "
                "mirror, so its write-ahead log still holds older copies of the rows; run "
                "this again once that reader is closed"
            )


class _transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` on any error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _row(job: ServiceJob, synced_at: str, digest: str) -> tuple[str | None, ...]:
    record = job_record(job)
    return (
        job.service_job_id,
        str(job.service_job_status) if job.service_job_status is not None else None,
        job.marketplace_id,
        job.store_id,
        format_time(job.create_time) if job.create_time is not None else None,
        _last_activity(record),
        synced_at,
        _serde.dumps(record),
        digest,
    )


def _last_activity(record: dict[str, Any]) -> str | None:
    last = last_activity(record)
    return None if last is None else format_time(last)
