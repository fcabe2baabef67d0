"""examples/book_once.py: book_once and schedule, against an emulator in trouble."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any

import pytest
from _emulators import emulators
from _pages import US, load_example, next_wednesday

from spapi_services import (
    LwaCredentials,
    NotFoundError,
    ServicesClient,
    TokenEndpointUnreachableError,
)
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.store import JobRecord

ADD = "addAppointmentForServiceJobByServiceJobId"
GET = "getServiceJobByServiceJobId"

Schedule = Callable[[ServicesClient, str, datetime], Coroutine[Any, Any, str]]
BookOnce = Callable[[ServicesClient, str, datetime], Coroutine[Any, Any, str]]


@pytest.fixture
def book_once_py() -> dict[str, Any]:
    return load_example("book_once.py")


def waiting_jobs(emu: ServicesEmulator) -> list[JobRecord]:
    return emu.store.find_jobs(status="PENDING_SCHEDULE", marketplace_id=US)


def booked(job: JobRecord) -> list[datetime]:
    """The start of each active appointment of a job (a waiting job may have cancelled ones)."""
    return [a.start for a in job.appointments if a.status == "ACTIVE"]


def start_for(emu: ServicesEmulator) -> datetime:
    """A start two days ahead on the hour, as the API sends it back."""
    return (emu.clock.now() + timedelta(days=2)).replace(hour=15)


def client_of(
    emu: ServicesEmulator,
    *,
    credentials: LwaCredentials | None = None,
    token_url: str | None = None,
) -> ServicesClient:
    return ServicesClient(
        credentials or emu.credentials,
        endpoint=emu.url,
        token_url=token_url or emu.token_url,
        marketplace_id=US,
    )


async def test_an_answer_lost_after_booking_is_found_on_the_job_not_booked_twice(
    emulator: ServicesEmulator, client: ServicesClient, book_once_py: dict[str, Any]
) -> None:
    book_once: BookOnce = book_once_py["book_once"]
    job = waiting_jobs(emulator)[0]
    start = start_for(emulator)
    emulator.faults.set(ADD, mangle="lose", count=1)  # booked, then the connection drops

    appointment_id = await book_once(client, job.service_job_id, start)

    appointment = job.active_appointment()
    assert appointment is not None
    assert appointment_id == appointment.appointment_id
    assert booked(job) == [start]
    assert emulator.count(ADD) == 1  # never re-sent
    assert emulator.count(GET, 200) == 1  # it looked instead


async def test_a_503_before_booking_is_for_later_and_books_the_next_time(
    emulator: ServicesEmulator, client: ServicesClient, book_once_py: dict[str, Any]
) -> None:
    schedule: Schedule = book_once_py["schedule"]
    job = waiting_jobs(emulator)[0]
    start = start_for(emulator)
    emulator.faults.set(ADD, error_rate=1.0, error_status=503, count=1)

    assert await schedule(client, job.service_job_id, start) == "later"
    assert booked(job) == []
    assert emulator.count(GET, 200) == 1  # looked: nothing booked, so it raised

    assert await schedule(client, job.service_job_id, start) == "done"
    assert booked(job) == [start]


async def test_throttled_through_every_retry_is_for_later(
    emulator: ServicesEmulator, client: ServicesClient, book_once_py: dict[str, Any]
) -> None:
    schedule: Schedule = book_once_py["schedule"]
    job = waiting_jobs(emulator)[0]
    emulator.faults.set(ADD, error_rate=1.0, error_status=429)  # throttled, every time
    hurried = client.with_options(deadline=1.0)  # 429s are retried until the deadline

    assert await schedule(hurried, job.service_job_id, start_for(emulator)) == "later"
    assert emulator.count(ADD, 429) >= 2  # retried, then given up in time
    assert emulator.count(GET) == 0  # a 429 booked nothing: no need to look
    assert booked(job) == []


async def test_a_refusal_is_to_fix_and_is_logged_with_its_request_id(
    emulator: ServicesEmulator,
    client: ServicesClient,
    book_once_py: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    schedule: Schedule = book_once_py["schedule"]
    job = waiting_jobs(emulator)[0]
    past = emulator.clock.now() - timedelta(days=1)

    with caplog.at_level(logging.WARNING, logger="myapp"):
        assert await schedule(client, job.service_job_id, past) == "fix"

    (record,) = [r for r in caplog.records if r.name == "myapp"]
    [answer] = [r for r in emulator.requests if r.operation == ADD]
    assert record.getMessage().startswith(f"job {job.service_job_id} refused: (")
    assert answer.request_id in record.getMessage()
    assert answer.status == 422
    assert booked(job) == []


async def test_a_naive_datetime_is_a_bug_raised_before_anything_is_sent(
    emulator: ServicesEmulator, client: ServicesClient, book_once_py: dict[str, Any]
) -> None:
    schedule: Schedule = book_once_py["schedule"]
    job = waiting_jobs(emulator)[0]

    with pytest.raises(ValueError, match="start_time"):
        await schedule(client, job.service_job_id, start_for(emulator).replace(tzinfo=None))
    assert emulator.count(ADD) == 0


async def test_refused_credentials_stop_the_worker(
    emulator: ServicesEmulator, book_once_py: dict[str, Any]
) -> None:
    schedule: Schedule = book_once_py["schedule"]
    creds = emulator.credentials
    revoked = LwaCredentials(creds.client_id, creds.client_secret, "Atzr|revoked")
    async with client_of(emulator, credentials=revoked) as client:
        outcome = await schedule(
            client, waiting_jobs(emulator)[0].service_job_id, start_for(emulator)
        )
    assert outcome == "stop"
    assert emulator.count(ADD) == 0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_a_token_endpoint_down_or_failing_is_for_later_not_a_refusal(
    emulator: ServicesEmulator, book_once_py: dict[str, Any]
) -> None:
    book_once: BookOnce = book_once_py["book_once"]
    schedule: Schedule = book_once_py["schedule"]
    job_id = waiting_jobs(emulator)[0].service_job_id
    start = start_for(emulator)
    nowhere = f"http://127.0.0.1:{_closed_port()}/auth/o2/token"
    async with emulators(jobs=60, seed=3, clock=FakeClock(next_wednesday())) as more:
        failing = await more()
        failing.faults.set("token", error_rate=1.0, error_status=503)
        unreachable_1 = client_of(emulator, token_url=nowhere)
        unreachable_2 = client_of(emulator, token_url=nowhere)
        answering_503 = client_of(failing)
        async with unreachable_1, unreachable_2, answering_503:
            # Together: each spends the SDK's few seconds of token-exchange back-off.
            raised, down, failed = await asyncio.gather(
                book_once(unreachable_1, job_id, start),
                schedule(unreachable_2, job_id, start),
                schedule(answering_503, job_id, start),
                return_exceptions=True,
            )
    assert isinstance(raised, TokenEndpointUnreachableError)
    assert (down, failed) == ("later", "later")
    assert failing.lwa_exchanges == 4  # the SDK's own retries, then "later"
    assert emulator.count() == 0  # nothing reached the API


async def test_a_refused_retry_after_a_lost_answer_is_sorted_out_or_flagged(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    job = emulator.store.find_jobs(status="NOT_SERVICED", marketplace_id=US)[0]
    # Cancelled, then the answer is cut off halfway: the SDK retries (a cancel may be
    # repeated), the job, already cancelled, refuses, and the SDK reads it back.
    emulator.faults.set("cancelServiceJobByServiceJobId", mangle="reset", count=1)
    await client.service_jobs.cancel(job.service_job_id, reason_code="V1")
    assert job.status == "CANCELLED"  # the first attempt did it, and the call says so
    assert emulator.count("cancelServiceJobByServiceJobId") == 2
    assert emulator.count(GET, 200) == 1

    # A reservation cannot be read back: the 404 says the first attempt may have worked.
    reservation = next(iter(emulator.store.reservations.values()))
    emulator.faults.set("cancelReservation", mangle="reset", count=1)
    with pytest.raises(NotFoundError) as refused:
        await client.reservations.cancel(reservation.reservation_id)
    assert refused.value.may_have_taken_effect
    assert any("may have taken effect" in note for note in refused.value.__notes__)
    assert reservation.reservation_id not in emulator.store.reservations
