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
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import attrs
from redis.exceptions import RedisError
from taskiq import AsyncTaskiqDecoratedTask, TaskiqEvents

from .._auth import LwaCredentials
from .._client import Region, ServicesClient
from .._ratelimit import UsagePlan
from ..errors import AuthenticationError, FencedOut
from ..redis import RedisRateLimits, RedisTokenCache
from ..redis._link import RedisLink, check_seconds
from ..sync import BUYER_DATA_CHOICES, BuyerData, BuyerKeyLike, PostgresSink, sync_jobs
from ..sync._buyer import as_keys
from ..sync._postgres import DEFAULT_SCHEMA, Pool, check_schema, connect_pool
from ..webhooks import (
    DEFAULT_TIMEOUT,
    AddressGuard,
    AttemptResult,
    NetworkLike,
    RetrySchedule,
    WebhookEndpoint,
    WebhookMessage,
    WebhookSecret,
    WebhookSecretLike,
    WebhookSender,
)
from ..webhooks._addresses import literal_address
from ._broker import MARK_LABEL, FleetBroker
from ._directory import PostgresSellerDirectory, Seller, SellerDirectory
from ._errors import describe_error, describe_refusal
from ._locks import LeaseLost, SellerBusy, SellerLocks
from ._relay import WebhookRelay
from ._schedule import SellerScheduler, SellerScheduleSource
from ._schema import migrate_all
from ._secrets import DirectoryKey, token_fingerprint
from ._status import SellerState, SellerStatus, StatusBook
from ._webhooks import WebhookBook, WebhookStatus, new_endpoint_id

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
    ``changes`` counts the jobs stored that were changes (each recorded in the outbox).
    """

    seller_id: str
    outcome: str
    jobs: int = 0
    changes: int = 0
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
    book: WebhookBook

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
    :param relay_webhooks: whether each worker process delivers the outbox's changes to
        the webhook endpoints (see :meth:`set_webhook`).
    :param webhook_allow_networks: private networks webhook receivers may be on (every
        other private, loopback or link-local address is refused; see
        :class:`~spapi_services.webhooks.AddressGuard`).
    :param webhook_timeout: seconds one delivery attempt may take.
    :param webhook_schedule: when deliveries are tried again, and when given up.
    :param webhook_lease: seconds a worker holds a delivery it attempts; past it (the
        worker died) another worker takes it (default: ``webhook_timeout`` + 15).
    :param webhook_poll_interval: seconds between a worker's looks for retries due.
    :param outbox_retention: how long a change every endpoint has is kept, for
        ``redeliver``.
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
        relay_webhooks: bool = True,
        webhook_allow_networks: Iterable[NetworkLike] = (),
        webhook_timeout: float = DEFAULT_TIMEOUT,
        webhook_schedule: RetrySchedule | None = None,
        webhook_lease: float | None = None,
        webhook_poll_interval: float = 1.0,
        outbox_retention: timedelta = timedelta(days=7),
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
        self._directory_key: DirectoryKey | None = None
        if directory_key is not None:
            self._directory_key = (
                directory_key
                if isinstance(directory_key, DirectoryKey)
                else DirectoryKey(directory_key)
            )
        if directory is None:
            directory = PostgresSellerDirectory(
                database_url,
                key=directory_key,
                schema=schema,
                reconnect_timeout=self.reconnect_timeout,
            )
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
        self.relay_webhooks_enabled = bool(relay_webhooks)
        self.webhook_guard = AddressGuard(webhook_allow_networks)
        _positive("webhook_timeout", webhook_timeout)
        self.webhook_timeout = float(webhook_timeout)
        self.webhook_schedule = webhook_schedule or RetrySchedule()
        self.webhook_lease = (
            self.webhook_timeout + 15.0
            if webhook_lease is None
            else _positive("webhook_lease", webhook_lease)
        )
        if self.webhook_lease <= self.webhook_timeout:
            raise ValueError(
                f"webhook_lease: must be longer than webhook_timeout "
                f"({self.webhook_timeout:g} s), so a delivery under way is never taken by "
                f"another worker, got {webhook_lease!r}"
            )
        self.webhook_poll_interval = _positive("webhook_poll_interval", webhook_poll_interval)
        if not isinstance(outbox_retention, timedelta) or outbox_retention < timedelta(0):
            raise ValueError("outbox_retention: must be a timedelta of zero or more")
        self.outbox_retention = outbox_retention
        self._relay_task: asyncio.Task[None] | None = None
        self.relay: WebhookRelay | None = None
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
        self.scheduler = SellerScheduler(self.broker, [SellerScheduleSource(self)])

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
            with contextlib.suppress(RedisError):
                await self.mark_unsent(seller_id)
            raise
        return True

    async def mark_unsent(self, seller_id: str) -> None:
        """Free the seller for the next send after a send that failed (its queued mark is
        cleared if it still says "being sent"; one naming a queued task stays)."""
        resources = await self._ready()
        await resources.locks.unmark_unsent(seller_id)

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
            changes=report.changes,
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

    # --- webhooks -------------------------------------------------------------------------

    async def set_webhook(
        self,
        url: str,
        *,
        secret: WebhookSecretLike | Iterable[WebhookSecretLike] | None = None,
        endpoint_id: str | None = None,
        seller_id: str | None = None,
        event_types: Iterable[str] | None = None,
        buyer_data: str = "keep",
    ) -> WebhookEndpoint:
        """Send the mirror's changes to ``url`` from now on (or change the endpoint
        ``endpoint_id``); the endpoint, its secret(s) in ``endpoint.secrets``.

        Each change the syncs store from then on is posted to it, signed with
        ``secret`` (a new random one if not given: give ``secrets[0].export()`` to the
        receiver; several while rotating).  ``seller_id`` limits it to one seller's
        changes, ``event_types`` to ``service_job.created`` or ``service_job.updated``;
        ``buyer_data`` is ``keep``, ``hash`` (with the fleet's ``buyer_key``) or ``drop``.
        The secret is sealed with the directory key before it is stored.  An address
        the workers would refuse (private, loopback...; see ``webhook_allow_networks``)
        is refused here, when it is an IP address.
        """
        self._check_webhook_address(url)
        chosen = WebhookSecret.generate() if secret is None else secret
        resources = await self._ready()
        return await resources.book.put(
            url,
            chosen,
            endpoint_id=endpoint_id or new_endpoint_id(),
            seller_id=seller_id,
            event_types=event_types,
            buyer_data=buyer_data,
        )

    def _check_webhook_address(self, url: str) -> None:
        from yarl import URL

        try:
            host = URL(str(url).strip()).host or ""
        except (TypeError, ValueError):
            return  # WebhookEndpoint names what is wrong with it
        address = literal_address(host)
        why = None if address is None else self.webhook_guard.refusal(address)
        if why is not None:
            raise ValueError(
                f"url: {host} is {why}, and the fleet's workers refuse such addresses; allow "
                "its network with webhook_allow_networks (SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS) "
                "if the receiver is meant to be there"
            )

    async def remove_webhook(self, endpoint_id: str) -> bool:
        """Stop sending to an endpoint and forget its deliveries; whether it was there."""
        resources = await self._ready()
        return await resources.book.remove(endpoint_id)

    async def webhooks(self) -> list[WebhookStatus]:
        """Every endpoint and how its deliveries go (needs no secret)."""
        resources = await self._ready()
        return await resources.book.status()

    async def outbox_backlog(self) -> int:
        """Changes stored that the workers have not handed to the endpoints yet."""
        resources = await self._ready()
        return await resources.book.backlog()

    async def test_webhook(self, endpoint_id: str) -> AttemptResult:
        """Post a signed ``webhook.test`` message to an endpoint now, from this process;
        what came of it (nothing is recorded or retried)."""
        resources = await self._ready()
        endpoint = await resources.book.endpoint(endpoint_id)
        if endpoint is None:
            raise ValueError(f"endpoint_id: no webhook endpoint {endpoint_id!r}")
        message = WebhookMessage(
            type="webhook.test",
            timestamp=datetime.now(UTC),
            data={"endpointId": endpoint.id, "note": "a test from spapi-services fleet"},
            seller_id=endpoint.seller_id,
        )
        async with self.webhook_sender() as sender:
            return await sender.attempt(endpoint, message.id, message.body())

    async def redeliver(
        self,
        *,
        endpoint_id: str | None = None,
        dead: bool = False,
        message_ids: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
        seller_id: str | None = None,
    ) -> int:
        """Send changes again with their ``webhook-id``; how many deliveries (see
        :meth:`WebhookBook.redeliver <spapi_services.fleet._webhooks.WebhookBook.redeliver>`):
        the dead letters (``dead``), some changes by ``webhook-id``, or every change
        recorded from ``since`` (to ``until``) that is still in the outbox; to one
        endpoint or all, for one seller or all."""
        resources = await self._ready()
        return await resources.book.redeliver(
            endpoint_id=endpoint_id,
            dead=dead,
            message_ids=message_ids,
            since=since,
            until=until,
            seller_id=seller_id,
        )

    def webhook_sender(self) -> WebhookSender:
        """A sender of this fleet's attempts (its timeout and allowed networks)."""
        return WebhookSender(
            timeout=self.webhook_timeout, allow_networks=self.webhook_guard.allowed
        )

    async def relay_webhooks(self) -> None:
        """Deliver the outbox's changes to the endpoints from this process, until
        cancelled (what each worker process does; see :mod:`spapi_services.fleet._relay`)."""
        resources = await self._ready()
        async with self.webhook_sender() as sender:
            self.relay = WebhookRelay(
                resources.pool,
                self.database_url,
                resources.book,
                sender=sender,
                schedule=self.webhook_schedule,
                lease=self.webhook_lease,
                worker=f"{socket.gethostname()}:{os.getpid()}",
                buyer_keys=as_keys(self.buyer_key),
                poll_interval=self.webhook_poll_interval,
                retention=self.outbox_retention,
                reconnect_timeout=self.reconnect_timeout,
            )
            await self.relay.run()

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
            book=WebhookBook(
                pool,
                self.schema,
                self._directory_key,
                buyer_key=self.buyer_key,
                reconnect_timeout=self.reconnect_timeout,
            ),
        )

    async def _worker_startup(self, _state: Any) -> None:
        # A worker without credentials or key would fail every task: it fails at once.
        self.check_can_sync()
        if self.relay_webhooks_enabled:
            if self._directory_key is None:
                _log.warning(
                    "webhooks: this worker delivers none (the directory key, which opens "
                    "the endpoints' secrets, is not set)"
                )
            else:
                self._relay_task = asyncio.get_running_loop().create_task(self._relay_forever())

    async def _relay_forever(self) -> None:
        """A worker's relay, started again after a failure (PostgreSQL away at start)."""
        while True:
            try:
                await self.relay_webhooks()
            except Exception as exc:
                _log.warning("webhooks: the relay stopped (%s); starting it again in 5 s", exc)
                await asyncio.sleep(5)

    async def _worker_shutdown(self, _state: Any) -> None:
        task, self._relay_task = self._relay_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
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
