"""The service provider's day, through the SDK, against the emulator over real sockets.

Outcomes are checked on the emulator's own state, not on what the SDK says back.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from datetime import timedelta, timezone

import pytest
from _emulators import NOW

from spapi_services import (
    NotFoundError,
    RateLimitError,
    RetryPolicy,
    ServicesClient,
    UnprocessableEntityError,
)
from spapi_services.emulator import ServicesEmulator
from spapi_services.models import (
    AppointmentStatus,
    AvailabilityRecord,
    Reservation,
    ReservationType,
    ServiceJobStatus,
)

from .conftest import bookable_start, tiny_png, unscheduled_job

# The emulator's clock starts at NOW: times are taken from it, never from the machine.
pytestmark = pytest.mark.services_emulator(jobs=60, seed=3, at=NOW)


async def test_find_book_staff_prove_fulfil_complete(
    services_emulator: ServicesEmulator, services_client: ServicesClient
) -> None:
    emu, client = services_emulator, services_client
    job = unscheduled_job(emu)
    job_id = job.service_job_id

    # Find it the way an application would: by listing, not by peeking at the store.
    since = job.created - timedelta(seconds=1)
    found = [
        j.service_job_id
        async for j in client.service_jobs.list(
            created_after=since,
            statuses=[ServiceJobStatus.PENDING_SCHEDULE],
            marketplace_id=job.marketplace_id,
        )
    ]
    assert job_id in found

    start, minutes = await bookable_start(emu, client, job)
    booked = await client.appointments.add(job_id, start_time=start, duration_minutes=minutes)
    assert booked.appointment_id is not None
    appointment = emu.store.jobs[job_id].appointment(booked.appointment_id)
    assert appointment is not None
    assert appointment.status == "ACTIVE"

    technician = emu.store.qualified_resources(job_id, booked.appointment_id)[0]
    warnings = await client.appointments.assign_resources(
        job_id, booked.appointment_id, [technician.resource_id]
    )
    assert warnings == []
    assert [tid for tid, _ in appointment.technicians] == [technician.resource_id]

    png = tiny_png()
    document = await client.documents.upload(png)
    assert document.content_sha256 == b64encode(hashlib.sha256(png).digest()).decode()

    now = emu.clock.now()
    await client.appointments.set_fulfillment_data(
        job_id,
        booked.appointment_id,
        fulfillment_time=(now - timedelta(hours=2), now - timedelta(hours=1)),
        resources=[technician.resource_id],
        documents=[document],
    )
    assert appointment.fulfillment is not None

    await client.service_jobs.complete(job_id)
    assert emu.store.jobs[job_id].status == "COMPLETED"

    fetched = await client.service_jobs.get(job_id)
    assert fetched.service_job_status is ServiceJobStatus.COMPLETED
    statuses = {a.appointment_id: a.appointment_status for a in fetched.appointments or ()}
    assert statuses[booked.appointment_id] is AppointmentStatus.COMPLETED


async def test_reschedule_issues_a_new_appointment_and_keeps_the_old_id(
    services_emulator: ServicesEmulator, services_client: ServicesClient
) -> None:
    emu, client = services_emulator, services_client
    job = unscheduled_job(emu)
    start, minutes = await bookable_start(emu, client, job)
    first = await client.appointments.add(
        job.service_job_id, start_time=start, duration_minutes=minutes
    )
    assert first.appointment_id is not None

    moved = await client.appointments.reschedule(
        job.service_job_id,
        first.appointment_id,
        start_time=start + timedelta(days=7),
        reason_code="R1",
        duration_minutes=minutes,
    )
    assert moved.appointment_id is not None
    assert moved.appointment_id != first.appointment_id
    fetched = await client.service_jobs.get(job.service_job_id)
    by_id = {a.appointment_id: a for a in fetched.appointments or ()}
    assert by_id[moved.appointment_id].rescheduled_appointment_id == first.appointment_id
    assert by_id[moved.appointment_id].appointment_status is AppointmentStatus.ACTIVE
    assert by_id[first.appointment_id].appointment_status is AppointmentStatus.CANCELLED


async def test_an_aware_non_utc_start_is_sent_in_utc(
    services_emulator: ServicesEmulator, services_client: ServicesClient
) -> None:
    # The API refuses offsets other than UTC; the SDK converts, so callers need not.
    emu, client = services_emulator, services_client
    job = unscheduled_job(emu)
    start, minutes = await bookable_start(emu, client, job)
    india = timezone(timedelta(hours=5, minutes=30))
    booked = await client.appointments.add(
        job.service_job_id, start_time=start.astimezone(india), duration_minutes=minutes
    )
    assert booked.appointment_id is not None
    sent = [r for r in emu.requests if r.operation == "addAppointmentForServiceJobByServiceJobId"]
    assert sent[-1].status == 200
    stored = emu.store.jobs[job.service_job_id].appointment(booked.appointment_id)
    assert stored is not None
    assert stored.start == start


@pytest.mark.parametrize(
    ("state", "action", "fragment"),
    [
        ("COMPLETED", "complete", "COMPLETED"),
        ("CANCELLED", "cancel", "CANCELLED"),
        ("COMPLETED", "cancel", "COMPLETED"),
        ("CANCELLED", "add", "CANCELLED"),
    ],
)
async def test_forbidden_transitions_answer_422(
    services_emulator: ServicesEmulator,
    services_client: ServicesClient,
    state: str,
    action: str,
    fragment: str,
) -> None:
    job = services_emulator.store.find_jobs(status=state)[0]
    job_id = job.service_job_id
    if action == "complete":
        call = services_client.service_jobs.complete(job_id)
    elif action == "cancel":
        call = services_client.service_jobs.cancel(job_id, reason_code="V1")
    else:
        call = services_client.appointments.add(
            job_id, start_time=services_emulator.clock.now() + timedelta(days=3)
        )
    with pytest.raises(UnprocessableEntityError) as caught:
        await call
    assert caught.value.status_code == 422
    assert caught.value.request_id
    assert any(fragment in e.message for e in caught.value.errors)
    assert services_emulator.store.jobs[job_id].status == state  # nothing changed


async def test_booking_rules_the_api_enforces(
    services_emulator: ServicesEmulator, services_client: ServicesClient
) -> None:
    emu, client = services_emulator, services_client
    job = unscheduled_job(emu)
    with pytest.raises(UnprocessableEntityError):  # in the past
        await client.appointments.add(
            job.service_job_id, start_time=emu.clock.now() - timedelta(days=1)
        )
    with pytest.raises(UnprocessableEntityError):  # more than 365 days out
        await client.appointments.add(
            job.service_job_id, start_time=emu.clock.now() + timedelta(days=400)
        )
    busy = emu.store.find_jobs(status="NOT_SERVICED")[0]
    assert busy.active_appointment() is not None
    with pytest.raises(UnprocessableEntityError):  # already has an active appointment
        await client.appointments.add(
            busy.service_job_id, start_time=emu.clock.now() + timedelta(days=3)
        )
    assert len(emu.store.jobs[job.service_job_id].appointments) == len(job.appointments)


async def test_reservations_round_trip_and_unknown_ones_are_404(
    services_emulator: ServicesEmulator, services_client: ServicesClient
) -> None:
    emu, client = services_emulator, services_client
    job = unscheduled_job(emu)
    technician = emu.store.qualified_resources(job.service_job_id)[0]
    market = emu.store.stores[technician.store_id].marketplace_id
    day = (emu.clock.now() + timedelta(days=10)).replace(hour=12, minute=0, second=0, microsecond=0)
    created = await client.reservations.create(
        technician.resource_id,
        Reservation(
            type=ReservationType.BREAK,
            availability=AvailabilityRecord(start_time=day, end_time=day + timedelta(hours=1)),
        ),
        marketplace_id=market,
    )
    assert created.reservation is not None
    assert created.reservation.reservation_id
    reservation_id = created.reservation.reservation_id
    assert reservation_id in emu.store.reservations

    updated = await client.reservations.update(
        reservation_id,
        technician.resource_id,
        Reservation(
            type=ReservationType.TRAINING,
            availability=AvailabilityRecord(
                start_time=day + timedelta(hours=2), end_time=day + timedelta(hours=3)
            ),
        ),
        marketplace_id=market,
    )
    assert updated.reservation is not None
    assert updated.reservation.type is ReservationType.TRAINING

    await client.reservations.cancel(reservation_id, marketplace_id=market)
    assert reservation_id not in emu.store.reservations
    with pytest.raises(NotFoundError) as caught:
        await client.reservations.cancel(reservation_id, marketplace_id=market)
    assert caught.value.request_id


@pytest.mark.services_emulator(jobs=20, seed=5, at=NOW)
async def test_the_plan_throttles_a_client_without_limits_but_not_one_with_them(
    services_emulator: ServicesEmulator,
) -> None:
    emu = services_emulator
    job_id = next(iter(emu.store.jobs))
    calls = 70  # burst 40 at 20/s: a client that does not pace itself must be refused

    async def burst(client: ServicesClient) -> list[BaseException | object]:
        import asyncio

        return await asyncio.gather(
            *(client.service_jobs.get(job_id) for _ in range(calls)), return_exceptions=True
        )

    unpaced = ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        rate_limits=False,
        retry=RetryPolicy(max_retries=0),
    )
    async with unpaced:
        results = await burst(unpaced)
    refused = [r for r in results if isinstance(r, RateLimitError)]
    assert refused, "the emulator should have throttled an unpaced burst"
    assert emu.count("getServiceJobByServiceJobId", 429) == len(refused)

    emu.reset()  # fresh counters and a full server-side bucket
    paced = ServicesClient(emu.credentials, endpoint=emu.url, token_url=emu.token_url)
    async with paced:
        results = await burst(paced)
    assert all(not isinstance(r, BaseException) for r in results)
    assert emu.count("getServiceJobByServiceJobId", 429) == 0
    assert emu.count("getServiceJobByServiceJobId", 200) == calls
