"""The sync's guards: no checkpoint in the future, and no blocking call on the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.sync import SqliteSink, sync_jobs
from spapi_services.sync._plan import Mode, SyncPlan

from .conftest import US


def statuses(path: Path) -> dict[str, str]:
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT service_job_id, status FROM service_jobs"))
    finally:
        db.close()


# On the machine's clock, as a user's emulator would be: "the present" is the sync's own.
@pytest.mark.emulator(at=None)
async def test_a_future_until_is_clamped_so_the_next_run_misses_nothing(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.sqlite"
    since = datetime.now(UTC) - timedelta(days=95)
    report = await sync_jobs(
        client, SqliteSink(db), since=since, until=datetime.now(UTC) + timedelta(days=30)
    )
    assert report.runs[0].end <= datetime.now(UTC)  # the checkpoint is the present, at most

    # A job changes after the first run; the second run must find it.
    job = next(j for j in emulator.store.find_jobs(marketplace_id=US) if j.status == "NOT_SERVICED")
    await client.service_jobs.complete(job.service_job_id)
    later = await sync_jobs(client, SqliteSink(db))
    assert later.runs[0].mode == "updated"
    assert statuses(db)[job.service_job_id] == "COMPLETED"


async def test_closing_a_sink_does_not_hold_up_the_event_loop(tmp_path: Path) -> None:
    """A write stuck on SQLite's lock (another process holds it) then a close: the close
    waits for the write on the sink's thread, and the loop goes on turning meanwhile."""
    db = tmp_path / "jobs.sqlite"
    sink = SqliteSink(db)
    await sink.open()
    await sink.state(US)  # the mirror exists, in WAL mode
    other = sqlite3.connect(db, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process is writing
    now = datetime.now(UTC)
    plan = SyncPlan.new(
        scope=US, mode=Mode.CREATED, start=now - timedelta(days=1), end=now, windows=1
    )
    writing = asyncio.create_task(sink.begin(plan))
    await asyncio.sleep(0.05)  # on the sink's thread, waiting for the lock
    writing.cancel()  # as a sync stopped by Ctrl-C would
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    asyncio.get_running_loop().call_later(0.3, other.rollback)  # the other writer finishes
    started = time.monotonic()
    try:
        await sink.close()
    finally:
        ticker.cancel()
        other.close()
        await asyncio.gather(writing, ticker, return_exceptions=True)
    assert time.monotonic() - started < 4  # done soon after the lock was given back
    assert ticks >= 10  # the loop kept turning while the sink waited
