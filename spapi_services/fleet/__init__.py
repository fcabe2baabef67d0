"""Many sellers, many workers: every seller's service jobs mirrored into one PostgreSQL.

``pip install "spapi-services[fleet]"`` (taskiq with its Redis broker, asyncpg, redis-py).
Build the same :class:`Fleet` in every process::

    from spapi_services.fleet import Fleet

    fleet = Fleet(
        redis_url="redis://cache:6379/0",
        database_url="postgresql://sync@db/mirror",
        directory_key=os.environ["SPAPI_FLEET_DIRECTORY_KEY"],  # seals refresh tokens
        token_key=base64.b64decode(os.environ["SPAPI_FLEET_TOKEN_KEY"]),  # seals access tokens
        interval=timedelta(minutes=15),
    )

    await fleet.add_seller("A1B2C3D4", refresh_token, ["ATVPDKIKX0DER"])  # any process
    fleet.run_worker(workers=2)   # on each worker host: syncs sellers as tasks arrive
    fleet.run_scheduler()         # once: sends every seller's task every interval
    await fleet.enqueue_all()     # or send them now
    for seller in await fleet.status():
        print(seller.seller_id, seller.state, seller.lag, seller.jobs, seller.throttled)

The LWA app's client id and secret come from ``SPAPI_CLIENT_ID`` and
``SPAPI_CLIENT_SECRET`` (or ``client_id=``, ``client_secret=``); each seller brings its own
refresh token and marketplaces.  :meth:`Fleet.from_env` reads every option from
``SPAPI_FLEET_*`` variables (``REDIS_URL``, ``DATABASE_URL``, ``DIRECTORY_KEY``,
``TOKEN_KEY`` (base64), ``INTERVAL_MINUTES``, ``HISTORY_DAYS``, ``LEASE_SECONDS``,
``IDLE_TIMEOUT_SECONDS``, ``RECLAIM_INTERVAL_SECONDS``, ``WINDOWS``, ``BUYER_DATA``,
``BUYER_KEY``, ``ENDPOINT``, ``TOKEN_URL``, ``SCHEMA``, ``KEY_PREFIX``, ``QUEUE``,
``POOL_SIZE``, ``REDIS_TIMEOUT_SECONDS``, ``RECONNECT_TIMEOUT_SECONDS``), and
:mod:`spapi_services.fleet.env` builds that fleet for taskiq's own commands
(``taskiq worker spapi_services.fleet.env:broker``).

How it holds together:

* **The queue** is a Redis stream read by a consumer group (:class:`FleetBroker`, a
  taskiq-redis ``RedisStreamBroker``).  A task is acknowledged after it ran; a worker
  that dies leaves its tasks pending, and another worker takes them over once they have
  been silent for ``idle_timeout``.
* **One sync per seller at a time**: a task first takes the seller's lock in Redis, a
  lease renewed while it runs and released by its owner only (:class:`SellerLocks`).  A
  duplicate or re-delivered task finds it held and skips (outcome ``busy``); a sync
  that cannot renew its lease in time (by its own monotonic clock) is stopped before
  the lock can expire (outcome ``lost``).  The sync itself resumes from the seller's
  checkpoint and unfinished run in PostgreSQL (:class:`~spapi_services.sync.PostgresSink`),
  so a task taken over from a dead worker repeats no stored page.
* **Fencing**: each sync takes the seller's next fencing token in PostgreSQL as it
  starts, and every write of the sync is conditional on it staying the latest: a sync
  that lost its lease unawares (paused, or cut off from Redis) and wakes after another
  took the seller gets :class:`~spapi_services.FencedOut` (outcome ``fenced``) and
  writes nothing.
* **Faults**: every Redis call is bounded; workers outlive Redis restarts (the queue's
  listener reconnects and recreates its consumer group) and PostgreSQL restarts (a
  statement is tried again on a new connection, within ``reconnect_timeout``).
* **Pacing**: every worker paces each seller on that seller's usage plans in Redis
  (``RedisRateLimits``), and shares its access token (``RedisTokenCache``): one process or
  twenty, Amazon sees the plan.
* **The schedule** (:class:`SellerScheduleSource` under taskiq's scheduler) sends each
  seller's task every ``interval``, skipping a seller still running or queued.
* **Refused credentials**: a seller whose refresh token Amazon refuses (``invalid_grant``)
  is marked ``refused`` and skipped until its token changes (``add_seller`` again with
  the new one) or :meth:`Fleet.clear_refusal`.  Any seller's failure is recorded and
  never stops another's sync.
* **Status** lives in PostgreSQL (``fleet_status``) beside the mirror:
  :meth:`Fleet.status` gives each seller's :class:`SellerStatus` (state, last success,
  lag, jobs, 429s, last error, running or queued right now).
* **Webhooks**: every change a sync stores goes, in the same transaction, into the
  mirror's outbox; each worker process also runs a :class:`WebhookRelay` that delivers
  the outbox to the endpoints set with :meth:`Fleet.set_webhook` (signed as Standard
  Webhooks, ``webhook-id`` stable per change, retried over days, then dead-lettered;
  :meth:`Fleet.redeliver` sends again).  A killed worker loses no delivery: another
  takes it once its lease runs out.  :meth:`Fleet.webhooks` tells how each endpoint is
  doing.
* **Sellers** come from a :class:`SellerDirectory`: by default
  :class:`PostgresSellerDirectory` (table ``fleet_sellers``, refresh tokens sealed with
  AES-256-GCM under ``directory_key``); or any object with ``seller_ids()`` and
  ``get(seller_id)`` over your own store.
"""

from __future__ import annotations

try:
    import asyncpg  # noqa: F401
    import taskiq  # noqa: F401
    import taskiq_redis  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess
    if not (exc.name or "").startswith(("asyncpg", "taskiq")):
        raise
    from .._extras import missing_extra_message

    raise ImportError(
        missing_extra_message("fleet", "spapi_services.fleet (taskiq, taskiq-redis and asyncpg)")
    ) from exc

from ._broker import FleetBroker
from ._directory import MemorySellerDirectory, PostgresSellerDirectory, Seller, SellerDirectory
from ._fleet import SYNC_TASK, Fleet, SellerRun
from ._locks import LeaseLost, SellerBusy, SellerLocks
from ._relay import RelayStats, WebhookRelay
from ._schedule import SellerScheduleSource
from ._secrets import DirectoryKey, DirectoryKeyError
from ._status import SellerState, SellerStatus
from ._webhooks import WebhookBook, WebhookStatus

__all__ = [
    "SYNC_TASK",
    "DirectoryKey",
    "DirectoryKeyError",
    "Fleet",
    "FleetBroker",
    "LeaseLost",
    "MemorySellerDirectory",
    "PostgresSellerDirectory",
    "RelayStats",
    "Seller",
    "SellerBusy",
    "SellerDirectory",
    "SellerLocks",
    "SellerRun",
    "SellerScheduleSource",
    "SellerState",
    "SellerStatus",
    "WebhookBook",
    "WebhookRelay",
    "WebhookStatus",
]
