"""Bulk sync: mirror every service job of a marketplace into SQLite, JSON Lines or PostgreSQL.

::

    from spapi_services.sync import SqliteSink, sync_jobs

    async with ServicesClient(marketplace_id="ATVPDKIKX0DER") as client:
        report = await sync_jobs(client, SqliteSink("jobs.sqlite"), since=since)

The first run fetches the jobs created since ``since``; each later run fetches only what
changed since the previous one, and upserts it.  The time range is cut into windows paged
through concurrently, paced together by the client's getServiceJobs bucket, so the run
goes as fast as the usage plan allows and no faster.  Progress is stored with the jobs,
page by page: a run that stops for any reason resumes next time, losing and repeating
nothing.  See :func:`sync_jobs`.

Buyers' personal data (see :data:`PERSONAL_FIELDS`) is stored as ``sync_jobs``'
``buyer_data`` says: kept, encrypted with a :class:`BuyerKey`, replaced by keyed hashes,
or dropped.  The files are readable by their owner only.  The sinks read jobs back
(``iter_jobs``, ``get``), remove closed jobs past their time (``prune``), erase a buyer
(``forget_buyer``) and rotate keys (``rewrite_buyer_data``)::

    key = BuyerKey.from_text(os.environ["MIRROR_KEY"])
    async with SqliteSink("jobs.sqlite", buyer_key=key) as mirror:
        await sync_jobs(client, mirror, since=since, buyer_data="encrypt")
        await mirror.prune(older_than=timedelta(days=365))

:class:`PostgresSink` keeps many sellers' mirrors in one PostgreSQL database, each row
keyed by the seller (asyncpg, from the ``postgres`` extra); the fleet
(:mod:`spapi_services.fleet`) syncs every seller into it from worker processes.
"""

from ..errors import FencedOut
from ._buyer import (
    BUYER_DATA_CHOICES,
    CLOSED_STATUSES,
    PERSONAL_FIELDS,
    BuyerData,
    BuyerKey,
    BuyerKeyError,
    BuyerKeyLike,
    BuyerKeys,
    last_activity,
)
from ._engine import (
    DEFAULT_OVERLAP,
    DEFAULT_WINDOWS,
    ChangeCallback,
    RunSummary,
    SyncProgress,
    SyncReport,
    sync_jobs,
)
from ._jsonl import JsonlSink
from ._plan import Mode, SyncPlan, Window
from ._postgres import PostgresSink, outbox_channel
from ._sink import ChangeSink, MirrorSink, PageWrite, RewriteReport, Sink, SinkState
from ._sqlite import SqliteSink

__all__ = [
    "BUYER_DATA_CHOICES",
    "CLOSED_STATUSES",
    "DEFAULT_OVERLAP",
    "DEFAULT_WINDOWS",
    "PERSONAL_FIELDS",
    "BuyerData",
    "BuyerKey",
    "BuyerKeyError",
    "BuyerKeyLike",
    "BuyerKeys",
    "ChangeCallback",
    "ChangeSink",
    "FencedOut",
    "JsonlSink",
    "MirrorSink",
    "Mode",
    "PageWrite",
    "PostgresSink",
    "RewriteReport",
    "RunSummary",
    "Sink",
    "SinkState",
    "SqliteSink",
    "SyncPlan",
    "SyncProgress",
    "SyncReport",
    "Window",
    "last_activity",
    "outbox_channel",
    "sync_jobs",
]
