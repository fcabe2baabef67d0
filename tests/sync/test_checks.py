"""The engine's window checks against an API it cannot trust: offset pages whose totals
are counted once per search (so only a fresh first page shows a change), pages without
totals, and the bookkeeping of which windows are taken.

The API here is a small in-memory stand-in with the SDK's ``list_page`` signature; the
emulator (whose totals are always counted afresh) is used everywhere else.
"""

from __future__ import annotations

import gc
import logging
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from spapi_services import ServicesClient
from spapi_services.models.jobs import JobListing, ServiceJob
from spapi_services.sync import SqliteSink, sync_jobs
from spapi_services.sync._engine import _moved, _pieces, _Run
from spapi_services.sync._plan import Mode, SyncPlan, Window, split

US = "ATVPDKIKX0DER"
T0 = datetime(2026, 6, 1, tzinfo=UTC)


class OffsetApi:
    """getServiceJobs over a list, paged by offset, its total counted on the first page
    and carried in the token (``stale_totals``) or counted on every page."""

    def __init__(
        self, jobs: int, *, stale_totals: bool, totals: bool = True, previous: bool = True
    ) -> None:
        self.created = {f"{10**13 + i}": T0 + timedelta(minutes=i) for i in range(jobs)}
        self.updated = dict(self.created)
        self.stale_totals = stale_totals
        self.totals = totals
        self.previous = previous
        self.served = 0
        self.after_page: dict[int, Callable[[], None]] = {}

    async def list_page(
        self, *, page_token: str | None, page_size: int, **query: Any
    ) -> JobListing:
        if "created_after" in query:
            low, high, times = query["created_after"], query["created_before"], self.created
        else:
            low, high, times = (
                query["last_updated_after"],
                query["last_updated_before"],
                self.updated,
            )
        members = sorted((c, i) for i, c in self.created.items() if low <= times[i] <= high)
        if page_token is None:
            offset, total = 0, len(members)
        else:
            start, counted, back = (int(part) for part in page_token.split(":"))
            total = counted if self.stale_totals else len(members)
            offset = max(0, start - page_size) if back else start
        end = offset + page_size
        page = JobListing(
            total_result_size=total if self.totals else None,
            next_page_token=f"{end}:{total}:0" if end < len(members) else None,
            previous_page_token=f"{offset}:{total}:1" if offset and self.previous else None,
            jobs=tuple(
                ServiceJob(service_job_id=i, create_time=c, marketplace_id=US)
                for c, i in members[offset:end]
            ),
        )
        self.served += 1
        hook = self.after_page.pop(self.served, None)
        if hook is not None:
            hook()
        return page


def client_of(api: OffsetApi) -> ServicesClient:
    return cast(ServicesClient, SimpleNamespace(service_jobs=api))


def stored(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {r[0] for r in db.execute("SELECT service_job_id FROM service_jobs")}


async def first_sync(api: OffsetApi, path: Path) -> datetime:
    """Mirror every job by creation; then every job counts as updated since."""
    until = T0 + timedelta(days=1)
    await sync_jobs(client_of(api), SqliteSink(path), since=T0, until=until, marketplace_ids=[US])
    for job_id in api.updated:
        api.updated[job_id] = until
    return until


@pytest.mark.parametrize(
    ("stale_totals", "previous"), [(True, True), (False, True), (False, False)]
)
async def test_a_job_that_slid_past_an_offset_is_fetched_after_all(
    tmp_path: Path, stale_totals: bool, previous: bool
) -> None:
    api = OffsetApi(60, stale_totals=stale_totals, previous=previous)
    path = tmp_path / "jobs.sqlite"
    checkpoint = await first_sync(api, path)
    ids = sorted(api.created, key=api.created.__getitem__)
    # The second run: after its first page, a job of that page is updated (it leaves the
    # run's range), and the job that was 21st slides onto page one, behind the offset.
    slid = ids[20]

    def update_a_job_of_page_one() -> None:
        api.updated[ids[3]] = checkpoint + timedelta(days=3)

    with closing(sqlite3.connect(path)) as db, db:
        db.execute("DELETE FROM service_jobs WHERE service_job_id = ?", (slid,))
    api.after_page[api.served + 1] = update_a_job_of_page_one
    report = await sync_jobs(
        client_of(api),
        SqliteSink(path),
        until=checkpoint + timedelta(days=2),
        windows=1,
        marketplace_ids=[US],
    )
    assert slid in stored(path)
    if stale_totals:
        # The pages could not show it: the check (a fresh first page) did, and the
        # window was paged again, in two pieces.
        assert (report.looked_back, report.repeated, report.windows) == (0, 3, 3)
    elif previous:
        # Page two showed it: the page before it, fetched again, held the job.
        assert (report.looked_back, report.repeated, report.checks) == (1, 0, 1)
        assert report.requests == 3 + 1 + 1  # three pages, the look-back, the check
    else:
        # No way back: seen on page two, and the window paged again from there.
        assert (report.looked_back, report.repeated) == (0, 2)


async def test_without_totals_windows_are_taken_as_complete_and_it_is_said_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = OffsetApi(100, stale_totals=False, totals=False)
    caplog.set_level(logging.WARNING, "spapi_services.sync")
    report = await sync_jobs(
        client_of(api),
        SqliteSink(tmp_path / "jobs.sqlite"),
        since=T0,
        until=T0 + timedelta(days=1),
        windows=1,
        marketplace_ids=[US],
    )
    assert stored(tmp_path / "jobs.sqlite") == set(api.created)
    assert report.checks == 1
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "gave no totalResultSize" in warnings[0]


def test_windows_handed_out_are_known_by_the_object_not_a_reusable_id(tmp_path: Path) -> None:
    plan = SyncPlan.new(
        scope=US, mode=Mode.CREATED, start=T0, end=T0 + timedelta(days=1), windows=1
    )
    api = OffsetApi(0, stale_totals=False)
    run = _Run(client_of(api), SqliteSink(tmp_path / "j"), [plan], [], 4, None, 0.0)
    taken = run._next_window()
    assert taken is plan.windows[0]
    # The plan's windows are laid out anew while that one is taken, and it is dropped:
    # new windows are allocated, one likely where it lived (the same id, in CPython).
    del taken
    plan.windows = []
    gc.collect()
    fresh = Window(index=0, start=T0, end=T0, query_start=T0, query_end=T0)
    plan.windows = [fresh, *split(T0, T0 + timedelta(days=1), 3)]
    handed = [run._next_window() for _ in range(5)]
    assert handed[:4] == plan.windows  # every new window is free, none taken for the old
    assert handed[4] is None


@pytest.mark.parametrize(
    ("mode", "baseline", "peak", "total", "moved"),
    [
        (Mode.UPDATED, 100, 100, 100, False),
        (Mode.UPDATED, 100, 100, 99, True),  # a job left: a later page may skip one
        (Mode.UPDATED, 100, 100, 101, True),  # one came in (the API's clock behind ours)
        (Mode.CREATED, 100, 100, 101, False),  # a job created now: shifts forward only
        (Mode.CREATED, 100, 103, 102, True),  # fewer than seen: a job went away
        (Mode.CREATED, 100, 100, 99, True),
        (Mode.UPDATED, None, None, 5, False),  # nothing to go by
        (Mode.UPDATED, 5, 5, None, False),
    ],
)
def test_which_changes_can_hide_a_job(
    mode: Mode, baseline: int | None, peak: int | None, total: int | None, moved: bool
) -> None:
    assert _moved(mode, baseline, peak, total) is moved


def window(expected: int, span: timedelta = timedelta(days=1)) -> Window:
    (only,) = split(T0, T0 + span, 1)
    only.expected = expected
    return only


@pytest.mark.parametrize(
    ("expected", "lost", "pass_pages", "span", "pieces"),
    [
        (20, 1, 1, timedelta(days=1), 1),  # a single page needs no cutting
        (60, 1, 2, timedelta(days=1), 2),
        (1000, 1, 50, timedelta(days=1), 2),  # a slow trickle: halves
        (1000, 10, 5, timedelta(days=1), 15),  # changes every page: many small pieces
        (1000, 500, 1, timedelta(days=1), 50),  # at most one piece per page
        (1000, 10, 5, timedelta(seconds=9), 2),  # pieces no shorter than four seconds
        (1000, 10, 5, timedelta(seconds=7), 1),  # too short to cut: paged again whole
    ],
)
def test_a_changed_window_is_cut_in_pieces_sized_to_the_rate_of_change(
    expected: int, lost: int, pass_pages: int, span: timedelta, pieces: int
) -> None:
    assert _pieces(window(expected, span), lost, pass_pages) == pieces
