"""Jobs that move while a poll pages, against an API whose page tokens are offsets.

The emulator's page tokens are cursors; Amazon does not say what its are.  With offsets,
a job that enters the result set (or moves in it) while a poll pages shifts the later
pages.  The feed asks with no upper bound, newest first: the set only grows, and what
enters or moves goes before the reader's position or at the front, so a page can repeat
a job (dropped as unchanged) but never skip one.  Here an in-memory API behind the
client's sender seam pages by offset and changes jobs between two pages.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from spapi_services import BadRequestError, LwaCredentials, RawResponse, ServicesClient
from spapi_services.emulator import FakeClock

from .conftest import US, ScriptTimer, run

API = "https://api.test"
TOKEN_URL = "https://auth.test/o2/token"
T0 = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)


@attrs.define
class Job:
    job_id: str
    created: datetime
    updated: datetime
    status: str = "NOT_SERVICED"

    def wire(self) -> dict[str, Any]:
        return {
            "serviceJobId": self.job_id,
            "createTime": self.created.isoformat().replace("+00:00", "Z"),
            "serviceJobStatus": self.status,
            "marketplaceId": US,
        }


def _reply(status: int, data: Any) -> RawResponse:
    headers = CIMultiDictProxy(CIMultiDict({"x-amzn-RequestId": "r"}))
    return RawResponse(status, headers, json.dumps(data).encode())


class OffsetApi:
    """getServiceJobs over a list, paged by offset; ``between_pages`` runs after a page.

    ``order`` is what the API sorts by, newest first: ``"created"`` or ``"updated"``
    (Amazon's JOB_DATE could be either).
    """

    def __init__(self, clock: FakeClock, jobs: list[Job], order: str = "created") -> None:
        self.clock = clock
        self.jobs = jobs
        self.order = order
        self.between_pages: Callable[[int], None] = lambda page: None
        self.pages = 0
        self.refuse: int | None = None

    def update(self, job_id: str, status: str) -> None:
        for job in self.jobs:
            if job.job_id == job_id:
                job.status, job.updated = status, self.clock.now()

    async def __call__(
        self, method: str, url: URL, headers: Mapping[str, str], body: bytes | None, t: float
    ) -> RawResponse:
        if str(url) == TOKEN_URL:
            return _reply(200, {"access_token": "Atza|x", "expires_in": 3600})
        if self.refuse is not None:
            return _reply(self.refuse, {"errors": [{"code": "InvalidInput", "message": "no"}]})
        query = url.query
        after = datetime.fromisoformat(query["lastUpdatedAfter"].replace("Z", "+00:00"))
        assert query["sortOrder"] == "DESC"
        assert "lastUpdatedBefore" not in query
        size = int(query["pageSize"])
        key = (lambda j: j.created) if self.order == "created" else (lambda j: j.updated)
        found = sorted((j for j in self.jobs if j.updated >= after), key=key, reverse=True)
        offset = int(query.get("pageToken", "0"))
        page = found[offset : offset + size]
        payload: dict[str, Any] = {"jobs": [j.wire() for j in page]}
        if offset + size < len(found):
            payload["nextPageToken"] = str(offset + size)
        self.pages += 1
        self.between_pages(self.pages)
        return _reply(200, {"payload": payload})


def world(order: str, count: int = 45) -> tuple[OffsetApi, ScriptTimer, ServicesClient]:
    clock = FakeClock(T0)
    timer = ScriptTimer(clock)
    jobs = [
        Job(f"J{n:03d}", T0 - timedelta(days=30, minutes=n), T0 - timedelta(days=30))
        for n in range(count)
    ]
    api = OffsetApi(clock, jobs, order)
    client = ServicesClient(
        LwaCredentials("amzn1.application-oa2-client.t", "secret", "Atzr|r"),
        endpoint=API,
        token_url=TOKEN_URL,
        marketplace_id=US,
        sender=api,
        timer=timer,
        rate_limits=False,
    )
    return api, timer, client


@pytest.mark.parametrize("order", ["created", "updated"])
async def test_a_job_moving_to_the_front_mid_poll_skips_no_other(order: str) -> None:
    api, timer, client = world(order)
    since = T0 - timedelta(days=31)  # a catch-up: every job, three pages
    # After the first page, one job of the third page changes: sorted by update time it
    # moves to the front, behind the reader (the next poll finds it there: its update
    # time is in the next window); by creation it stays where it is.
    api.between_pages = lambda page: api.update("J044", "HOLD") if page == 1 else None
    timer.stop_after(6)

    async with client:
        changes = await run(client.service_jobs.changes(since=since))

    ids = [c.job.service_job_id for c in changes]
    assert sorted(ids) == sorted(j.job_id for j in api.jobs)  # none skipped, each once
    moved = next(c for c in changes if c.job.service_job_id == "J044")
    assert moved.job.service_job_status == "HOLD"
    assert moved.kind == "created"  # created after ``since``, new to the feed


async def test_old_jobs_entering_the_set_mid_poll_shift_pages_but_skip_none() -> None:
    api, timer, client = world("created")
    for job in api.jobs[:25]:  # in the window: two pages
        job.updated = T0
    timer.clock.advance(1)

    def enter(page: int) -> None:
        # Jobs updated before the window change while page 1 is read: they enter the
        # set ahead of the reader, shifting the second page by three.
        if page == 1:
            for job_id in ("J030", "J031", "J032"):
                api.update(job_id, "HOLD")

    api.between_pages = enter
    timer.stop_after(12)

    async with client:
        changes = await run(client.service_jobs.changes(since=T0))

    ids = [c.job.service_job_id for c in changes]
    assert len(ids) == len(set(ids)) == 28
    assert set(ids) == {j.job_id for j in api.jobs[:25]} | {"J030", "J031", "J032"}


async def test_a_refused_request_is_raised_not_retried() -> None:
    api, timer, client = world("created")
    api.refuse = 400
    timer.stop_after(60)
    async with client:
        feed = client.service_jobs.changes()
        with pytest.raises(BadRequestError):
            await run(feed)
    assert api.pages == 0
    assert feed.errors == 0
