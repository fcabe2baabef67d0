"""The sync is complete whatever the page tokens are, while the world moves under it.

The emulator pages with keyset cursors or offsets, creates jobs and moves statuses
between the sync's pages (a couple of changes per request, jobs of the window being
paged among them), and the mirror is compared with the emulator's store afterwards by
the tests' own queries: no job missing, none stale.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _emulators import NOW

from spapi_services import RetryPolicy, ServicesClient
from spapi_services.emulator import Activity, FakeClock, ServicesEmulator
from spapi_services.errors import BadRequestError
from spapi_services.sync import JsonlSink, SqliteSink, SyncProgress, SyncReport, sync_jobs
from spapi_services.sync._plan import CHECK_PENDING

from ._moving import Churn, Mirror, check_mirror, jsonl_ids_since, jsonl_mirror, sqlite_mirror
from .conftest import SINCE, US
from .test_sync import Boom

#: Changes a minute of emulator time; the churn moves it a second a request.
ACTIVITY = Activity(created_per_minute=30, updated_per_minute=150)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture(params=["keyset", "offset"])
def paging(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def moving(clock: FakeClock, paging: str) -> AsyncIterator[ServicesEmulator]:
    async with ServicesEmulator(
        jobs=400, seed=3, clock=clock, enforce_limits=False, page_tokens=paging, activity=ACTIVITY
    ) as emu:
        yield emu


@pytest.fixture
async def fast_client(moving: ServicesEmulator) -> AsyncIterator[ServicesClient]:
    async with ServicesClient(
        moving.credentials,
        endpoint=moving.url,
        token_url=moving.token_url,
        marketplace_id=US,
        retry=RetryPolicy(max_retries=0),
        rate_limits=False,
    ) as client:
        yield client


class Mirrors:
    """A sink of each kind over the same world, and their own readers."""

    def __init__(self, kind: str, folder: Path) -> None:
        self.kind = kind
        self.path = folder / ("jobs.sqlite" if kind == "sqlite" else "jobs.jsonl")

    def sink(self) -> Any:
        return SqliteSink(self.path) if self.kind == "sqlite" else JsonlSink(self.path)

    def read(self) -> Mirror:
        return sqlite_mirror(self.path) if self.kind == "sqlite" else jsonl_mirror(self.path)

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0


async def run(
    emu: ServicesEmulator, client: ServicesClient, mirrors: Mirrors, **options: Any
) -> tuple[SyncReport, Any]:
    start = emu.clock.now()
    offset = mirrors.size()
    until = options.pop("until", start)
    report = await sync_jobs(client, mirrors.sink(), until=until, **options)
    if mirrors.kind == "jsonl":  # a run writes each job at most once
        written = jsonl_ids_since(mirrors.path, offset)
        assert len(written) == len(set(written))
    return report, start


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
async def test_a_mirror_synced_while_jobs_move_misses_nothing_and_holds_nothing_stale(
    moving: ServicesEmulator,
    fast_client: ServicesClient,
    clock: FakeClock,
    tmp_path: Path,
    kind: str,
) -> None:
    emu, mirrors = moving, Mirrors(kind, tmp_path)
    churn = Churn(emu, clock, step=1.0)
    early = NOW - timedelta(days=60)

    # A first run by creation time, of the first month, while jobs are created and moved.
    with churn.running():
        first, started = await run(emu, fast_client, mirrors, since=SINCE, until=early, windows=2)
    missing, stale = check_mirror(
        emu,
        mirrors.read(),
        marketplace=US,
        created=(SINCE, early),
        unchanged_since=started,
        present_created_before=early,
    )
    assert (missing, stale) == ([], [])
    assert first.runs[0].mode == "created"

    # Two months later: a run by last update, over nearly every job, jobs moving.
    with churn.running():
        second, started = await run(emu, fast_client, mirrors, windows=2)
    assert second.runs[0].mode == "updated"
    assert second.pages >= 8
    moved = sum(1 for j in emu.store.jobs.values() if j.last_updated > started)
    assert moved > 20  # the world did move during the run
    missing, stale = check_mirror(
        emu,
        mirrors.read(),
        marketplace=US,
        created=(SINCE, started),
        unchanged_since=started,
        present_created_before=early,
    )
    assert (missing, stale) == ([], [])

    # The world stands still: the next run leaves the mirror exactly as the store.
    third, started = await run(emu, fast_client, mirrors)
    assert third.repeated == 0
    mirror = mirrors.read()
    missing, stale = check_mirror(
        emu, mirror, marketplace=US, created=(SINCE, started), unchanged_since=started
    )
    assert (missing, stale) == ([], [])
    us = {j.service_job_id for j in emu.store.jobs.values() if j.marketplace_id == US}
    assert set(mirror) == us


async def test_checks_cost_one_request_per_window_when_nothing_moves(
    moving: ServicesEmulator, fast_client: ServicesClient, tmp_path: Path
) -> None:
    report, _ = await run(moving, fast_client, Mirrors("sqlite", tmp_path), since=SINCE, windows=2)
    assert report.windows == 2
    assert report.pages > 8
    assert report.checks == 2  # each window's first page once more
    assert report.repeated == 0
    assert report.requests == 1 + report.pages + report.checks


async def test_jobs_that_leave_mid_pass_cost_a_look_back_each_not_the_window_again(
    moving: ServicesEmulator, fast_client: ServicesClient, clock: FakeClock, tmp_path: Path
) -> None:
    mirrors = Mirrors("sqlite", tmp_path)
    await run(moving, fast_client, mirrors, since=SINCE, until=NOW - timedelta(days=60))
    before = moving.run_activity() + changes(moving)
    with Churn(moving, clock, step=0.2).running():  # a change every other request or so
        report, _ = await run(moving, fast_client, mirrors, windows=2)
    during = changes(moving) - before
    assert report.looked_back > 0
    assert report.looked_back <= during
    assert report.requests <= 1 + report.pages + report.checks + report.looked_back
    with closing(sqlite3.connect(mirrors.path)) as db:
        assert db.execute("SELECT count(*) FROM sync_windows").fetchone()[0] == 0


def changes(emu: ServicesEmulator) -> int:
    activity = emu.sellers[0].activity
    assert activity is not None
    return activity.created + activity.updated


async def test_a_change_after_the_last_page_costs_one_request_not_the_window_again(
    moving: ServicesEmulator, fast_client: ServicesClient, clock: FakeClock, tmp_path: Path
) -> None:
    mirrors = Mirrors("sqlite", tmp_path)
    await run(moving, fast_client, mirrors, since=SINCE, until=NOW - timedelta(days=60))
    changed: list[str] = []

    def change_before_the_check(progress: SyncProgress) -> None:
        if not changed and stored_tokens(mirrors.path) == [CHECK_PENDING]:
            job = next(j for j in moving.store.find_jobs(marketplace_id=US) if j.status == "HOLD")
            clock.advance(1)
            moving.store.set_job_status(job.service_job_id, "CANCELLED")
            changed.append(job.service_job_id)

    report, began = await run(
        moving, fast_client, mirrors, windows=1, on_progress=change_before_the_check
    )
    assert changed
    # The check saw one job fewer; the last page asked for again showed the size is
    # counted afresh for every page, so the change came after the pages: nothing to redo.
    assert (report.checks, report.looked_back, report.repeated) == (2, 0, 0)
    assert report.requests == report.pages + 2
    missing, stale = check_mirror(
        moving, mirrors.read(), marketplace=US, created=(SINCE, began), unchanged_since=began
    )
    assert (missing, stale) == ([], [])


# --- a check that was due when the run stopped -------------------------------------------


async def test_a_run_stopped_before_a_windows_check_checks_it_when_resumed(
    moving: ServicesEmulator, fast_client: ServicesClient, clock: FakeClock, tmp_path: Path
) -> None:
    mirrors = Mirrors("sqlite", tmp_path)
    await run(moving, fast_client, mirrors, since=SINCE, until=NOW - timedelta(days=60))
    checkpoint = sqlite_checkpoint(mirrors.path)

    def stop_when_a_check_is_due(progress: SyncProgress) -> None:
        if stored_tokens(mirrors.path).count(CHECK_PENDING):
            raise Boom("stopped with a check due")

    with pytest.raises(Boom):
        await run(moving, fast_client, mirrors, windows=1, on_progress=stop_when_a_check_is_due)
    assert stored_tokens(mirrors.path) == [CHECK_PENDING]
    assert sqlite_checkpoint(mirrors.path) == checkpoint  # not past an unchecked window

    # Meanwhile a job of the window changes: the check must see that and page it again.
    clock.advance(60)
    job = next(j for j in moving.store.find_jobs(marketplace_id=US) if j.status == "HOLD")
    moving.store.set_job_status(job.service_job_id, "CANCELLED")
    before = moving.count("getServiceJobs")
    report, _ = await run(moving, fast_client, mirrors)
    assert report.resumed
    assert report.checks >= 1
    assert report.pages > 2  # paged again (as one window, or in pieces)
    end = report.runs[0].end  # the stopped run's end: what it set out to mirror
    missing, stale = check_mirror(
        moving, mirrors.read(), marketplace=US, created=(SINCE, end), unchanged_since=end
    )
    assert (missing, stale) == ([], [])
    first = [r for r in moving.requests if r.operation == "getServiceJobs"][before]
    assert "pageToken" not in first.query  # the check: the window's first page
    assert sqlite_checkpoint(mirrors.path) > checkpoint
    assert stored_tokens(mirrors.path) == []


async def test_a_resumed_check_that_finds_nothing_changed_costs_one_request(
    moving: ServicesEmulator, fast_client: ServicesClient, tmp_path: Path
) -> None:
    mirrors = Mirrors("jsonl", tmp_path)
    await run(moving, fast_client, mirrors, since=SINCE, until=NOW - timedelta(days=60))

    def stop_when_a_check_is_due(progress: SyncProgress) -> None:
        if progress.windows_done == 0 and progress.pages > 1:
            state = (tmp_path / "jobs.jsonl.checkpoint.json").read_text()
            if CHECK_PENDING in state:
                raise Boom("stopped with a check due")

    with pytest.raises(Boom):
        await run(moving, fast_client, mirrors, windows=1, on_progress=stop_when_a_check_is_due)
    before = moving.count("getServiceJobs")
    report, _ = await run(moving, fast_client, mirrors)
    assert moving.count("getServiceJobs") - before == report.requests == report.checks == 1
    assert report.jobs == 0


def stored_tokens(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [r[0] for r in db.execute("SELECT page_token FROM sync_windows") if r[0]]


def sqlite_checkpoint(path: Path) -> str:
    with closing(sqlite3.connect(path)) as db:
        return str(db.execute("SELECT synced_until FROM sync_checkpoints").fetchone()[0])


# --- expired page tokens -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
async def test_tokens_that_expire_mid_run_restart_their_windows_and_lose_nothing(
    clock: FakeClock,
    paging: str,
    tmp_path: Path,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with ServicesEmulator(
        jobs=400, seed=3, clock=clock, enforce_limits=False, page_tokens=paging, page_token_ttl=60
    ) as emu:
        mirrors = Mirrors(kind, tmp_path)
        expired = False

        def outage(progress: SyncProgress) -> None:
            nonlocal expired
            if progress.pages == 5 and not expired:
                expired = True
                clock.advance(61)  # every token handed out so far is now too old

        caplog.set_level(logging.WARNING, "spapi_services.sync")
        async with client_of(emu) as client:
            report, started = await run(
                emu, client, mirrors, since=SINCE, windows=4, on_progress=outage
            )
        refusals = [r for r in caplog.records if "refused the page token" in r.getMessage()]
        assert refusals
        assert len(refusals) == emu.count("getServiceJobs", 400) <= 4
        assert report.repeated > 0
        missing, stale = check_mirror(
            emu, mirrors.read(), marketplace=US, created=(SINCE, started), unchanged_since=started
        )
        assert (missing, stale) == ([], [])


async def test_tokens_expired_while_a_run_was_stopped_restart_their_windows(
    clock: FakeClock, paging: str, tmp_path: Path
) -> None:
    async with ServicesEmulator(
        jobs=400, seed=3, clock=clock, enforce_limits=False, page_tokens=paging, page_token_ttl=60
    ) as emu:
        mirrors = Mirrors("jsonl", tmp_path)
        async with client_of(emu) as client:
            with pytest.raises(Boom):
                await run(emu, client, mirrors, since=SINCE, windows=4, on_progress=crash_at(6))
            clock.advance(3600)
            size = mirrors.size()
            report, _ = await run(emu, client, mirrors, since=SINCE)
        started = report.runs[0].end
        assert report.resumed
        assert emu.count("getServiceJobs", 400) >= 1
        written = jsonl_ids_since(mirrors.path, 0)
        assert len(written) == len(set(written))  # nothing stored twice, across the stop
        assert mirrors.size() > size
        missing, stale = check_mirror(
            emu, mirrors.read(), marketplace=US, created=(SINCE, started), unchanged_since=started
        )
        assert (missing, stale) == ([], [])


async def test_tokens_that_expire_before_every_next_page_stop_the_run_clearly(
    clock: FakeClock, tmp_path: Path
) -> None:
    async with ServicesEmulator(
        jobs=400, seed=3, clock=clock, enforce_limits=False, page_tokens="offset", page_token_ttl=1
    ) as emu:
        churn = Churn(emu, clock, step=2.0)  # two seconds between any two pages
        mirrors = Mirrors("sqlite", tmp_path)
        async with client_of(emu) as client:
            with churn.running(), pytest.raises(BadRequestError) as caught:
                await run(emu, client, mirrors, since=SINCE, windows=2)
        notes = "\n".join(getattr(caught.value, "__notes__", []))
        assert "expire before the next page is asked for" in notes
        assert emu.count("getServiceJobs", 400) >= 4  # three refusals in a row are let by
        with closing(sqlite3.connect(mirrors.path)) as db:
            assert db.execute("SELECT count(*) FROM sync_checkpoints").fetchone()[0] == 0


def crash_at(pages: int) -> Any:
    def on_progress(p: SyncProgress) -> None:
        if p.pages >= pages:
            raise Boom(f"crashed after {p.pages} pages")

    return on_progress


def client_of(emu: ServicesEmulator) -> ServicesClient:
    return ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
        retry=RetryPolicy(max_retries=0),
        rate_limits=False,
    )
