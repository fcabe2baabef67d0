"""PostgreSQL as the mirror: one table of jobs for every seller, one database for all.

Tables, in a schema of their own (``spapi`` unless told otherwise):

``service_jobs``
    Keyed by ``(seller_id, service_job_id)``; the job as the API sent it (``job``,
    JSONB, its buyer data as the sync's ``buyer_data`` left it) beside the columns
    people filter on: ``status``, ``marketplace_id``, ``store_id``, ``create_time``,
    ``scheduled_start`` (the start of the job's active appointment, else of its latest
    one), ``last_activity`` (the latest time the job records: what pruning goes by) and
    ``synced_at`` (when the row was last written).  Indexed per seller on each of them.
``sync_checkpoints``
    Per seller and scope (marketplace): ``synced_until``, the end of the last complete
    run.
``sync_runs`` and ``sync_windows``
    The unfinished run of a seller's scope, if any, and each window's next page token.
``erased_buyers`` and ``mirror_meta``
    Salted digests of the buyers each seller's mirror has forgotten, and the salt.
``sync_fences``
    Each seller's latest fencing token: a number that only grows, taken by each sync
    that starts (see below).
``change_outbox``
    Every change a sync stored (a job new to the mirror, or stored with other
    content), written in the same transaction as the job's row: ``id`` (increasing,
    never reused), ``seller_id``, ``service_job_id``, ``kind`` (``created`` or
    ``updated``), ``content_hash`` (of the job as the API sent it), ``seen_at``, ``job``
    (as the row holds it, buyer data as ``buyer_data`` left it) and ``relayed_at`` (set
    by the fleet once it has handed the row to its webhooks).
``schema_migrations``
    Which versioned migrations have been applied, per component (``mirror`` here; the
    fleet keeps its own tables in the same schema).

Every page is one transaction: its rows and its window's new token go in together, so
a sync stopped at any point resumes from the first page not stored.  The schema is
created and migrated on first use, under an advisory lock: any number of processes may
open sinks on a new database at once.

**Fencing.**  A sink given a fencing token (``fencing_token=``, or
:meth:`PostgresSink.take_fencing_token`) writes a run (its record, each page's rows and
progress, the checkpoint) only while that token is still the seller's latest: the check
is part of the transaction's first statement, and takes a share lock on the seller's
token row until the commit, so a newer sync's token cannot be issued between the check
and the commit.  A sink whose token is stale raises
:class:`~spapi_services.FencedOut` and its transaction changes nothing: a sync paused
or cut off past its lease, waking after another took the seller, cannot overwrite the
newer one's rows or checkpoint.

**The outbox.**  No change is stored without being recorded in ``change_outbox``, and
none is recorded for a write that rolled back: both are in the page's transaction,
under its fencing check.  Each page that recorded changes also notifies
``LISTEN`` channel :func:`outbox_channel` (``spapi_changes`` for the default schema),
delivered when the transaction commits, with a small JSON payload of ids only:
``{"sellerId": "A1B2C3", "ids": [1041, 1042]}``.  A consumer of your own listens,
reads the rows by id (or every row past the last id it handled), and deletes the rows
it has handled; the fleet relays them to webhooks and deletes them after a retention
time.  ``PostgresSink(outbox=False)`` records none.

**Reconnecting.**  A statement that fails because the connection or the server went
away (a restart, a failover, a dropped connection) is run again on a new connection,
whole transaction and all, for up to ``reconnect_timeout`` seconds; every write is
idempotent (rows are upserted, a window's progress is set, not added to), so a commit
whose answer was lost is harmless to repeat.  Past that the error is raised, and the
next sync resumes from what was stored.

The driver is asyncpg (``pip install "spapi-services[postgres]"``), imported when a sink
first opens: importing this module costs nothing without it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import attrs

from .. import _serde
from .._serde import parse_datetime
from .._validation import check_id
from ..errors import FencedOut
from ..models.feed import ChangeKind, JobChange
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
from ._plan import Mode, SyncPlan, Window
from ._sink import (
    READ_BATCH,
    MirrorSink,
    PageWrite,
    RewriteReport,
    SinkState,
    changes_of,
    hashes_of,
    job_from_record,
    job_record,
    stored_hash,
)

if TYPE_CHECKING:
    import asyncpg

__all__ = [
    "DEFAULT_SCHEMA",
    "Migration",
    "PostgresSink",
    "Reconnecting",
    "check_schema",
    "connect_pool",
    "fenced",
    "fencing_token_sql",
    "migrate",
    "outbox_channel",
]

T = TypeVar("T")

_log = logging.getLogger("spapi_services.sync")

#: The PostgreSQL schema the mirror's (and the fleet's) tables live in by default.
DEFAULT_SCHEMA = "spapi"

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")

Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"
Connection: TypeAlias = (
    "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
)


def _asyncpg() -> Any:
    try:
        import asyncpg
    except ImportError as exc:
        if not (exc.name or "").startswith("asyncpg"):
            raise
        from .._extras import missing_extra_message

        raise ImportError(missing_extra_message("postgres", "PostgreSQL (asyncpg)")) from exc
    return asyncpg


async def connect_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    command_timeout: float | None = None,
    connect_timeout: float = 10.0,
    server_settings: dict[str, str] | None = None,
) -> Pool:
    """An asyncpg pool for ``dsn`` (``postgresql://user@host:5432/db``).

    ``command_timeout`` bounds each statement (a link gone silent then fails instead of
    hanging), ``connect_timeout`` each new connection; ``server_settings`` are session
    settings for every connection (``lock_timeout``...).
    """
    if not isinstance(dsn, str) or not dsn.startswith(("postgresql://", "postgres://")):
        raise ValueError("database: expected a postgresql:// URL or an asyncpg pool")
    pool: Pool = await _asyncpg().create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=command_timeout,
        timeout=connect_timeout,
        server_settings=server_settings,
    )
    return pool


# --- reconnecting -------------------------------------------------------------------------


def _transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection or the server went away (worth a new try).

    The chain is looked at too: a transaction whose connection broke fails again on its
    way out (the rollback finds the connection mid-operation), hiding the first error.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if _gone(cause):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _gone(exc: BaseException) -> bool:
    if isinstance(exc, OSError | TimeoutError):
        return True
    asyncpg = _asyncpg()
    errors = asyncpg.exceptions
    if isinstance(
        exc,
        errors.PostgresConnectionError  # class 08: the connection failed or is gone
        | errors.AdminShutdownError  # 57P01: the server is stopping
        | errors.CrashShutdownError  # 57P02
        | errors.CannotConnectNowError  # 57P03: starting up, or shutting down
        | errors.IdleInTransactionSessionTimeoutError  # 25P03: a session the server ended
        | errors.IdleSessionTimeoutError,  # 57P05
    ):
        return True
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return True
    # A connection the server dropped in the middle of an exchange, found so by the next
    # statement (or the pool's reset): asyncpg closes it, and a new one is made.
    return isinstance(exc, errors.InternalClientError) and "another operation" in str(exc)


class _Outage:
    """Whether a pool's server is away: logged once when it goes and once when it is back."""

    def __init__(self) -> None:
        self.since: float | None = None


# One per pool (by id: asyncpg's pools take no weak references), shared by its sinks.
_outages: dict[int, _Outage] = {}


class Reconnecting:
    """Statements on a pool, each tried again on a new connection while the server is away.

    A statement (or a whole transaction, :meth:`run`) that fails because the connection
    or the server went away is run again, waiting 0.05 s and then twice as long each
    time (up to 1 s), until ``budget`` seconds have passed since the first failure; then
    its error is raised.  Only what is safe to repeat belongs here: idempotent writes,
    and reads.  The first failure of an outage is logged at WARNING, the return at INFO.
    """

    def __init__(self, pool: Pool, budget: float, *, what: str) -> None:
        self.pool = pool
        self.budget = budget
        self.what = what
        self._outage = _outages.setdefault(id(pool), _Outage())

    async def run(
        self, work: Callable[[Connection], Awaitable[T]], *, transaction: bool = False
    ) -> T:
        """``work`` on a connection of the pool (in a transaction if asked), retried."""

        async def attempt() -> T:
            conn = await self.pool.acquire()
            try:
                if transaction:
                    async with conn.transaction():
                        answer = await work(conn)
                else:
                    answer = await work(conn)
            except BaseException as exc:
                if _transient(exc) and not _released(conn):
                    conn.terminate()  # never handed out again half-broken
                await self._give_back(conn)
                raise
            await self._give_back(conn)
            return answer

        return await self.retry(attempt)

    async def _give_back(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
        # A connection the server dropped as the work ended (a restart) cannot be reset
        # for the next user: asyncpg closes it and the pool makes a new one.  The work
        # itself is done (committed), so that is not its failure.
        try:
            await self.pool.release(conn)
        except Exception as exc:
            _log.debug("a PostgreSQL connection could not be reset; dropped", exc_info=exc)

    async def retry(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt()``, again after each transient failure, within the budget."""
        loop = asyncio.get_running_loop()
        give_up: float | None = None
        delay = 0.05
        while True:
            try:
                answer = await attempt()
            except Exception as exc:
                if not _transient(exc):
                    raise
                now = loop.time()
                give_up = now + self.budget if give_up is None else give_up
                self._went_away(exc, now)
                if now + delay > give_up:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self._came_back(loop.time())
            return answer

    async def execute(self, query: str, *args: object) -> str:
        """``Connection.execute``, retried."""
        status: str = await self.run(lambda conn: conn.execute(query, *args))
        return status

    async def fetch(self, query: str, *args: object) -> list[Any]:
        """``Connection.fetch``, retried."""
        rows: list[Any] = await self.run(lambda conn: conn.fetch(query, *args))
        return rows

    async def fetchval(self, query: str, *args: object) -> Any:
        """``Connection.fetchval``, retried."""
        return await self.run(lambda conn: conn.fetchval(query, *args))

    def _went_away(self, exc: BaseException, now: float) -> None:
        if self._outage.since is None:
            self._outage.since = now
            _log.warning(
                "PostgreSQL connection lost (%s): %s tries again on a new connection for up to %gs",
                type(exc).__name__,
                self.what,
                self.budget,
            )

    def _came_back(self, now: float) -> None:
        since, self._outage.since = self._outage.since, None
        if since is not None:
            _log.info("PostgreSQL answers again after %.1fs", now - since)


def _released(conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> bool:
    """Whether the pool has the connection back already, or it is closed.

    When the server drops a connection (a restart, a terminated session), asyncpg closes
    it and hands it back to the pool at once, and every method of the proxy then raises
    ``InterfaceError``, which must not replace the error that says what happened.
    """
    try:
        return conn.is_closed()
    except _asyncpg().InterfaceError:
        return True


def check_schema(schema: str) -> str:
    """A schema name safe to write into SQL: lower-case letters, digits, ``_``."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(
            "schema: must be 1 to 63 lower-case letters, digits or underscores, "
            f"not starting with a digit, got {schema!r}"
        )
    return schema


# --- versioned migrations ----------------------------------------------------------------


@attrs.frozen
class Migration:
    """One step of a component's schema: ``sql`` with ``{schema}`` for the schema name."""

    version: int
    name: str
    sql: str


def _lock_key(schema: str) -> int:
    digest = hashlib.sha256(f"spapi-services migrations {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def migrate(
    pool: Pool, schema: str, component: str, migrations: Sequence[Migration]
) -> list[int]:
    """Apply the ``migrations`` of ``component`` not yet applied in ``schema``; their versions.

    All of them go in one transaction under a transaction-level advisory lock on the
    schema, so processes starting together wait for the first one and then find the
    work done.  A database already up to date is seen without taking the lock.  A
    database migrated by a newer release (a version this one does not know) is refused
    rather than written with an older idea of its tables.
    """
    check_schema(schema)
    known = {m.version for m in migrations}
    async with pool.acquire() as conn:
        done = await _applied(conn, schema, component)
    if done is not None and done >= known:
        _refuse_newer(schema, component, done, known)
        return []
    applied: list[int] = []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(schema))
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.schema_migrations ("
            " component text NOT NULL, version integer NOT NULL, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (component, version))"
        )
        done = await _applied(conn, schema, component) or set()
        _refuse_newer(schema, component, done, known)
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in done:
                continue
            await conn.execute(migration.sql.format(schema=schema))
            await conn.execute(
                f"INSERT INTO {schema}.schema_migrations (component, version, name)"
                " VALUES ($1, $2, $3)",
                component,
                migration.version,
                migration.name,
            )
            applied.append(migration.version)
    return applied


async def _applied(conn: Connection, schema: str, component: str) -> set[int] | None:
    """The versions of ``component`` applied in ``schema``; ``None`` if it has no table."""
    exists = await conn.fetchval("SELECT to_regclass($1)", f"{schema}.schema_migrations")
    if exists is None:
        return None
    rows = await conn.fetch(
        f"SELECT version FROM {schema}.schema_migrations WHERE component = $1", component
    )
    return {row[0] for row in rows}


def _refuse_newer(schema: str, component: str, done: set[int], known: set[int]) -> None:
    unknown = done - known
    if unknown:
        raise RuntimeError(
            f"schema {schema}: {component} is at version {max(unknown)}, newer than this "
            f"release of spapi-services knows ({max(known)}); upgrade spapi-services"
        )


MIRROR_MIGRATIONS = (
    Migration(
        1,
        "service jobs, checkpoints, runs, windows, erased buyers",
        """
CREATE TABLE {schema}.service_jobs (
    seller_id text NOT NULL,
    service_job_id text NOT NULL,
    status text,
    marketplace_id text,
    store_id text,
    create_time timestamptz,
    scheduled_start timestamptz,
    last_activity timestamptz,
    synced_at timestamptz NOT NULL,
    job jsonb NOT NULL,
    PRIMARY KEY (seller_id, service_job_id)
);
CREATE INDEX service_jobs_status ON {schema}.service_jobs (seller_id, status);
CREATE INDEX service_jobs_marketplace
    ON {schema}.service_jobs (seller_id, marketplace_id, create_time);
CREATE INDEX service_jobs_store ON {schema}.service_jobs (seller_id, store_id);
CREATE INDEX service_jobs_scheduled ON {schema}.service_jobs (seller_id, scheduled_start);
CREATE INDEX service_jobs_synced ON {schema}.service_jobs (seller_id, synced_at);
CREATE INDEX service_jobs_last_activity ON {schema}.service_jobs (seller_id, last_activity);
CREATE TABLE {schema}.sync_checkpoints (
    seller_id text NOT NULL,
    scope text NOT NULL,
    synced_until timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (seller_id, scope)
);
CREATE TABLE {schema}.sync_runs (
    seller_id text NOT NULL,
    scope text NOT NULL,
    run_id text NOT NULL,
    mode text NOT NULL,
    range_start timestamptz NOT NULL,
    range_end timestamptz NOT NULL,
    PRIMARY KEY (seller_id, scope)
);
CREATE TABLE {schema}.sync_windows (
    seller_id text NOT NULL,
    scope text NOT NULL,
    idx integer NOT NULL,
    range_start timestamptz NOT NULL,
    range_end timestamptz NOT NULL,
    query_start timestamptz NOT NULL,
    query_end timestamptz NOT NULL,
    page_token text,
    done boolean NOT NULL DEFAULT false,
    pages integer NOT NULL DEFAULT 0,
    jobs integer NOT NULL DEFAULT 0,
    expected integer,
    PRIMARY KEY (seller_id, scope, idx),
    FOREIGN KEY (seller_id, scope) REFERENCES {schema}.sync_runs ON DELETE CASCADE
);
CREATE TABLE {schema}.erased_buyers (
    seller_id text NOT NULL,
    digest text NOT NULL,
    erased_at timestamptz NOT NULL,
    PRIMARY KEY (seller_id, digest)
);
CREATE TABLE {schema}.mirror_meta (
    name text PRIMARY KEY,
    value text NOT NULL
);
-- gen_random_uuid draws from a strong random source: 122 random bits of salt.
INSERT INTO {schema}.mirror_meta (name, value)
    VALUES ('erasure_salt', replace(gen_random_uuid()::text, '-', ''));
""",
    ),
    Migration(
        2,
        "fencing tokens",
        """
CREATE TABLE {schema}.sync_fences (
    seller_id text PRIMARY KEY,
    token bigint NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
""",
    ),
    Migration(
        3,
        "content hashes, and the outbox of changes",
        """
ALTER TABLE {schema}.service_jobs ADD COLUMN content_hash text;
CREATE TABLE {schema}.change_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seller_id text NOT NULL,
    service_job_id text NOT NULL,
    kind text NOT NULL,
    content_hash text NOT NULL,
    seen_at timestamptz NOT NULL,
    job jsonb NOT NULL,
    run_id text NOT NULL,
    window_idx integer NOT NULL,
    page integer NOT NULL,
    relayed_at timestamptz
);
CREATE INDEX change_outbox_unrelayed ON {schema}.change_outbox (id) WHERE relayed_at IS NULL;
CREATE INDEX change_outbox_page ON {schema}.change_outbox (seller_id, run_id, window_idx, page);
CREATE INDEX change_outbox_seen ON {schema}.change_outbox (seller_id, seen_at);
-- Names this mirror's messages apart from another's at a receiver both send to.
INSERT INTO {schema}.mirror_meta (name, value)
    VALUES ('mirror_id', substr(replace(gen_random_uuid()::text, '-', ''), 1, 10));
""",
    ),
)


def outbox_channel(schema: str) -> str:
    """The ``LISTEN`` channel a mirror in ``schema`` notifies of new outbox rows
    (``spapi_changes`` for the default schema)."""
    channel = f"{check_schema(schema)}_changes"
    if len(channel) > 63:  # PostgreSQL's longest name; a long schema keeps a digest of it
        channel = f"{schema[:40]}_{hashlib.sha256(schema.encode()).hexdigest()[:12]}_changes"
    return channel


# --- fencing ------------------------------------------------------------------------------


def fencing_token_sql(schema: str) -> str:
    """A statement taking seller ``$1``'s next fencing token, returning it (``token``).

    Usable as a CTE, so that whatever records the run goes in the same statement.
    """
    return (
        f"INSERT INTO {schema}.sync_fences AS f (seller_id, token) VALUES ($1, 1)"
        " ON CONFLICT (seller_id) DO UPDATE SET token = f.token + 1, taken_at = now()"
        " RETURNING token"
    )


def fenced(schema: str, statement: str) -> str:
    """``statement`` with a CTE ``fence``: a row while ``$2`` is seller ``$1``'s latest token.

    The row is locked (``FOR SHARE``) until the transaction ends, so no newer token can
    be issued between the check and the commit.  Condition the statement's writes on
    ``EXISTS (SELECT 1 FROM fence)``.
    """
    return (
        f"WITH fence AS (SELECT 1 FROM {schema}.sync_fences"
        f" WHERE seller_id = $1 AND token = $2 FOR SHARE) {statement}"
    )


# Holds when the sink is not fenced ($2 NULL), or its token is the seller's latest.
_FENCE_HOLDS = "($2::bigint IS NULL OR EXISTS (SELECT 1 FROM fence))"

_UPSERT = """
INSERT INTO {schema}.service_jobs (seller_id, service_job_id, status, marketplace_id,
    store_id, create_time, scheduled_start, last_activity, synced_at, job, content_hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11)
ON CONFLICT (seller_id, service_job_id) DO UPDATE SET
    status = excluded.status,
    marketplace_id = excluded.marketplace_id,
    store_id = excluded.store_id,
    create_time = excluded.create_time,
    scheduled_start = excluded.scheduled_start,
    last_activity = excluded.last_activity,
    synced_at = excluded.synced_at,
    job = excluded.job,
    content_hash = excluded.content_hash
"""

# The content hash of each of a seller's jobs ($1) among $2, locked for the page's
# transaction; the stored record only where no hash was kept (a row from before).
_HELD = (
    "SELECT service_job_id, content_hash,"
    " CASE WHEN content_hash IS NULL THEN job::text END AS job"
    " FROM {schema}.service_jobs WHERE seller_id = $1 AND service_job_id = ANY($2::text[])"
    " FOR UPDATE"
)

# A page's changes into the outbox, and one notification of their ids (sent on commit).
_PUBLISH = """
WITH added AS (
    INSERT INTO {schema}.change_outbox (seller_id, service_job_id, kind, content_hash,
        seen_at, job, run_id, window_idx, page)
    SELECT $1, t.job_id, t.kind, t.hash, $2, t.job::jsonb, $3, $4, $5
    FROM unnest($6::text[], $7::text[], $8::text[], $9::text[]) AS t(job_id, kind, hash, job)
    RETURNING id
)
SELECT pg_notify($10, json_build_object('sellerId', $1::text,
    'ids', array_agg(id ORDER BY id))::text) FROM added
"""

# The changes a page's transaction recorded, if it committed before (its answer lost).
_RECORDED = (
    "SELECT service_job_id, kind, content_hash, seen_at, job::text AS job"
    " FROM {schema}.change_outbox WHERE seller_id = $1 AND run_id = $2 AND window_idx = $3"
    " AND page = $4 ORDER BY id"
)


# A window's progress after a page; $1 seller, $2 fencing token (or NULL), $3 scope.
_PROGRESS = (
    "UPDATE {schema}.sync_windows SET page_token = $5, done = $6, pages = $7, jobs = $8,"
    " expected = $9 WHERE seller_id = $1 AND scope = $3 AND idx = $4 AND " + _FENCE_HOLDS
)


class PostgresSink(MirrorSink):
    """Mirror one seller's service jobs into PostgreSQL, beside every other seller's.

    ::

        async with PostgresSink("postgresql://sync@db/mirror", seller_id="A1B2C3") as mirror:
            report = await sync_jobs(client, mirror, since=since)

    :param database: a ``postgresql://`` URL (the sink opens a small pool and closes it)
        or an asyncpg pool of yours (used, never closed: share one among the sinks of a
        process).
    :param seller_id: whose jobs, checkpoints and runs these are: every row the sink
        reads or writes carries it.  Run one sync per seller at a time.
    :param schema: the PostgreSQL schema of the tables (created on first use).
    :param buyer_key: the key, or ring of keys, that decrypts buyer data for
        :meth:`iter_jobs` and :meth:`get` and finds a buyer's protected jobs for
        :meth:`forget_buyer`; ``sync_jobs`` also protects with it by default.
    :param fencing_token: fence the sink's run writes with this token (see the module's
        *Fencing*): they land only while it is the seller's latest, else
        :class:`~spapi_services.FencedOut`.  ``None`` (the default) writes unfenced, for
        one process at a time per seller; :meth:`take_fencing_token` takes a new one.
    :param reconnect_timeout: how long a statement is tried again while the server is
        away (a restart, a dropped connection) before its error is raised.
    :param outbox: record each change in ``change_outbox`` (see the module's *The
        outbox*); the rows stay until a consumer (the fleet) removes them.

    The fencing covers what a sync writes (:meth:`begin`, :meth:`write_page`,
    :meth:`finish`); the upkeep calls (``prune``, ``forget_buyer``,
    ``rewrite_buyer_data``) are the owner's and are not fenced.

    PostgreSQL keeps a removed or rewritten row's old version until vacuum reuses its
    space, and in its write-ahead log and backups: ``prune`` and ``forget_buyer`` do not
    rewrite the table (``VACUUM FULL`` would lock it for every seller).  Where no copy
    of a buyer's data may linger, store it encrypted (``buyer_data="encrypt"``).
    """

    def __init__(
        self,
        database: str | Pool,
        *,
        seller_id: str,
        schema: str = DEFAULT_SCHEMA,
        buyer_key: BuyerKeyLike | None = None,
        fencing_token: int | None = None,
        reconnect_timeout: float = 30.0,
        outbox: bool = True,
    ) -> None:
        super().__init__(buyer_key=buyer_key)
        if isinstance(database, str):
            if not database.startswith(("postgresql://", "postgres://")):
                raise ValueError("database: expected a postgresql:// URL or an asyncpg pool")
        elif not hasattr(database, "acquire"):
            raise TypeError(
                "database: expected a postgresql:// URL or an asyncpg pool, "
                f"got {type(database).__name__}"
            )
        self.seller_id = check_id("seller_id", seller_id)
        self.schema = check_schema(schema)
        if fencing_token is not None and (
            isinstance(fencing_token, bool) or not isinstance(fencing_token, int)
        ):
            raise TypeError(f"fencing_token: expected a whole number, got {fencing_token!r}")
        if isinstance(reconnect_timeout, bool) or not (
            isinstance(reconnect_timeout, int | float) and 0 <= reconnect_timeout < float("inf")
        ):
            raise ValueError(
                f"reconnect_timeout: must be zero or more seconds, got {reconnect_timeout!r}"
            )
        #: The token the sink's run writes are fenced with (``None``: unfenced).
        self.fencing_token = fencing_token
        self.reconnect_timeout = float(reconnect_timeout)
        self._database = database
        self._pool: Pool | None = None
        self._db_: Reconnecting | None = None
        self._erased = ErasedBuyers()
        self._upsert = _UPSERT.format(schema=self.schema)
        self._held = _HELD.format(schema=self.schema)
        self._publish = _PUBLISH.format(schema=self.schema)
        self._recorded_sql = _RECORDED.format(schema=self.schema)
        #: Whether each change is recorded in the outbox (``change_outbox``).
        self.outbox = bool(outbox)
        #: The channel notified of new outbox rows (see :func:`outbox_channel`).
        self.channel = outbox_channel(self.schema)
        self._progress = fenced(self.schema, _PROGRESS.format(schema=self.schema))

    def __repr__(self) -> str:
        fence = "" if self.fencing_token is None else f", fencing_token={self.fencing_token}"
        return f"PostgresSink(seller_id={self.seller_id!r}, schema={self.schema!r}{fence})"

    # --- opening ------------------------------------------------------------------------

    async def _store_open(self) -> None:
        if isinstance(self._database, str):
            pool = await connect_pool(self._database, max_size=2)
        else:
            pool = self._database
        db = Reconnecting(pool, self.reconnect_timeout, what=f"the mirror of {self.seller_id}")
        try:
            await db.retry(lambda: migrate(pool, self.schema, "mirror", MIRROR_MIGRATIONS))
            self._erased = await db.run(self._load_erased)
        except BaseException:
            if pool is not self._database:
                await pool.close()
            raise
        self._pool, self._db_ = pool, db

    async def _store_close(self) -> None:
        pool, self._pool, self._db_ = self._pool, None, None
        if pool is not None and pool is not self._database:
            await pool.close()

    def _db(self) -> Reconnecting:
        if self._db_ is None:
            raise RuntimeError("PostgresSink is not open")
        return self._db_

    async def _load_erased(self, conn: Connection) -> ErasedBuyers:
        s = self.schema
        salt = await conn.fetchval(f"SELECT value FROM {s}.mirror_meta WHERE name = 'erasure_salt'")
        rows = await conn.fetch(
            f"SELECT digest FROM {s}.erased_buyers WHERE seller_id = $1", self.seller_id
        )
        return ErasedBuyers(bytes.fromhex(salt), [row[0] for row in rows])

    async def _transaction(self, work: Callable[[Connection], Awaitable[T]]) -> T:
        return await self._db().run(work, transaction=True)

    # --- fencing ------------------------------------------------------------------------

    async def take_fencing_token(self) -> int:
        """Take the seller's next fencing token and fence this sink's writes with it.

        From here on, a sink of the same seller holding an older token (another process
        still syncing it, unaware it should have stopped) gets
        :class:`~spapi_services.FencedOut` at its next write.  Opens the sink for the
        call if it is not open.
        """
        async with self:
            token: int = await self._db().fetchval(fencing_token_sql(self.schema), self.seller_id)
        self.fencing_token = token
        return token

    async def _fenced_out(self, conn: Connection) -> FencedOut | None:
        """Why a fenced statement changed nothing: a stale token, or ``None`` if it holds."""
        assert self.fencing_token is not None
        current = await conn.fetchval(
            f"SELECT token FROM {self.schema}.sync_fences WHERE seller_id = $1", self.seller_id
        )
        if current == self.fencing_token:
            return None
        return FencedOut(self.seller_id, self.fencing_token, current)

    # --- the Sink protocol --------------------------------------------------------------

    async def state(self, scope: str) -> SinkState:
        """The scope's checkpoint and unfinished run, for this seller."""
        return await self._db().run(lambda conn: self._state(conn, scope))

    async def _state(self, conn: Connection, scope: str) -> SinkState:
        s, seller = self.schema, self.seller_id
        checkpoint = await conn.fetchval(
            f"SELECT synced_until FROM {s}.sync_checkpoints WHERE seller_id = $1 AND scope = $2",
            seller,
            scope,
        )
        run = await conn.fetchrow(
            f"SELECT run_id, mode, range_start, range_end FROM {s}.sync_runs"
            " WHERE seller_id = $1 AND scope = $2",
            seller,
            scope,
        )
        windows = await conn.fetch(
            f"SELECT idx, range_start, range_end, query_start, query_end, page_token,"
            f" done, pages, jobs, expected FROM {s}.sync_windows"
            " WHERE seller_id = $1 AND scope = $2 ORDER BY idx",
            seller,
            scope,
        )
        plan = None
        if run is not None:
            plan = SyncPlan(
                run_id=run["run_id"],
                scope=scope,
                mode=Mode(run["mode"]),
                start=_utc(run["range_start"]),
                end=_utc(run["range_end"]),
                windows=[
                    Window(
                        index=w["idx"],
                        start=_utc(w["range_start"]),
                        end=_utc(w["range_end"]),
                        query_start=_utc(w["query_start"]),
                        query_end=_utc(w["query_end"]),
                        page_token=w["page_token"],
                        done=w["done"],
                        pages=w["pages"],
                        jobs=w["jobs"],
                        expected=w["expected"],
                    )
                    for w in windows
                ],
            )
        return SinkState(
            checkpoint=None if checkpoint is None else _utc(checkpoint),
            plan=plan,
            erased=self._erased,
        )

    async def begin(self, plan: SyncPlan) -> None:
        """Record a new run, replacing any unfinished run of the seller's scope.

        Fenced (see the class): a stale token raises :class:`~spapi_services.FencedOut`
        and nothing changes.
        """
        await self._transaction(lambda conn: self._begin(conn, plan))

    async def _begin(self, conn: Connection, plan: SyncPlan) -> None:
        s, seller = self.schema, self.seller_id
        holds = await conn.fetchval(
            fenced(
                s,
                f", gone AS (DELETE FROM {s}.sync_runs WHERE seller_id = $1 AND scope = $3"
                f" AND {_FENCE_HOLDS}) SELECT {_FENCE_HOLDS}",
            ),
            seller,
            self.fencing_token,
            plan.scope,
        )
        if not holds:
            await self._refuse(conn, "begin")
        await conn.execute(
            f"INSERT INTO {s}.sync_runs (seller_id, scope, run_id, mode, range_start,"
            " range_end) VALUES ($1, $2, $3, $4, $5, $6)",
            seller,
            plan.scope,
            plan.run_id,
            plan.mode.value,
            plan.start,
            plan.end,
        )
        await conn.executemany(
            f"INSERT INTO {s}.sync_windows (seller_id, scope, idx, range_start, range_end,"
            " query_start, query_end, page_token, done, pages, jobs, expected)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            [
                (
                    seller,
                    plan.scope,
                    w.index,
                    w.start,
                    w.end,
                    w.query_start,
                    w.query_end,
                    w.page_token,
                    w.done,
                    w.pages,
                    w.jobs,
                    w.expected,
                )
                for w in plan.windows
            ],
        )

    async def write_page(
        self, plan: SyncPlan, window: Window, jobs: Sequence[ServiceJob], next_token: str | None
    ) -> int:
        """Upsert a page's jobs and, in the same transaction, the window's progress (and
        the page's changes into the outbox); the number of jobs written."""
        page = await self.write_page_changes(plan, window, jobs, next_token, hashes_of(jobs))
        return page.written

    async def write_page_changes(
        self,
        plan: SyncPlan,
        window: Window,
        jobs: Sequence[ServiceJob],
        next_token: str | None,
        hashes: Sequence[str],
    ) -> PageWrite:
        """Upsert a page's jobs, the window's progress and the page's changes at once.

        The window's progress goes first, conditional on the fencing token (one
        statement, no extra round trip): a stale token raises
        :class:`~spapi_services.FencedOut` before any row is written.  The progress is
        set from the window as the engine holds it (pages and jobs after this page),
        not added to, so a transaction repeated after a lost commit answer counts once.
        The page's changes are judged against the rows it replaces (locked until the
        commit) and, with ``outbox``, recorded in ``change_outbox`` with a notification
        of their ids; a transaction repeated after a lost commit answer finds its jobs
        stored, records nothing twice, and reports the changes it recorded the first
        time.
        """
        now = datetime.now(UTC)
        kept = [(job, h) for job, h in zip(jobs, hashes, strict=True) if job.service_job_id]
        rows = [self._row(job, now, digest) for job, digest in kept]
        ids = [job.service_job_id for job, _ in kept]
        page_number = window.pages + 1
        progress = (
            self.seller_id,
            self.fencing_token,
            plan.scope,
            window.index,
            next_token,
            next_token is None,
            page_number,
            window.jobs + len(rows),
            window.expected,
        )
        attempts = 0

        async def write(conn: Connection) -> list[JobChange]:
            nonlocal attempts
            attempts += 1
            status = await conn.execute(self._progress, *progress)
            if status == "UPDATE 0":
                await self._refuse(conn, f"window {window.index} of run {plan.run_id}")
            recorded: list[JobChange] = []
            if attempts > 1 and self.outbox:
                recorded = await self._recorded(conn, plan.run_id, window.index, page_number)
            if not rows:
                return recorded
            held = {
                row["service_job_id"]: stored_hash(row["content_hash"], row["job"])
                for row in await conn.fetch(self._held, self.seller_id, ids)
            }
            changes = changes_of([j for j, _ in kept], [h for _, h in kept], held, now)
            await conn.executemany(self._upsert, rows)
            if changes and self.outbox:
                await conn.execute(
                    self._publish,
                    self.seller_id,
                    now,
                    plan.run_id,
                    window.index,
                    page_number,
                    [c.service_job_id for c in changes],
                    [c.kind.value for c in changes],
                    [c.content_hash for c in changes],
                    [_serde.dumps(job_record(c.job)) for c in changes],
                    self.channel,
                )
            return recorded + changes

        changes = await self._transaction(write)
        return PageWrite(written=len(rows), changes=tuple(changes))

    async def _recorded(
        self, conn: Connection, run_id: str, window_index: int, page: int
    ) -> list[JobChange]:
        rows = await conn.fetch(self._recorded_sql, self.seller_id, run_id, window_index, page)
        return [
            JobChange(
                kind=ChangeKind(row["kind"]),
                job=_serde.structure(_serde.loads(row["job"]), ServiceJob),
                seen_at=_utc(row["seen_at"]),
                content_hash=row["content_hash"],
            )
            for row in rows
        ]

    async def finish(self, plan: SyncPlan) -> None:
        """Make the run's end the scope's checkpoint and forget the run (one transaction).

        Fenced: a stale token raises :class:`~spapi_services.FencedOut` and the
        checkpoint stays the newer sync's.
        """
        s, seller = self.schema, self.seller_id

        async def finish(conn: Connection) -> None:
            status = await conn.execute(
                fenced(
                    s,
                    f"INSERT INTO {s}.sync_checkpoints (seller_id, scope, synced_until,"
                    f" updated_at) SELECT $1, $3, $4, now() WHERE {_FENCE_HOLDS}"
                    " ON CONFLICT (seller_id, scope) DO UPDATE SET"
                    " synced_until = excluded.synced_until, updated_at = excluded.updated_at",
                ),
                seller,
                self.fencing_token,
                plan.scope,
                plan.end,
            )
            if status == "INSERT 0 0":
                await self._refuse(conn, "finish")
            await conn.execute(
                f"DELETE FROM {s}.sync_runs WHERE seller_id = $1 AND scope = $2",
                seller,
                plan.scope,
            )

        await self._transaction(finish)

    async def _refuse(self, conn: Connection, what: str) -> None:
        """Raise why a conditional write changed nothing (always raises)."""
        if self.fencing_token is not None:
            fenced_out = await self._fenced_out(conn)
            if fenced_out is not None:
                _log.warning("%s", fenced_out)
                raise fenced_out
        raise RuntimeError(
            f"PostgresSink({self.seller_id}): {what}: the run's rows are not in the store "
            "(another sync replaced the run?)"
        )

    def _row(self, job: ServiceJob, synced_at: datetime, digest: str) -> tuple[Any, ...]:
        record = job_record(job)
        return (
            self.seller_id,
            job.service_job_id,
            str(job.service_job_status) if job.service_job_status is not None else None,
            job.marketplace_id,
            job.store_id,
            job.create_time,
            scheduled_start(record),
            last_activity(record),
            synced_at,
            _serde.dumps(record),
            digest,
        )

    # --- reading and upkeep -------------------------------------------------------------

    async def _store_jobs_page(self, cursor: Any) -> tuple[list[ServiceJob], Any]:
        rows = await self._db().fetch(
            f"SELECT service_job_id, job FROM {self.schema}.service_jobs"
            " WHERE seller_id = $1 AND service_job_id > $2"
            " ORDER BY service_job_id LIMIT $3",
            self.seller_id,
            "" if cursor is None else cursor,
            READ_BATCH,
        )
        jobs = [job_from_record(_serde.loads(row["job"]), self.buyer_keys) for row in rows]
        return jobs, (rows[-1]["service_job_id"] if len(rows) == READ_BATCH else None)

    async def _store_read_one(self, service_job_id: str) -> dict[str, Any] | None:
        text = await self._db().fetchval(
            f"SELECT job FROM {self.schema}.service_jobs"
            " WHERE seller_id = $1 AND service_job_id = $2",
            self.seller_id,
            service_job_id,
        )
        return None if text is None else dict(_serde.loads(text))

    async def _store_prune(self, cutoff: datetime, statuses: frozenset[str]) -> int:
        async with self._db().pool.acquire() as conn:
            # A job that records no time is judged by when the mirror last stored it.
            removed: int = await conn.fetchval(
                f"WITH gone AS (DELETE FROM {self.schema}.service_jobs"
                " WHERE seller_id = $1 AND status = ANY($2::text[])"
                " AND COALESCE(last_activity, synced_at) < $3 RETURNING 1)"
                " SELECT count(*) FROM gone",
                self.seller_id,
                sorted(statuses),
                cutoff,
            )
        return removed

    async def _store_forget(self, buyer_id: str) -> int:
        s, seller = self.schema, self.seller_id
        async with self._db().pool.acquire() as conn, conn.transaction():
            # Every row is looked at before any is changed: a row whose key is missing
            # stops the erasure before it starts.
            theirs = [
                (erase_record(record), job_id)
                async for job_id, record in self._records(conn, "AND job ? 'buyer'")
                if buyer_matches(record, buyer_id, self.buyer_keys)
            ]
            await conn.executemany(
                f"UPDATE {s}.service_jobs SET job = $1::jsonb"
                " WHERE seller_id = $3 AND service_job_id = $2",
                [(_serde.dumps(record), job_id, seller) for record, job_id in theirs],
            )
            await conn.execute(
                f"INSERT INTO {s}.erased_buyers (seller_id, digest, erased_at)"
                " VALUES ($1, $2, now()) ON CONFLICT DO NOTHING",
                seller,
                self._erased.digest(buyer_id),
            )
        self._erased.add(buyer_id)
        return len(theirs)

    async def _store_rewrite(self, policy: BuyerDataPolicy) -> RewriteReport:
        changed: list[tuple[str, str, str]] = []
        stale = 0
        async with self._db().pool.acquire() as conn, conn.transaction():
            async for job_id, record in self._records(conn):
                stored = policy.protect(reveal_record(record, self.buyer_keys))
                if stored != record:
                    changed.append((_serde.dumps(stored), job_id, self.seller_id))
                stale += stale_hashes(stored, policy.keys)
            await conn.executemany(
                f"UPDATE {self.schema}.service_jobs SET job = $1::jsonb"
                " WHERE service_job_id = $2 AND seller_id = $3",
                changed,
            )
        return RewriteReport(jobs=len(changed), stale_hashes=stale)

    async def _records(
        self, conn: Connection, where: str = ""
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """The seller's rows (id and record), locked until the transaction ends."""
        query = (
            f"SELECT service_job_id, job FROM {self.schema}.service_jobs"
            f" WHERE seller_id = $1 {where} ORDER BY service_job_id FOR UPDATE"
        )
        async for row in conn.cursor(query, self.seller_id, prefetch=READ_BATCH):
            yield row["service_job_id"], _serde.loads(row["job"])


def scheduled_start(record: dict[str, Any]) -> datetime | None:
    """When the job is (or was last) scheduled: its active appointment's start, else the
    latest start among its appointments; ``None`` without appointments."""
    starts: list[tuple[bool, datetime]] = []
    appointments = record.get("appointments")
    for appointment in appointments if isinstance(appointments, list) else ():
        if not isinstance(appointment, dict):
            continue
        slot = appointment.get("appointmentTime")
        text = slot.get("startTime") if isinstance(slot, dict) else None
        if not isinstance(text, str):
            continue
        try:
            start = parse_datetime(text)
        except ValueError:
            continue
        starts.append((appointment.get("appointmentStatus") == "ACTIVE", start))
    return max(starts)[1] if starts else None


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)
