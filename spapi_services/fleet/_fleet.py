"""The fleet: every seller synced on a schedule by worker processes, into PostgreSQL.

One :class:`Fleet` describes the whole deployment (Redis, PostgreSQL, the sellers, the
app's credentials, the pace); every process builds the same one.  A worker runs the
``sync_seller`` task for many sellers at once in one event loop, each on that seller's
usage plans shared through Redis; the scheduler sends each seller's task every
``interval``; any process can add sellers, send a task now, or read the status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import attrs
from redis.exceptions import RedisError
from taskiq import AsyncTaskiqDecoratedTask, TaskiqEvents, TaskiqScheduler

from .._auth import LwaCredentials
from .._client import Region, ServicesClient
from .._ratelimit import UsagePlan
from ..errors import AuthenticationError, FencedOut
from ..redis import RedisRateLimits, RedisTokenCache
from ..redis._link import RedisLink, check_seconds
from ..sync import BUYER_DATA_CHOICES, BuyerData, BuyerKeyLike, PostgresSink, sync_jobs
from ..sync._postgres import DEFAULT_SCHEMA, Pool, check_schema, connect_pool
from ._broker import MARK_LABEL, FleetBroker
from ._directory import PostgresSellerDirectory, Seller, SellerDirectory
from ._errors import describe_error, describe_refusal
from ._locks import LeaseLost, SellerBusy, SellerLocks
from ._schedule import SellerScheduleSource
from ._schema import migrate_all
from ._secrets import DirectoryKey, token_fingerprint
from ._status import SellerState, SellerStatus, StatusBook

__all__ = ["SYNC_TASK", "Fleet", "SellerRun"]

_log = logging.getLogger("spapi_services.fleet")

#: The name the sync task is registered under (the same in every process).
SYNC_TASK = "spapi_services.fleet.sync_seller"

# The fleet's PostgreSQL sessions: a statement that hangs (a link gone silent) fails
# instead.  A session left in the middle of a transaction by a frozen worker is ended by
# the server after 5 s (the fleet's transactions wait on nothing between statements), so
# the locks it held on the seller's fencing token go with it; a new holder waits for
# that (up to 10 s) rather than fail, and never waits for ever.
_COMMAND_TIMEOUT = 30.0
_SESSION = {"lock_timeout": "10s", "idle_in_transaction_session_timeout": "5s"}


@attrs.frozen(kw_only=True)
class SellerRun:
    """What one ``sync_seller`` task did.

    ``outcome`` is ``ok``, ``failed``, ``refused`` (Amazon refused the refresh token:
    the seller is marked and skipped until its token changes), ``skipped`` (already
    marked refused), ``busy`` (another worker is syncing the seller), ``lost`` (the
    sync lost its lock and stopped), ``fenced`` (another sync took the seller over
    while this one ran: its writes were refused and it stopped, see
    :class:`~spapi_services.FencedOut`), ``unknown`` (no such seller) or ``disabled``.
    ``fencing_token`` is the token the run took (``None`` if it never started).
    """

    seller_id: str
    outcome: str
    jobs: int = 0
    requests: int = 0
    throttled: int = 0
    error: str | None = None
    fencing_token: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The run as a plain dict of its fields (what the task returns to taskiq)."""
        return attrs.asdict(self)


class _CountingPlan:
    """The shared usage plan, counting the 429s one sync drew.

    It is a :class:`~spapi_services.ReservingPlan`, as the Redis plan it wraps is, and
    delegates ``reserve``: the client then books each request's token in one round trip
    to Redis instead of polling for it.
    """

    def __init__(self, plan: RedisRateLimits) -> None:
        self._plan = plan
        self.throttled_count = 0

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        return await self._plan.try_acquire(scope, operation_id)

    # Any: the name of what it returns (TokenReservation) is not imported in this module.
    async def reserve(self, scope: str, operation_id: str, *, max_wait: float | None) -> Any:
        return await self._plan.reserve(scope, operation_id, max_wait=max_wait)

    async def update_rate(self, scope: str, operation_id: str, rate: float) -> None:
        await self._plan.update_rate(scope, operation_id, rate)

    async def throttled(self, scope: str, operation_id: str) -> None:
        self.throttled_count += 1
        await self._plan.throttled(scope, operation_id)


@attrs.define
class _Resources:
    """What a process's syncs share, made in (and bound to) one event loop."""

    loop: asyncio.AbstractEventLoop
    pool: Pool
    link: RedisLink
    plan: RedisRateLimits
    tokens: RedisTokenCache
    session: aiohttp.ClientSession
    locks: SellerLocks
    status: StatusBook

    async def close(self) -> None:
        await self.session.close()
        await self.plan.aclose()
        await self.tokens.aclose()
        await self.link.aclose()
        await self.pool.close()


class Fleet:
    """Every seller of a directory, synced into PostgreSQL by taskiq workers.

    :param redis_url: the Redis of the task queue, the locks and the shared usage plans
        and access tokens.
    :param database_url: the PostgreSQL of the mirror (:class:`PostgresSink`), the
        fleet's status and (by default) its sellers.
    :param directory: where the sellers are; default: a
        :class:`PostgresSellerDirectory` in the same database, sealed with
        ``directory_key``.
    :param directory_key: the key (or its base64 text) of the default directory.
        Needed to add sellers, sync or schedule them; not to read the status.
    :param client_id: the LWA app's client id (default: ``SPAPI_CLIENT_ID``; needed by
        workers only).
    :param client_secret: its secret (default: ``SPAPI_CLIENT_SECRET``).
    :param token_key: 16, 24 or 32 bytes sealing access tokens in Redis (recommended).
    :param interval: how often each seller is synced.
    :param history: how far back a seller's first sync reaches.
    :param lease: seconds a seller's lock lives without renewal (renewed every third).
        A sync that cannot renew it (Redis silent or away, or its process paused) is
        cancelled a fifth of the lease before the lock could expire.
    :param idle_timeout: seconds after which a silent worker's task goes to another
        (default: twice the lease, so its lock has expired by then).
    :param redis_timeout: seconds any one Redis call of the fleet (locks, marks, the
        queue, the status) may take (default: a fifth of the lease, at most 1 s); the
        shared usage plans and tokens keep their own shorter bound and fall back to the
        process.
    :param reconnect_timeout: how long a PostgreSQL statement is tried again while the
        database is away (restarting, failing over) before the sync fails; the next
        sync resumes from what was stored.
    :param reclaim_interval: seconds between workers' looks for such tasks.
    :param windows: how many windows (pages in flight) each sync uses.
    :param buyer_data: what the mirror keeps of buyers' data (see ``sync_jobs``).
    :param buyer_key: the key for ``buyer_data="encrypt"`` or ``"hash"``.
    :param endpoint: another API base URL for every seller (a proxy, the emulator).
    :param token_url: another LWA token URL.
    :param sandbox: use the regions' sandbox hosts.
    :param schema: the PostgreSQL schema of every table.
    :param key_prefix: the prefix of every Redis key (locks, marks, plans, tokens).
    :param queue: the Redis stream of the tasks.
    :param pool_size: PostgreSQL connections per process.
    """

    def __init__(
        self,
        *,
        redis_url: str,
        database_url: str,
        directory: SellerDirectory | None = None,
        directory_key: DirectoryKey | str | bytes | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        token_key: bytes | None = None,
        interval: timedelta = timedelta(minutes=15),
        history: timedelta = timedelta(days=90),
        lease: float = 30.0,
        idle_timeout: float | None = None,
        reclaim_interval: float = 5.0,
        windows: int = 4,
        buyer_data: BuyerData = "keep",
        buyer_key: BuyerKeyLike | None = None,
        endpoint: str | None = None,
        token_url: str | None = None,
        sandbox: bool = False,
        schema: str = DEFAULT_SCHEMA,
        key_prefix: str = "spapi",
        queue: str = "spapi:fleet:tasks",
        pool_size: int = 10,
        redis_timeout: float | None = None,
        reconnect_timeout: float = 30.0,
    ) -> None:
        if not isinstance(redis_url, str) or not redis_url.startswith(("redis://", "rediss://")):
            raise ValueError("redis_url: expected a redis:// or rediss:// URL")
        if not isinstance(database_url, str) or not database_url.startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError("database_url: expected a postgresql:// URL")
        if not isinstance(interval, timedelta) or interval < timedelta(seconds=1):
            raise ValueError("interval: must be a timedelta of at least a second")
        if not isinstance(history, timedelta) or history <= timedelta(0):
            raise ValueError("history: must be a positive timedelta, e.g. 90 days")
        _positive("lease", lease)
        _positive("reclaim_interval", reclaim_interval)
        if idle_timeout is not None:
            _positive("idle_timeout", idle_timeout)
        if buyer_data not in BUYER_DATA_CHOICES:
            raise ValueError(f"buyer_data: must be one of {', '.join(BUYER_DATA_CHOICES)}")
        self.redis_timeout = check_seconds(
            "Fleet",
            "redis_timeout",
            min(1.0, lease / 5) if redis_timeout is None else redis_timeout,
        )
        if self.redis_timeout >= lease / 3:
            raise ValueError(
                f"redis_timeout: must be shorter than a third of the lease ({lease / 3:g}s), "
                f"so that a lock is renewed in time, got {redis_timeout!r}"
            )
        self.reconnect_timeout = check_seconds("Fleet", "reconnect_timeout", reconnect_timeout)
        client_id = client_id or os.environ.get("SPAPI_CLIENT_ID", "").strip()
        client_secret = client_secret or os.environ.get("SPAPI_CLIENT_SECRET", "").strip()
        self.schema = check_schema(schema)
        self._keyless = directory is None and directory_key is None
        if directory is None:
            directory = PostgresSellerDirectory(database_url, key=directory_key, schema=schema)
        elif not isinstance(directory, SellerDirectory):
            raise TypeError("directory: expected a SellerDirectory (seller_ids() and get())")
        self.directory: SellerDirectory = directory
        self.redis_url = redis_url
        self.database_url = database_url
        self.interval = interval
        self.history = history
        self.lease = float(lease)
        self.windows = windows
        self.buyer_data: BuyerData = buyer_data
        self.buyer_key = buyer_key
        self.key_prefix = key_prefix
        self._client_id = client_id
        self._client_secret = client_secret
        self._token_key = token_key
        self._endpoint = endpoint
        self._token_url = token_url
        self._sandbox = sandbox
        self._pool_size = pool_size
        self._resources: _Resources | None = None
        self._opening: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self._broker_started = False

        self.broker = FleetBroker(
            redis_url,
            queue_name=queue,
            idle_timeout=2 * self.lease if idle_timeout is None else idle_timeout,
            reclaim_interval=reclaim_interval,
            redis_timeout=self.redis_timeout,
        )
        self.sync_seller: AsyncTaskiqDecoratedTask[[str], Awaitable[dict[str, Any]]] = (
            self.broker.register_task(
                self._task_function(),
                task_name=SYNC_TASK,
                # Acknowledged once run: a task whose worker dies is given to another.
                ack_type="when_executed",
            )
        )
        self.broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, self._worker_startup)
        self.broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, self._worker_shutdown)
        self.scheduler = TaskiqScheduler(self.broker, [SellerScheduleSource(self)])

    def __repr__(self) -> str:
        return f"Fleet(schema={self.schema!r}, directory={self.directory!r})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Fleet:
        """A fleet configured from ``SPAPI_FLEET_*`` variables (see the package's doc)."""
        from ._env import options_from_env

        return cls(**{**options_from_env(os.environ if environ is None else environ), **overrides})

    def check_can_sync(self) -> None:
        """Raise a ValueError naming what a worker or scheduler of this fleet lacks.

        Reading the status needs neither; syncing needs the LWA app's credentials and
        (with the default directory) the directory key.  Workers check this before they
        take a task.
        """
        if not self._client_id or not self._client_secret:
            raise ValueError(
                "client_id, client_secret: give the LWA app's, or set SPAPI_CLIENT_ID and "
                "SPAPI_CLIENT_SECRET (workers sign in as the app)"
            )
        self._check_directory_key()

    def _check_directory_key(self) -> None:
        if self._keyless:
            raise ValueError(
                "directory_key: required to sync or add sellers with the default directory "
                "(their refresh tokens are sealed with it); make one with "
                "DirectoryKey.generate()"
            )

    # --- sellers ----------------------------------------------------------------------

    async def add_seller(
        self,
        seller_id: str,
        refresh_token: str,
        marketplace_ids: Sequence[str],
        *,
        region: Region | str = Region.NA,
        enabled: bool = True,
    ) -> Seller:
        """Add a seller to the directory, or update it (a new token clears a refusal)."""
        self._check_directory_key()
        seller = Seller(
            seller_id=seller_id,
            refresh_token=refresh_token,
            marketplace_ids=marketplace_ids,
            region=region,
            enabled=enabled,
        )
        put = getattr(self.directory, "put", None)
        if put is None:
            raise TypeError(f"{self.directory!r} cannot add sellers (it has no put method)")
        await put(seller)
        return seller

    async def clear_refusal(self, seller_id: str) -> bool:
        """Sync the seller again although its current token was refused; whether it was.

        (To sync it with a new token instead, :meth:`add_seller` it again: the new token
        clears the refusal.)
        """
        resources = await self._ready()
        return await resources.status.clear_refusal(seller_id)

    async def due_seller_ids(self) -> list[str]:
        """The directory's sellers, less those whose current token Amazon refused."""
        resources = await self._ready()
        ids = await self.directory.seller_ids()
        refused = await resources.status.refused_tokens(ids)
        due = []
        for seller_id in ids:
            mark = refused.get(seller_id)
            if mark is not None:
                seller = await self.directory.get(seller_id)
                if seller is None or token_fingerprint(seller.refresh_token) == mark:
                    continue
            due.append(seller_id)
        return due

    # --- sending tasks ------------------------------------------------------------------

    async def mark_queued(self, seller_id: str) -> bool:
        """Mark the seller queued unless it is running or queued; whether it was.

        A seller stays marked as long as its task waits in the queue, however long that
        is; once the task starts (or is lost with Redis's data) it can be sent again.
        """
        resources = await self._ready()
        return await resources.locks.mark_queued(seller_id)

    def mark_labels(self, seller_id: str) -> dict[str, str]:
        """The labels a task for the seller is sent with (its queued mark's key)."""
        return {MARK_LABEL: SellerLocks.queued_key_of(self.key_prefix, seller_id)}

    async def enqueue(self, seller_id: str) -> bool:
        """Send the seller's sync task now, unless it is running or queued; whether sent."""
        if not await self.mark_queued(seller_id):
            return False
        try:
            if not self._broker_started and not self.broker.is_worker_process:
                await self.broker.startup()
                self._broker_started = True
            await (
                self.sync_seller.kicker().with_labels(**self.mark_labels(seller_id)).kiq(seller_id)
            )
        except BaseException:
            # Not sent: the mark must not hold the seller back until it expires.
            resources = await self._ready()
            with contextlib.suppress(RedisError):
                await resources.locks.unmark_queued(seller_id)
            raise
        return True

    async def enqueue_all(self) -> list[str]:
        """Send the task of every due seller not running or queued; the ids sent."""
        return [s for s in await self.due_seller_ids() if await self.enqueue(s)]

    # --- status -------------------------------------------------------------------------

    async def status(self) -> list[SellerStatus]:
        """Every seller of the directory, with what the fleet knows of its syncs.

        Bounded: should Redis not answer within ``redis_timeout``, the statuses come
        from PostgreSQL alone, with ``redis_unreachable`` set (running and queued then
        unknown).
        """
        resources = await self._ready()
        ids = await self.directory.seller_ids()
        try:
            running, queued = await resources.locks.running(ids)
        except RedisError:
            return await resources.status.read(ids, redis_unreachable=True)
        return await resources.status.read(ids, running=running, queued=queued)

    async def mirror_growth(
        self, *, window: timedelta = timedelta(hours=24), points: int = 60
    ) -> list[tuple[datetime, int]]:
        """The mirror's job count over the last ``window``: ``(moment, jobs)``, oldest first.

        Each job counts once, from its latest write (what the status page charts).
        """
        resources = await self._ready()
        return await resources.status.growth(window=window, points=points)

    # --- the task -----------------------------------------------------------------------

    def _task_function(self) -> Callable[[str], Awaitable[dict[str, Any]]]:
        # A plain function, not a bound method: taskiq renames what it registers.
        async def sync_seller(seller_id: str) -> dict[str, Any]:
            return (await self.run_seller(seller_id)).as_dict()

        return sync_seller

    async def run_seller(self, seller_id: str) -> SellerRun:
        """Sync one seller here and now, as a worker's ``sync_seller`` task does.

        Never raises for the seller's own failures (they are recorded in its status and
        returned): one seller's trouble never stops another's sync.  A cancellation goes
        through as it is.
        """
        self.check_can_sync()
        resources = await self._ready()
        with contextlib.suppress(RedisError):
            await resources.locks.unmark_queued(seller_id)
        seller = await self.directory.get(seller_id)
        if seller is None:
            return SellerRun(seller_id=seller_id, outcome="unknown")
        if not seller.enabled:
            return SellerRun(seller_id=seller_id, outcome="disabled")
        mark = (await resources.status.refused_tokens([seller_id])).get(seller_id)
        if mark is not None and mark == token_fingerprint(seller.refresh_token):
            return SellerRun(
                seller_id=seller_id,
                outcome="skipped",
                error="its refresh token was refused; update it to sync again",
            )
        started = _Started()
        try:
            async with resources.locks.hold(seller_id):
                return await self._sync(resources, seller, started)
        except SellerBusy:
            _log.info("seller %s: already being synced elsewhere; skipped", seller_id)
            return SellerRun(seller_id=seller_id, outcome="busy")
        except LeaseLost as exc:
            return SellerRun(
                seller_id=seller_id, outcome="lost", error=str(exc), fencing_token=started.token
            )
        except RedisError as exc:
            error = describe_error(exc)
            _log.warning("seller %s: could not take its lock: %s", seller_id, error)
            return SellerRun(seller_id=seller_id, outcome="failed", error=error)

    async def _sync(self, resources: _Resources, seller: Seller, started: _Started) -> SellerRun:
        seller_id = seller.seller_id
        worker = f"{socket.gethostname()}:{os.getpid()}"
        try:
            token = started.token = await resources.status.started(seller_id, worker)
        except Exception as exc:  # PostgreSQL away past its reconnect time
            error = describe_error(exc)
            _log.warning("seller %s: could not start its sync: %s", seller_id, error)
            return SellerRun(seller_id=seller_id, outcome="failed", error=error)
        plan = _CountingPlan(resources.plan)
        try:
            async with self._client(resources, seller, plan) as client:
                sink = PostgresSink(
                    resources.pool,
                    seller_id=seller_id,
                    schema=self.schema,
                    buyer_key=self.buyer_key,
                    fencing_token=token,
                    reconnect_timeout=self.reconnect_timeout,
                )
                report = await sync_jobs(
                    client,
                    sink,
                    since=datetime.now(UTC) - self.history,
                    marketplace_ids=seller.marketplace_ids,
                    windows=self.windows,
                    buyer_data=self.buyer_data,
                    buyer_key=self.buyer_key,
                )
        except FencedOut as exc:
            # Another sync holds the seller now: this one may write nothing, status included.
            _log.warning("seller %s: %s", seller_id, exc)
            return SellerRun(
                seller_id=seller_id,
                outcome="fenced",
                throttled=plan.throttled_count,
                error=str(exc),
                fencing_token=token,
            )
        except AuthenticationError as exc:
            if exc.error != "invalid_grant":
                return await self._failed(resources, seller_id, token, exc, plan)
            error = describe_refusal(exc)
            _log.warning("seller %s: refresh token refused; skipped until it changes", seller_id)
            await self._record(
                resources.status.failed(
                    seller_id,
                    token,
                    error,
                    state=SellerState.REFUSED,
                    throttled=plan.throttled_count,
                    refused_token=token_fingerprint(seller.refresh_token),
                ),
                seller_id,
            )
            return SellerRun(
                seller_id=seller_id, outcome="refused", error=error, fencing_token=token
            )
        except Exception as exc:
            return await self._failed(resources, seller_id, token, exc, plan)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await asyncio.shield(resources.status.interrupted(seller_id, token))
            raise
        await self._record(
            resources.status.succeeded(
                seller_id,
                token,
                jobs=report.jobs,
                requests=report.requests,
                throttled=plan.throttled_count,
            ),
            seller_id,
        )
        _log.info("seller %s: synced, %d jobs in %.1f s", seller_id, report.jobs, report.elapsed)
        return SellerRun(
            seller_id=seller_id,
            outcome="ok",
            jobs=report.jobs,
            requests=report.requests,
            throttled=plan.throttled_count,
            fencing_token=token,
        )

    async def _failed(
        self,
        resources: _Resources,
        seller_id: str,
        token: int,
        exc: Exception,
        plan: _CountingPlan,
    ) -> SellerRun:
        error = describe_error(exc)
        _log.warning("seller %s: sync failed: %s", seller_id, error)
        _log.debug("seller %s: the sync's failure", seller_id, exc_info=exc)
        await self._record(
            resources.status.failed(seller_id, token, error, throttled=plan.throttled_count),
            seller_id,
        )
        return SellerRun(
            seller_id=seller_id,
            outcome="failed",
            throttled=plan.throttled_count,
            error=error,
            fencing_token=token,
        )

    @staticmethod
    async def _record(write: Awaitable[bool], seller_id: str) -> None:
        """Write a run's outcome to its status; a failure to do so is logged, not raised."""
        try:
            if not await write:
                _log.warning(
                    "seller %s: another sync has taken the seller over since this one "
                    "started; its outcome is not recorded",
                    seller_id,
                )
        except Exception as exc:
            _log.warning(
                "seller %s: could not record the sync's outcome: %s", seller_id, describe_error(exc)
            )

    def _client(self, resources: _Resources, seller: Seller, plan: UsagePlan) -> ServicesClient:
        return ServicesClient(
            LwaCredentials(self._client_id, self._client_secret, seller.refresh_token),
            region=seller.region,
            sandbox=self._sandbox,
            endpoint=self._endpoint,
            token_url=self._token_url,
            marketplace_id=seller.marketplace_ids[0],
            session=resources.session,
            rate_limits=plan,
            seller=seller.seller_id,
            token_cache=resources.tokens,
        )

    # --- running processes ----------------------------------------------------------------

    def run_worker(
        self,
        *,
        workers: int = 1,
        max_async_tasks: int = 50,
        log_level: str = "INFO",
        wait_tasks_timeout: float | None = None,
        shutdown_timeout: float = 5.0,
    ) -> int | None:
        """Run taskiq worker processes for this fleet (blocks until they stop).

        Each process syncs up to ``max_async_tasks`` sellers at once.  The processes are
        forked from this one (as taskiq does on Linux); elsewhere, or to run a worker
        under taskiq's own command, point it at a module that builds the fleet, such as
        ``taskiq worker spapi_services.fleet.env:broker`` (configured by ``SPAPI_FLEET_*``).

        On SIGTERM or SIGINT a worker takes no new task and lets its running syncs
        finish, for at most ``wait_tasks_timeout`` seconds (default: as long as they
        take); a sync still running then is left unacknowledged, and another worker
        resumes it from its checkpoint after ``idle_timeout``.  ``shutdown_timeout``
        bounds the closing of the queue's connections after that.
        """
        from taskiq.cli.worker.args import WorkerArgs
        from taskiq.cli.worker.run import run_worker

        self.check_can_sync()
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers: must be a whole number of at least 1, got {workers!r}")
        if wait_tasks_timeout is not None:
            _positive("wait_tasks_timeout", wait_tasks_timeout)
        _positive("shutdown_timeout", shutdown_timeout)
        options = [
            "spapi_services.fleet.env:broker",
            "--workers", str(workers),
            "--max-async-tasks", str(max_async_tasks),
            "--log-level", log_level,
            "--shutdown-timeout", str(shutdown_timeout),
        ]  # fmt: skip
        if wait_tasks_timeout is not None:
            options += ["--wait-tasks-timeout", str(wait_tasks_timeout)]
        args = WorkerArgs.from_cli(options)
        args.broker = self.broker  # type: ignore[assignment]  # taskiq takes a broker too
        return run_worker(args)

    def run_scheduler(self, *, log_level: str = "INFO", update_interval: int = 60) -> None:
        """Run taskiq's scheduler for this fleet (blocks until stopped).

        Each seller's task is sent every ``interval`` (but never while the seller is
        running or queued); the list of sellers is read again every ``update_interval``
        seconds.  Run one scheduler per fleet.
        """
        from taskiq.cli.scheduler.args import SchedulerArgs
        from taskiq.cli.scheduler.run import run_scheduler

        self._check_directory_key()
        args = SchedulerArgs.from_cli(
            [
                "spapi_services.fleet.env:scheduler",
                "--log-level", log_level,
                "--update-interval", str(update_interval),
            ]
        )  # fmt: skip
        args.scheduler = self.scheduler
        asyncio.run(run_scheduler(args))

    # --- resources ----------------------------------------------------------------------

    async def _ready(self) -> _Resources:
        loop = asyncio.get_running_loop()
        if self._resources is not None and self._resources.loop is loop:
            return self._resources
        if self._opening is None or self._opening[0] is not loop:
            self._opening = (loop, asyncio.Lock())
        async with self._opening[1]:  # the first caller opens; the others wait for it
            if self._resources is not None and self._resources.loop is loop:
                return self._resources
            self._resources = await self._open(loop)
        return self._resources

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Resources:
        pool = await connect_pool(
            self.database_url,
            # No floor: asyncpg would keep restoring it (with a traceback in the log)
            # while the database restarts; connections are made as syncs need them.
            min_size=0,
            max_size=self._pool_size,
            command_timeout=_COMMAND_TIMEOUT,
            server_settings=_SESSION,
        )
        try:
            await migrate_all(pool, self.schema)
        except BaseException:
            await pool.close()
            raise
        # One link to Redis for the whole process, every call through it bounded: the
        # locks and marks directly, the plans and tokens through their own fallbacks.
        link = RedisLink(
            self.redis_url,
            owner="Fleet",
            what="seller locks, queued marks, usage plans and access tokens",
            timeout=self.redis_timeout,
            retry_interval=1.0,
            on_outage=(
                "wait for it (plans and tokens fall back to this process; a sync whose "
                "lease cannot be renewed in time stops)"
            ),
        )
        return _Resources(
            loop=loop,
            pool=pool,
            link=link,
            plan=RedisRateLimits(link.client, key_prefix=self.key_prefix),
            tokens=RedisTokenCache(
                link.client, key_prefix=self.key_prefix, encryption_key=self._token_key
            ),
            session=aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0, limit_per_host=200)
            ),
            locks=SellerLocks(
                link, prefix=self.key_prefix, lease=self.lease, queue=self.broker.queue_name
            ),
            status=StatusBook(pool, self.schema, reconnect_timeout=self.reconnect_timeout),
        )

    async def _worker_startup(self, _state: Any) -> None:
        # A worker without credentials or key would fail every task: it fails at once.
        self.check_can_sync()

    async def _worker_shutdown(self, _state: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close what this process opened (connections, the HTTP session, the queue)."""
        resources, self._resources = self._resources, None
        if resources is not None and resources.loop is asyncio.get_running_loop():
            await resources.close()
        if self._broker_started:
            self._broker_started = False
            await self.broker.shutdown()
        aclose = getattr(self.directory, "aclose", None)
        if aclose is not None:
            await aclose()

    async def __aenter__(self) -> Fleet:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@attrs.define
class _Started:
    """The fencing token a run took, once it has started."""

    token: int | None = None


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ValueError(f"{name}: must be a positive number, got {value!r}")
    return float(value)
