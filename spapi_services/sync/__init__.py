"""Bulk sync: mirror every service job of a marketplace into SQLite or JSON Lines.

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
"""

from ._engine import (
    DEFAULT_OVERLAP,
    DEFAULT_WINDOWS,
    RunSummary,
    SyncProgress,
    SyncReport,
    sync_jobs,
)
from ._jsonl import JsonlSink
from ._plan import Mode, SyncPlan, Window
from ._sink import Sink, SinkState
from ._sqlite import SqliteSink

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_WINDOWS",
    "JsonlSink",
    "Mode",
    "RunSummary",
    "Sink",
    "SinkState",
    "SqliteSink",
    "SyncPlan",
    "SyncProgress",
    "SyncReport",
    "Window",
    "sync_jobs",
]
