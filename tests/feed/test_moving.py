"""A feed against the emulator's offset page tokens while its activity moves jobs.

The emulator pages getServiceJobs by offset (``page_tokens="offset"``, as an API whose
token is a position would) and its activity creates jobs and moves statuses several
times a second.  One fake clock drives both: the feed's timer moves it while the feed
waits, and every page the emulator serves moves it a quarter of a second more, so jobs
are created and changed between the pages of a poll, jobs of the window being paged
among them, and the later pages shift.  Then the world stops, the feed polls a little
longer, and the tests' own reading of the store and of the activity's log checks what
the feed yielded: every job that changed, its last change with the content the store
holds now; no change repeated; no state a job never had; nothing out of order.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from _emulators import NOW

from spapi_services import ServicesClient
from spapi_services.emulator import Activity, ActivityChange, FakeClock, ServicesEmulator
from spapi_services.emulator.introspection import RequestRecord
from spapi_services.feed import JobChange
from spapi_services.models import ServiceJob

from .conftest import US, ScriptTimer, run

LIST = "getServiceJobs"
#: Six changes a second of emulator time; new jobs in the watched marketplace.
ACTIVITY = Activity(created_per_minute=60, updated_per_minute=300, marketplace_id=US)
#: Emulator seconds each served page takes, for the world to move between pages.
STEP = 0.25
MOVING = 60.0  # seconds the world moves
AFTER = 10.0  # seconds the feed goes on polling once it stands still


class Pages:
    """Moves the fake clock ``STEP`` seconds after each getServiceJobs page served."""

    def __init__(self, emu: ServicesEmulator, clock: FakeClock) -> None:
        self.clock = clock
        self.moving = False
        self.served = 0
        self._record = emu.traffic.record
        emu.traffic.record = self._served  # type: ignore[method-assign]

    def _served(self, entry: RequestRecord) -> None:
        self._record(entry)
        if entry.operation == LIST and entry.status == 200:
            self.served += 1
            if self.moving:
                self.clock.advance(STEP)

    @contextmanager
    def moving_world(self) -> Iterator[None]:
        self.moving = True
        try:
            yield
        finally:
            self.moving = False


@pytest.fixture(params=["offset", "keyset"])
async def moving(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[ServicesEmulator, ScriptTimer]]:
    clock = FakeClock(NOW)
    async with ServicesEmulator(
        jobs=120, seed=9, clock=clock, page_tokens=request.param, activity=ACTIVITY
    ) as emu:
        yield emu, ScriptTimer(clock)


def store_json(emu: ServicesEmulator, job_id: str) -> dict[str, object]:
    """A job of the store as the API's JSON, read as the SDK reads it."""
    return ServiceJob.from_api_dict(emu.store.jobs[job_id].to_wire()).to_api_dict()


async def test_every_change_is_yielded_once_with_its_final_content_while_pages_shift(
    moving: tuple[ServicesEmulator, ScriptTimer],
) -> None:
    emu, timer = moving
    pages = Pages(emu, timer.clock)
    start = (timer.clock.now(), timer.clock.monotonic())
    activity = emu.sellers[0].activity
    assert activity is not None
    began = timer.clock.now()
    # What every job was when the feed began: the first state of its history.
    first = {j.service_job_id: j.status for j in emu.store.jobs.values()}

    def stand_still() -> None:
        emu.run_activity()  # every change due so far is made ...
        emu.sellers[0].activity = None  # ... and no more
        pages.moving = False

    timer.at(MOVING, stand_still)
    timer.stop_after(MOVING + AFTER)
    client = ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
        timer=timer,
        rate_limits=False,
    )
    async with client:
        feed = client.service_jobs.changes(interval=1.0, overlap=timedelta(seconds=20))
        with pages.moving_world():
            changes = await run(feed)

    # The world did move, between pages too, by the activity's own count.
    log = [c for c in activity.log if c.marketplace_id == US]
    created = {c.service_job_id for c in log if c.kind == "created"}
    assert len(created) >= 50
    assert len(log) >= 150
    assert pages.served > 2 * feed.polls  # polls of several pages
    # ... and jobs of the window being paged changed between its pages, shifting them.
    assert len(moved_mid_poll(emu, log, start)) >= 10
    assert feed.errors == 0
    assert emu.count(LIST, 429) == 0

    yielded: dict[str, list[JobChange]] = defaultdict(list)
    for change in changes:
        yielded[change.service_job_id].append(change)

    # No job missing, none stale: every job that changed since the feed began was
    # yielded, its last change after its last update, with the content held now.
    changed = {
        j.service_job_id
        for j in emu.store.jobs.values()
        if j.marketplace_id == US and j.last_updated >= began
    }
    assert changed == {c.service_job_id for c in log}
    assert set(yielded) == changed
    for job_id in changed:
        last = yielded[job_id][-1]
        assert last.seen_at >= emu.store.jobs[job_id].last_updated, job_id
        assert last.job.to_api_dict() == store_json(emu, job_id), job_id

    # Once each, in order, nothing invented: a job's yields are states it had, in the
    # order it had them (a change overtaken before a poll read it is not seen), and two
    # yields in a row never carry the same content.
    history: dict[str, list[str]] = defaultdict(list)
    for job_id, status in first.items():
        history[job_id].append(status)
    for entry in log:
        history[entry.service_job_id].append(entry.status)
    for job_id, seen in yielded.items():
        statuses = [str(c.job.service_job_status) for c in seen]
        assert is_subsequence(statuses, history[job_id]), (job_id, statuses, history[job_id])
        hashes = [c.content_hash for c in seen]
        assert all(a != b for a, b in pairwise(hashes)), job_id
        assert len(seen) <= len([e for e in log if e.service_job_id == job_id]), job_id
    # A job made during the run is new to the feed; any later change of it is an update.
    assert {yielded[job_id][0].kind.value for job_id in created} == {"created"}
    assert {c.kind.value for job_id in created for c in yielded[job_id][1:]} <= {"updated"}
    assert {c.kind.value for job_id in changed - created for c in yielded[job_id]} == {"updated"}


def moved_mid_poll(
    emu: ServicesEmulator, log: list[ActivityChange], start: tuple[datetime, float]
) -> list[ActivityChange]:
    """The status moves made while a poll was paging, of jobs in the window it paged
    (changed since the window's start before the move)."""
    wall, mono = start
    polls: list[tuple[datetime, datetime, datetime]] = []  # window start, first, last page
    for record in emu.requests:
        if record.operation != LIST or record.status != 200:
            continue
        served = wall + timedelta(seconds=record.time - mono)
        if "pageToken" not in record.query:
            after = datetime.fromisoformat(record.query["lastUpdatedAfter"].replace("Z", "+00:00"))
            polls.append((after, served, served))
        else:
            polls[-1] = (polls[-1][0], polls[-1][1], served)
    found = []
    for window, first_page, last_page in polls:
        for index, entry in enumerate(log):
            if entry.kind != "updated" or not first_page < entry.time <= last_page:
                continue
            before = [e for e in log[:index] if e.service_job_id == entry.service_job_id]
            if before and before[-1].time >= window:
                found.append(entry)
    return found


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    rest = iter(whole)
    return all(any(item == other for other in rest) for item in part)
