"""``service_jobs.get``, ``cancel`` and ``complete`` take the job as well as its id.

Against the emulator over real sockets: a job read from a search (or a change feed) is
passed back as it is, and the call reaches that job; a record that carries no usable id
is refused by name before anything is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
from _emulators import NOW

from spapi_services import ServicesClient
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.feed import ChangeKind, JobChange
from spapi_services.models import ServiceJob

US = "ATVPDKIKX0DER"


@attrs.frozen
class _MyJob:
    """A caller's own record of a job: anything with ``service_job_id`` will do."""

    service_job_id: str
    note: str = "from my database"


@pytest.fixture
async def emu() -> AsyncIterator[ServicesEmulator]:
    async with ServicesEmulator(jobs=30, seed=4, clock=FakeClock(NOW)) as started:
        yield started


@pytest.fixture
async def client(emu: ServicesEmulator) -> AsyncIterator[ServicesClient]:
    async with ServicesClient(
        emu.credentials, endpoint=emu.url, token_url=emu.token_url, marketplace_id=US
    ) as made:
        yield made


async def open_jobs(client: ServicesClient, count: int) -> list[ServiceJob]:
    found: list[ServiceJob] = []
    async for job in client.service_jobs.list(created_after=NOW - timedelta(days=365)):
        if job.service_job_status in ("NOT_SERVICED", "HOLD", "PENDING_SCHEDULE"):
            found.append(job)
            if len(found) == count:
                break
    assert len(found) == count
    return found


async def test_get_takes_a_job_and_reads_that_job_again(
    emu: ServicesEmulator, client: ServicesClient
) -> None:
    job, other = await open_jobs(client, 2)
    emu.store.set_job_status(job.service_job_id or "", "HOLD")

    again = await client.service_jobs.get(job)
    mine = await client.service_jobs.get(_MyJob(other.service_job_id or ""))

    assert again.service_job_id == job.service_job_id
    assert again.service_job_status == "HOLD"  # read afresh, not the record passed in
    assert mine == await client.service_jobs.get(other.service_job_id or "")
    paths = [r.path for r in emu.requests if r.operation == "getServiceJobByServiceJobId"]
    assert paths[:2] == [
        f"/service/v1/serviceJobs/{job.service_job_id}",
        f"/service/v1/serviceJobs/{other.service_job_id}",
    ]


async def test_cancel_and_complete_take_the_job(
    emu: ServicesEmulator, client: ServicesClient
) -> None:
    to_cancel, to_complete, changed = await open_jobs(client, 3)
    # A change feed's job is a ServiceJob too: the change's job is passed on as it is.
    change = JobChange(kind=ChangeKind.UPDATED, job=changed, seen_at=NOW, content_hash="0" * 64)
    before = {j.service_job_id: j.status for j in emu.store.jobs.values()}

    await client.service_jobs.cancel(to_cancel, reason_code="V1")
    await client.service_jobs.complete(to_complete)
    await client.service_jobs.complete(change.job)

    store = emu.store.jobs
    assert store[to_cancel.service_job_id or ""].status == "CANCELLED"
    assert store[to_complete.service_job_id or ""].status == "COMPLETED"
    assert store[changed.service_job_id or ""].status == "COMPLETED"
    after = {j.service_job_id: j.status for j in store.values()}
    moved = {job_id for job_id, status in after.items() if before[job_id] != status}
    assert moved == {to_cancel.service_job_id, to_complete.service_job_id, changed.service_job_id}


BAD: list[tuple[str, Any, type[Exception], str]] = [
    (
        "a job without an id",
        ServiceJob(),
        ValueError,
        r"^service_job_id \(ServiceJob\.service_job_id\): the ServiceJob has no service_job_id$",
    ),
    (
        "a record with an empty id",
        _MyJob(""),
        ValueError,
        r"^service_job_id \(_MyJob\.service_job_id\): must ",
    ),
    (
        "a record with an id that is not a string",
        _MyJob(7),  # type: ignore[arg-type]
        TypeError,
        r"^service_job_id \(_MyJob\.service_job_id\): expected a string",
    ),
    (
        "the job's JSON instead of the job",
        {"serviceJobId": "J1"},
        TypeError,
        r"^service_job_id: expected an id \(a string\) or a record with \.service_job_id, "
        r"got dict$",
    ),
]


@pytest.mark.parametrize(
    ("value", "error", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
async def test_a_record_without_a_usable_id_is_refused_before_sending(
    emu: ServicesEmulator,
    client: ServicesClient,
    value: Any,
    error: type[Exception],
    message: str,
) -> None:
    calls = [
        lambda: client.service_jobs.get(value),
        lambda: client.service_jobs.cancel(value, reason_code="V1"),
        lambda: client.service_jobs.complete(value),
    ]
    for call in calls:
        with pytest.raises(error, match=message):
            await call()
    assert emu.requests == []  # not even a token exchange
    await client.service_jobs.get(_MyJob(emu.store.find_jobs()[0].service_job_id))
    assert [r.operation for r in emu.requests][-1] == "getServiceJobByServiceJobId"
