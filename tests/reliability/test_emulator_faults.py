"""The emulator's faults the matrix relies on, seen with a bare aiohttp client.

429 bursts, and the ``mangle`` faults that strike after the operation has run: the state
changes, only the answer goes wrong.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from spapi_services.emulator import Fault, ServicesEmulator
from spapi_services.emulator.faults import parse_fault_spec

from ._scenarios import open_job

GET = "getServiceJobByServiceJobId"
CANCEL = "cancelServiceJobByServiceJobId"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _token(session: aiohttp.ClientSession, emu: ServicesEmulator) -> str:
    creds = emu.credentials
    form = {
        "grant_type": "refresh_token",
        "refresh_token": creds.refresh_token,
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
    }
    async with session.post(emu.token_url, data=form) as response:
        token: str = (await response.json())["access_token"]
    return token


async def _cancel(
    session: aiohttp.ClientSession, emu: ServicesEmulator, job_id: str
) -> tuple[int, str | None, bytes]:
    headers = {"x-amz-access-token": await _token(session, emu)}
    async with session.put(
        f"{emu.url}/service/v1/serviceJobs/{job_id}/cancellations",
        params={"cancellationReasonCode": "V1"},
        headers=headers,
    ) as response:
        return response.status, response.headers.get("Content-Type"), await response.read()


async def test_a_429_burst_answers_quota_exceeded(
    session: aiohttp.ClientSession, emu: ServicesEmulator
) -> None:
    job = open_job(emu)
    emu.faults.set(CANCEL, error_rate=1.0, error_status=429, count=1)
    status, _, body = await _cancel(session, emu, job.service_job_id)
    assert status == 429
    assert b"QuotaExceeded" in body
    assert emu.store.jobs[job.service_job_id].status == job.status  # refused before running
    status, _, _ = await _cancel(session, emu, job.service_job_id)
    assert status == 200
    assert emu.store.jobs[job.service_job_id].status == "CANCELLED"


@pytest.mark.parametrize(
    ("how", "status", "content_type", "body"),
    [
        ("truncate", 200, "application/json", b"{"),
        ("html", 200, "text/html", b"<!DOCTYPE html>"),
        ("empty", 200, None, b""),
    ],
)
async def test_mangled_answers_after_the_operation_ran(
    session: aiohttp.ClientSession,
    emu: ServicesEmulator,
    how: str,
    status: int,
    content_type: str | None,
    body: bytes,
) -> None:
    job = open_job(emu)
    emu.faults.set(CANCEL, mangle=how, count=1)
    got_status, got_type, got_body = await _cancel(session, emu, job.service_job_id)
    assert (got_status, got_type) == (status, content_type)
    assert got_body.startswith(body)
    assert emu.store.jobs[job.service_job_id].status == "CANCELLED"
    assert emu.count(CANCEL, 200) == 1  # logged with the operation's own status


async def test_a_reset_cuts_the_body_after_the_operation_ran(
    session: aiohttp.ClientSession, emu: ServicesEmulator
) -> None:
    job = open_job(emu)
    emu.faults.set(CANCEL, mangle="reset", count=1)
    with pytest.raises(aiohttp.ClientPayloadError):
        await _cancel(session, emu, job.service_job_id)
    assert emu.store.jobs[job.service_job_id].status == "CANCELLED"


async def test_a_lost_answer_after_the_operation_ran(
    session: aiohttp.ClientSession, emu: ServicesEmulator
) -> None:
    job = open_job(emu)
    emu.faults.set(CANCEL, mangle="lose")  # every time: aiohttp re-sends a PUT once itself
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await _cancel(session, emu, job.service_job_id)
    assert emu.store.jobs[job.service_job_id].status == "CANCELLED"
    assert emu.count(CANCEL) == 2  # the first ran; aiohttp's re-send found it cancelled
    assert emu.count(CANCEL, 422) == 1


def test_mangles_are_checked_and_read_from_the_command_line() -> None:
    with pytest.raises(ValueError, match="mangle"):
        Fault(mangle="garble")
    with pytest.raises(ValueError, match="error_status"):
        Fault(error_status=428)
    assert Fault(error_status=429).error_status == 429
    operation, fault = parse_fault_spec("createReservation:mangle=lose,count=2")
    assert (operation, fault) == ("createReservation", Fault(mangle="lose", count=2))
