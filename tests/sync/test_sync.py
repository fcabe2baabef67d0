"""The bulk sync against the emulator: complete, incremental, resumable, and within the plan."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from spapi_services import RateLimits, RetryPolicy, ServicesClient, ServiceUnavailableError
from spapi_services.emulator import ServicesEmulator
from spapi_services.sync import (
    JsonlSink,
    SqliteSink,
    SyncProgress,
    SyncReport,
    sync_jobs,
)
from spapi_services.sync._plan import split

from .conftest import ALL_MARKETPLACES, SINCE, US


def rows(path: Path) -> dict[str, tuple[str, str, str]]:
    """``service_job_id -> (status, synced_at, job JSON)`` from a SQLite mirror."""
    db = sqlite3.connect(path)
    try:
        return {
            r[0]: (r[1], r[2], r[3])
            for r in db.execute("SELECT service_job_id, status, synced_at, job FROM service_jobs")
        }
    finally:
        db.close()


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ids_of(emu: ServicesEmulator, marketplace: str | None = None) -> set[str]:
    return {
        j.service_job_id
        for j in emu.store.jobs.values()
        if marketplace is None or j.marketplace_id == marketplace
    }


async def sync(
    emu: ServicesEmulator, client: ServicesClient, sink: Any, **options: Any
) -> SyncReport:
    """``sync_jobs`` up to now on the emulator's clock (its world is at a fixed moment)."""
    return await sync_jobs(client, sink, until=emu.clock.now(), **options)


class Boom(Exception):
    """Stands for a crash in the middle of a sync."""


def crash_after(pages: int) -> Callable[[SyncProgress], None]:
    def on_progress(p: SyncProgress) -> None:
        if p.pages >= pages:
            raise Boom(f"crashed after {p.pages} pages")

    return on_progress


# --- a first sync -----------------------------------------------------------------------


async def test_first_sync_mirrors_every_job_of_every_marketplace(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.sqlite"
    report = await sync(
        emulator, client, SqliteSink(db), since=SINCE, marketplace_ids=ALL_MARKETPLACES
    )

    mirrored = rows(db)
    assert set(mirrored) == ids_of(emulator)
    assert len(mirrored) == 150
    assert report.jobs == 150
    assert {r.mode for r in report.runs} == {"created"}
    assert not report.resumed
    # Each row holds the job as the API sent it, and the indexed columns agree with it.
    for job_id, (status, _, text) in mirrored.items():
        record = emulator.store.jobs[job_id]
        job = json.loads(text)
        assert job["serviceJobId"] == job_id
        assert status == job["serviceJobStatus"] == record.status
        assert job["marketplaceId"] == record.marketplace_id
    db_conn = sqlite3.connect(db)
    try:
        stores = db_conn.execute(
            "SELECT count(*) FROM service_jobs WHERE store_id IS NULL OR create_time IS NULL"
        ).fetchone()[0]
        left = db_conn.execute("SELECT count(*) FROM sync_windows").fetchone()[0]
        checkpoints = db_conn.execute("SELECT count(*) FROM sync_checkpoints").fetchone()[0]
    finally:
        db_conn.close()
    assert stores == 0
    assert left == 0  # a finished run leaves no windows behind
    assert checkpoints == len(ALL_MARKETPLACES)


@pytest.mark.emulator(jobs=600)
async def test_a_large_range_is_cut_into_windows_fetched_together(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    emulator.faults.set("getServiceJobs", latency=0.02)
    seen: list[SyncProgress] = []
    report = await sync(
        emulator,
        client,
        SqliteSink(tmp_path / "j.sqlite"),
        since=SINCE,
        windows=6,
        on_progress=seen.append,
    )
    us = ids_of(emulator, US)
    assert set(rows(tmp_path / "j.sqlite")) == us
    assert report.windows == 6
    # One request sized the range; every page after it was stored; each window, of
    # several pages, was checked once (its first page again) and nothing moved.
    assert report.checks == 6
    assert report.repeated == 0
    assert report.requests == report.pages + report.checks + 1
    assert emulator.count("getServiceJobs") == report.requests
    # Progress only moves forward and ends complete.
    assert [p.jobs for p in seen] == sorted(p.jobs for p in seen)
    assert seen[-1].jobs == seen[-1].expected == len(us)
    assert seen[-1].windows_done == seen[-1].windows == 6


async def test_a_small_range_takes_one_request(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    since = emulator.clock.now() - timedelta(days=1, hours=12)
    expected = {
        j.service_job_id
        for j in emulator.store.jobs.values()
        if j.marketplace_id == US and j.created >= since
    }
    assert 0 < len(expected) <= 20
    report = await sync(emulator, client, SqliteSink(tmp_path / "j.sqlite"), since=since)
    assert set(rows(tmp_path / "j.sqlite")) == expected
    assert report.requests == report.pages == 1


async def test_arguments_are_checked_before_anything_is_sent(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    sink = SqliteSink(tmp_path / "j.sqlite")
    with pytest.raises(ValueError, match="since: required for the first sync"):
        await sync_jobs(client, sink)
    with pytest.raises(ValueError, match="windows"):
        await sync_jobs(client, sink, since=SINCE, windows=0)
    with pytest.raises(ValueError, match="since"):
        await sync_jobs(client, sink, since=datetime(2026, 1, 1))  # naive
    with pytest.raises(ValueError, match=r"marketplace_ids\[1\]"):
        await sync_jobs(client, sink, since=SINCE, marketplace_ids=[US, US])
    with pytest.raises(TypeError, match="marketplace_ids"):
        await sync_jobs(client, sink, since=SINCE, marketplace_ids=US)
    assert emulator.count() == 0


# --- later syncs ------------------------------------------------------------------------


async def test_a_later_sync_fetches_only_what_changed(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.sqlite"
    await sync(emulator, client, SqliteSink(db), since=SINCE)
    before = rows(db)

    open_jobs = [
        j
        for j in emulator.store.find_jobs(marketplace_id=US)
        if j.status in ("PENDING_SCHEDULE", "HOLD")
    ]
    changed = {j.service_job_id for j in open_jobs[:3]}
    assert len(changed) == 3
    for job_id in changed:
        emulator.store.set_job_status(job_id, "CANCELLED")
    # One more change through the API itself.
    other = next(
        j.service_job_id
        for j in emulator.store.find_jobs(status="NOT_SERVICED", marketplace_id=US)
        if j.service_job_id not in changed
    )
    await client.service_jobs.complete(other)
    changed.add(other)

    report = await sync(emulator, client, SqliteSink(db), since=SINCE)
    after = rows(db)
    assert report.runs[0].mode == "updated"
    assert report.jobs == 4
    assert set(after) == set(before)
    touched = {job_id for job_id in after if after[job_id][1] != before[job_id][1]}
    assert touched == changed
    for job_id in changed:
        assert after[job_id][0] == emulator.store.jobs[job_id].status
        assert json.loads(after[job_id][2])["serviceJobStatus"] == after[job_id][0]
    # The next run starts from the checkpoint less five minutes.
    assert report.runs[0].start < report.runs[0].end - timedelta(minutes=4)


async def test_full_fetches_everything_again(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.sqlite"
    await sync(emulator, client, SqliteSink(db), since=SINCE)
    report = await sync(emulator, client, SqliteSink(db), since=SINCE, full=True)
    assert report.runs[0].mode == "created"
    assert report.jobs == len(ids_of(emulator, US)) == len(rows(db))


# --- interrupted syncs --------------------------------------------------------------------


@pytest.mark.emulator(jobs=500)
async def test_a_crash_midway_then_a_rerun_loses_and_duplicates_nothing(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.sqlite"
    with pytest.raises(Boom):
        await sync(
            emulator, client, SqliteSink(db), since=SINCE, windows=4, on_progress=crash_after(5)
        )
    partial = rows(db)
    assert 0 < len(partial) < len(ids_of(emulator, US))

    report = await sync(emulator, client, SqliteSink(db), since=SINCE, windows=4)
    assert report.resumed
    assert report.runs[0].mode == "created"
    assert set(rows(db)) == ids_of(emulator, US)
    # Only the pages not stored before were fetched.
    assert report.jobs == len(ids_of(emulator, US)) - len(partial)


@pytest.mark.emulator(jobs=500)
async def test_a_run_stopped_before_its_first_page_is_sized_again(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.sqlite"
    with pytest.raises(Boom):
        await sync(emulator, client, SqliteSink(db), since=SINCE, on_progress=crash_after(0))
    assert emulator.count() == 0

    report = await sync(emulator, client, SqliteSink(db), since=SINCE)
    assert report.resumed
    assert report.windows == 8  # cut up as a new run would be, not paged as one window
    assert set(rows(db)) == ids_of(emulator, US)


@pytest.mark.emulator(jobs=500)
async def test_a_network_fault_midway_then_a_rerun_resumes(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.jsonl"

    def fail_from_now_on(p: SyncProgress) -> None:
        if p.pages == 6:
            emulator.faults.set("getServiceJobs", error_rate=1.0, error_status=503)

    with pytest.raises(ServiceUnavailableError):
        await sync(emulator, client, JsonlSink(path), since=SINCE, on_progress=fail_from_now_on)
    written = lines(path)
    assert 0 < len(written) < len(ids_of(emulator, US))

    emulator.faults.clear()
    report = await sync(emulator, client, JsonlSink(path), since=SINCE)
    assert report.resumed
    ids = [str(job["serviceJobId"]) for job in lines(path)]
    assert len(ids) == len(set(ids)) == len(ids_of(emulator, US))
    assert set(ids) == ids_of(emulator, US)


@pytest.mark.emulator(jobs=500)
async def test_a_cancelled_sync_resumes(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.sqlite"
    emulator.faults.set("getServiceJobs", latency=0.01)
    enough = asyncio.Event()

    def on_progress(p: SyncProgress) -> None:
        if p.pages >= 4:
            enough.set()

    task = asyncio.create_task(
        sync(emulator, client, SqliteSink(db), since=SINCE, on_progress=on_progress)
    )
    await enough.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert 0 < len(rows(db)) < len(ids_of(emulator, US))

    await sync(emulator, client, SqliteSink(db), since=SINCE)
    assert set(rows(db)) == ids_of(emulator, US)


@pytest.mark.emulator(jobs=500)
async def test_jsonl_cuts_a_page_whose_checkpoint_was_never_saved(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.jsonl"
    with pytest.raises(Boom):
        await sync(emulator, client, JsonlSink(path), since=SINCE, on_progress=crash_after(3))
    # A crash between appending a page and saving the checkpoint leaves an uncounted tail.
    with path.open("ab") as log:
        log.write(b'{"serviceJobId":"half-written page"}\n{"serviceJob')

    await sync(emulator, client, JsonlSink(path), since=SINCE)
    ids = [str(job["serviceJobId"]) for job in lines(path)]
    assert len(ids) == len(set(ids))
    assert set(ids) == ids_of(emulator, US)
    checkpoint = json.loads((tmp_path / "jobs.jsonl.checkpoint.json").read_text())
    assert checkpoint["committed_bytes"] == path.stat().st_size
    assert set(checkpoint["scopes"][US]) == {"synced_until"}


@pytest.mark.emulator(jobs=500)
async def test_a_saved_page_token_the_api_refuses_restarts_its_window(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    db = tmp_path / "jobs.sqlite"
    with pytest.raises(Boom):
        await sync(emulator, client, SqliteSink(db), since=SINCE, on_progress=crash_after(3))
    conn = sqlite3.connect(db)
    try:
        with conn:
            changed = conn.execute(
                "UPDATE sync_windows SET page_token = 'expired' WHERE page_token IS NOT NULL"
            ).rowcount
    finally:
        conn.close()
    assert changed > 0

    await sync(emulator, client, SqliteSink(db), since=SINCE)
    assert set(rows(db)) == ids_of(emulator, US)
    assert emulator.count("getServiceJobs", 400) == changed


async def test_jsonl_later_runs_append_only_changed_jobs(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.jsonl"
    await sync(emulator, client, JsonlSink(path, durable=False), since=SINCE)
    first = len(lines(path))
    job_id = emulator.store.find_jobs(status="NOT_SERVICED", marketplace_id=US)[0].service_job_id
    emulator.store.set_job_status(job_id, "CANCELLED")

    await sync(emulator, client, JsonlSink(path, durable=False), since=SINCE)
    log = lines(path)
    assert len(log) == first + 1
    assert log[-1]["serviceJobId"] == job_id
    assert log[-1]["serviceJobStatus"] == "CANCELLED"


# --- pacing -------------------------------------------------------------------------------


@pytest.mark.emulator(jobs=1000, enforce_limits=True)
async def test_the_real_usage_plan_draws_no_429(emulator: ServicesEmulator, tmp_path: Path) -> None:
    """Well past the burst of 40, at Amazon's own 10 requests a second."""
    emulator.faults.set("getServiceJobs", latency=0.03)
    async with ServicesClient(
        emulator.credentials,
        endpoint=emulator.url,
        token_url=emulator.token_url,
        marketplace_id=US,
        retry=RetryPolicy(max_retries=0),  # a 429 would fail the sync outright
    ) as client:
        report = await sync(
            emulator,
            client,
            SqliteSink(tmp_path / "j.sqlite"),
            since=SINCE,
            marketplace_ids=ALL_MARKETPLACES,
        )
    assert report.requests > 50
    assert emulator.count("getServiceJobs", 429) == 0
    assert len(rows(tmp_path / "j.sqlite")) == 1000
    # Close to the bucket's bound: (requests - burst) / rate, plus a little.
    bound = (report.requests - 40) / 10
    assert report.elapsed < bound * 1.25 + 0.5


@pytest.mark.emulator(jobs=2000, enforce_limits=True, rate_scale=5.0)
async def test_the_client_follows_a_scaled_plan_without_a_429(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    async with ServicesClient(
        emulator.credentials,
        endpoint=emulator.url,
        token_url=emulator.token_url,
        marketplace_id=US,
        retry=RetryPolicy(max_retries=0),
        # At 50 requests a second the default headroom (2 tokens) absorbs 40 ms of
        # jitter; a loaded 2-core machine delays a send by more than that.  Ten tokens
        # (200 ms) keep the test about following the scaled rate, not about the load.
        rate_limits=RateLimits(headroom=10),
    ) as client:
        report = await sync(
            emulator,
            client,
            SqliteSink(tmp_path / "j.sqlite"),
            since=SINCE,
            marketplace_ids=ALL_MARKETPLACES,
        )
    assert report.requests > 80
    assert emulator.count("getServiceJobs", 429) == 0
    assert len(rows(tmp_path / "j.sqlite")) == 2000
    # Paced at the scaled rate the API reported (50/s), not at the published 10/s.
    assert (report.requests - 40) / 50 * 0.9 < report.elapsed < (report.requests - 40) / 10


# --- windows ------------------------------------------------------------------------------


def test_windows_cover_the_range_and_overlap_only_at_inner_edges() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(days=10)
    windows = split(start, end, 4)
    assert [w.index for w in windows] == [0, 1, 2, 3]
    assert windows[0].start == windows[0].query_start == start
    assert windows[-1].end == windows[-1].query_end == end
    for before, after in itertools.pairwise(windows):
        assert before.end == after.start
        assert before.query_end > after.query_start
    assert len(split(start, start + timedelta(milliseconds=3), 8)) == 3
    with pytest.raises(ValueError, match="after its start"):
        split(end, start, 2)


def test_windows_are_shared_in_proportion_to_size() -> None:
    from spapi_services.sync._engine import allocate

    assert allocate({"US": 100, "CA": 25, "MX": 25, "BR": 25, "CO": 25}, 8) == {
        "US": 4,
        "CA": 1,
        "MX": 1,
        "BR": 1,
        "CO": 1,
    }
    assert allocate({"US": 15}, 6) == {"US": 6}
    assert allocate({"US": 3, "CA": 2}, 8) == {"US": 3, "CA": 2}
    assert sum(allocate({"A": 10, "B": 10, "C": 10}, 8).values()) == 8
    assert allocate({"A": 1, "B": 1, "C": 50}, 2) == {"A": 1, "B": 1, "C": 1}
