"""Appointments: add, reschedule, assign resources, the forbidden transitions, and slots."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.store import (
    AppointmentRecord,
    AvailabilityWindow,
    JobRecord,
    ReservationRecord,
)
from spapi_services.emulator.times import format_datetime

from ._helpers import US, Api, StartEmulator

ADD = "addAppointmentForServiceJobByServiceJobId"
RESCHEDULE = "rescheduleAppointmentForServiceJobByServiceJobId"
ASSIGN = "assignAppointmentResources"
GET = "getServiceJobByServiceJobId"
SLOTS_FOR_JOB = "getAppointmmentSlotsByJobId"
SLOTS = "getAppointmentSlots"


def at(clock: FakeClock, days: int, hour: int = 15) -> str:
    """A whole hour ``days`` from now, as the wire writes it."""
    when = (clock.now() + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )
    return format_datetime(when)


def body(start: str, **extra: object) -> dict[str, object]:
    return {"appointmentTime": {"startTime": start, **extra}}


def pending_job(emu: ServicesEmulator) -> JobRecord:
    return next(j for j in emu.store.find_jobs(status="PENDING_SCHEDULE", marketplace_id=US))


def staffed_job(emu: ServicesEmulator) -> tuple[JobRecord, AppointmentRecord]:
    for job in emu.store.find_jobs(status="NOT_SERVICED"):
        appointment = job.active_appointment()
        if appointment and appointment.technicians and appointment.start > emu.clock.now():
            return job, appointment
    raise AssertionError("no staffed job in the seed")


def assignable(emu: ServicesEmulator) -> tuple[JobRecord, AppointmentRecord]:
    for job in emu.store.find_jobs(status="NOT_SERVICED"):
        appointment = job.active_appointment()
        if appointment and emu.store.qualified_resources(job, appointment):
            return job, appointment
    raise AssertionError("no job with a qualified technician in the seed")


# --- add -----------------------------------------------------------------------------------


async def test_add_books_an_active_appointment(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    job = pending_job(emu)
    start = at(clock, 2)
    answer = await api.call(ADD, {"serviceJobId": job.service_job_id}, body=body(start))
    assert answer.status == 200, answer.text
    appointment_id = answer.json["appointmentId"]
    assert set(answer.json) == {"appointmentId"}  # no payload wrapper
    assert 5 <= len(appointment_id) <= 100
    got = (await api.call(GET, {"serviceJobId": job.service_job_id})).json["payload"]
    assert got["serviceJobStatus"] == "NOT_SERVICED"
    (new,) = [a for a in got["appointments"] if a["appointmentId"] == appointment_id]
    assert new["appointmentStatus"] == "ACTIVE"
    assert new["appointmentTime"] == {"startTime": start, "durationInMinutes": job.duration}


async def test_add_takes_a_duration(api: Api, emu: ServicesEmulator, clock: FakeClock) -> None:
    job = pending_job(emu)
    answer = await api.call(
        ADD, {"serviceJobId": job.service_job_id}, body=body(at(clock, 3), durationInMinutes=75)
    )
    assert answer.status == 200
    assert job.active_appointment() is not None
    assert job.active_appointment().duration == 75  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (
            "2021-01-01T10:00:00.000+05:30",
            "ISO8601 time 2021-01-01T10:00:00.000+05:30 is not in UTC.",
        ),
        ("2021-01-01T10-00:00.000Z", "Failed to parse ISO8601 input: 2021-01-01T10-00:00.000Z"),
    ],
)
async def test_add_refuses_bad_times(
    api: Api, emu: ServicesEmulator, start: str, message: str
) -> None:
    answer = await api.call(
        ADD, {"serviceJobId": pending_job(emu).service_job_id}, body=body(start)
    )
    assert (answer.status, answer.messages) == (422, [message])
    assert "x-amzn-RateLimit-Limit" not in answer.headers


@pytest.mark.parametrize(
    ("days", "reason"),
    [
        (-1, "Start time of appointment should be in the future."),
        (366, "Start time for appointment is beyond the maximum allowed period of 365 days."),
    ],
)
async def test_add_refuses_past_and_far_starts(
    api: Api, emu: ServicesEmulator, clock: FakeClock, days: int, reason: str
) -> None:
    job_id = pending_job(emu).service_job_id
    answer = await api.call(ADD, {"serviceJobId": job_id}, body=body(at(clock, days)))
    assert answer.status == 422
    assert answer.messages == [f"Failed to add appointment for jobId : {job_id}, reason : {reason}"]


async def test_add_refuses_a_second_active_appointment(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    job, _ = staffed_job(emu)
    answer = await api.call(ADD, {"serviceJobId": job.service_job_id}, body=body(at(clock, 4)))
    assert answer.status == 422
    assert answer.messages == [
        f"Failed to add appointment for jobId : {job.service_job_id}, reason : "
        "Job already has an active appointmentId."
    ]


@pytest.mark.parametrize("status", ["COMPLETED", "CANCELLED"])
async def test_add_refuses_closed_jobs(
    api: Api, emu: ServicesEmulator, clock: FakeClock, status: str
) -> None:
    job_id = emu.store.find_jobs(status=status)[0].service_job_id
    answer = await api.call(ADD, {"serviceJobId": job_id}, body=body(at(clock, 2)))
    assert answer.status == 422
    assert answer.messages == [
        f"Operation not allowed on job with jobId : {job_id} and jobState : {status}"
    ]


async def test_add_to_an_unknown_job(api: Api, clock: FakeClock) -> None:
    answer = await api.call(ADD, {"serviceJobId": "nope"}, body=body(at(clock, 2)))
    assert (answer.status, answer.messages) == (422, ["No job exist with jobId : nope"])


@pytest.mark.parametrize(
    "payload",
    [
        None,
        {},
        {"appointmentTime": {}},
        {"appointmentTime": {"startTime": 5}},
        body("2030-01-01T10:00:00Z", durationInMinutes=0),
    ],
)
async def test_add_with_a_malformed_body_is_400(
    api: Api, emu: ServicesEmulator, payload: object
) -> None:
    answer = await api.call(ADD, {"serviceJobId": pending_job(emu).service_job_id}, body=payload)
    assert answer.status == 400, answer.text
    assert answer.messages[0].startswith("Missing or invalid request parameters: [")


async def test_strict_slots_refuse_times_off_the_grid_or_outside_hours(
    api: Api, start_emulator: StartEmulator, clock: FakeClock
) -> None:
    emu = await start_emulator(strict_slots=True)
    api.emu = emu
    await api.login()
    job = pending_job(emu)
    friday = datetime(2026, 6, 19, 15, tzinfo=clock.now().tzinfo)
    off_grid = format_datetime(friday + timedelta(minutes=15))
    sunday = format_datetime(friday + timedelta(days=2))
    for start in (off_grid, sunday):
        answer = await api.call(ADD, {"serviceJobId": job.service_job_id}, body=body(start))
        assert answer.status == 422
        assert answer.messages[0].endswith("reason : Appointment slot is not available.")
    ok = await api.call(
        ADD, {"serviceJobId": job.service_job_id}, body=body(format_datetime(friday))
    )
    assert ok.status == 200, ok.text


# --- reschedule ------------------------------------------------------------------------------


async def test_reschedule_makes_a_new_appointment_and_cancels_the_old(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    job, old = staffed_job(emu)
    technicians = [tid for tid, _ in old.technicians]
    answer = await api.call(
        RESCHEDULE,
        {"serviceJobId": job.service_job_id, "appointmentId": old.appointment_id},
        body={**body(at(clock, 5)), "rescheduleReasonCode": "R1"},
    )
    assert answer.status == 200, answer.text
    new_id = answer.json["appointmentId"]
    assert new_id != old.appointment_id
    assert answer.json["warnings"] == [
        {
            "code": "RESOURCES_UNASSIGNED",
            "message": f"Unassigned resources : {','.join(technicians)}",
        }
    ]
    got = (await api.call(GET, {"serviceJobId": job.service_job_id})).json["payload"]
    by_id = {a["appointmentId"]: a for a in got["appointments"]}
    assert by_id[old.appointment_id]["appointmentStatus"] == "CANCELLED"
    assert by_id[new_id]["appointmentStatus"] == "ACTIVE"
    assert by_id[new_id]["rescheduledAppointmentId"] == old.appointment_id
    assert "assignedTechnicians" not in by_id[new_id]


async def test_reschedule_refusals(api: Api, emu: ServicesEmulator, clock: FakeClock) -> None:
    job, old = staffed_job(emu)
    path = {"serviceJobId": job.service_job_id, "appointmentId": old.appointment_id}
    prefix = f"Failed to add appointment for jobId : {job.service_job_id}, reason : "
    bad_reason = await api.call(
        RESCHEDULE, path, body={**body(at(clock, 5)), "rescheduleReasonCode": "U1"}
    )
    assert bad_reason.messages == [prefix + "Appointment reschedule reason code is not valid."]
    missing_reason = await api.call(RESCHEDULE, path, body=body(at(clock, 5)))
    assert missing_reason.status == 400
    past = await api.call(
        RESCHEDULE, path, body={**body(at(clock, -2)), "rescheduleReasonCode": "R1"}
    )
    assert past.messages == [prefix + "Start time of appointment should be in the future."]
    await api.call(RESCHEDULE, path, body={**body(at(clock, 5)), "rescheduleReasonCode": "R2"})
    again = await api.call(
        RESCHEDULE, path, body={**body(at(clock, 6)), "rescheduleReasonCode": "R1"}
    )
    assert again.status == 422
    assert again.messages == [
        f"Appointment metadata update is not allowed for appointmentId {old.appointment_id}"
    ]
    unknown = await api.call(
        RESCHEDULE,
        {"serviceJobId": job.service_job_id, "appointmentId": "nope1"},
        body={**body(at(clock, 5)), "rescheduleReasonCode": "R1"},
    )
    assert unknown.status == 422


# --- assign resources ----------------------------------------------------------------------


async def test_assign_sets_the_technicians(api: Api, emu: ServicesEmulator) -> None:
    job, appointment = assignable(emu)
    tech = emu.store.qualified_resources(job, appointment)[0]
    path = {"serviceJobId": job.service_job_id, "appointmentId": appointment.appointment_id}
    answer = await api.call(ASSIGN, path, body={"resources": [{"resourceId": tech.resource_id}]})
    assert (answer.status, answer.json) == (200, {}), answer.text
    assert answer.headers["x-amzn-RateLimit-Limit"] == "1.0"
    got = (await api.call(GET, {"serviceJobId": job.service_job_id})).json["payload"]
    (mine,) = [a for a in got["appointments"] if a["appointmentId"] == appointment.appointment_id]
    assert mine["assignedTechnicians"] == [{"technicianId": tech.resource_id, "name": tech.name}]


async def test_assign_warns_about_overbooking(api: Api, emu: ServicesEmulator) -> None:
    job, appointment = assignable(emu)
    tech = emu.store.qualified_resources(job, appointment)[0]
    emu.store.reservations["9999"] = ReservationRecord(
        "9999", tech.resource_id, "BREAK", AvailabilityWindow(appointment.start, appointment.end)
    )
    path = {"serviceJobId": job.service_job_id, "appointmentId": appointment.appointment_id}
    answer = await api.call(ASSIGN, path, body={"resources": [{"resourceId": tech.resource_id}]})
    assert answer.status == 200
    (warning,) = answer.json["payload"]["warnings"]
    assert warning["code"] == "RESOURCES_OVERBOOKED"


async def test_assign_refuses_unknown_and_unfit_resources(api: Api, emu: ServicesEmulator) -> None:
    job, appointment = assignable(emu)
    path = {"serviceJobId": job.service_job_id, "appointmentId": appointment.appointment_id}
    unknown = await api.call(ASSIGN, path, body={"resources": [{"resourceId": "badResourceId"}]})
    assert unknown.status == 422
    assert unknown.errors[0] == {
        "code": "InvalidInput",
        "message": "Invalid resourceId : badResourceId provided in the input.",
        "details": "",
    }
    market = emu.store.stores[job.store_id].marketplace_id
    elsewhere = next(
        r
        for r in emu.store.resources.values()
        if r.kind == "TECHNICIAN" and emu.store.stores[r.store_id].marketplace_id != market
    )
    other_store = next(
        r
        for r in emu.store.resources.values()
        if r.kind == "TECHNICIAN"
        and r.store_id != job.store_id
        and emu.store.stores[r.store_id].marketplace_id == market
    )
    answer = await api.call(
        ASSIGN,
        path,
        body={
            "resources": [
                {"resourceId": elsewhere.resource_id},
                {"resourceId": other_store.resource_id},
            ]
        },
    )
    assert answer.status == 422
    codes = {e["code"]: e["message"] for e in answer.errors}
    assert elsewhere.resource_id in codes["RESOURCES_NOT_REGISTERED_UNDER_MERCHANT"]
    assert other_store.resource_id in codes["RESOURCES_NOT_AVAILABLE_IN_LOCATION"]
    assert appointment.technicians == appointment.technicians  # unchanged on refusal


async def test_assign_refuses_unchecked_technicians(api: Api, emu: ServicesEmulator) -> None:
    for job in emu.store.find_jobs(status="NOT_SERVICED"):
        appointment = job.active_appointment()
        unchecked = [
            emu.store.resources[t]
            for t in emu.store.stores[job.store_id].technicians
            if not emu.store.resources[t].background_checked
        ]
        if appointment and unchecked:
            break
    else:
        pytest.skip("no store with an unchecked technician in this seed")
    path = {"serviceJobId": job.service_job_id, "appointmentId": appointment.appointment_id}
    answer = await api.call(
        ASSIGN, path, body={"resources": [{"resourceId": unchecked[0].resource_id}]}
    )
    assert answer.status == 422
    assert "RESOURCES_BACKGROUND_CHECK_INCOMPLETE" in {e["code"] for e in answer.errors}


async def test_assign_refusals_for_the_job_and_appointment(api: Api, emu: ServicesEmulator) -> None:
    done = emu.store.find_jobs(status="COMPLETED")[0]
    closed = await api.call(
        ASSIGN,
        {"serviceJobId": done.service_job_id, "appointmentId": done.appointments[0].appointment_id},
        body={"resources": [{"resourceId": "x"}]},
    )
    assert closed.messages == [
        f"Operation not allowed on job with jobId : {done.service_job_id} and jobState : COMPLETED"
    ]
    job, appointment = staffed_job(emu)
    missing = await api.call(
        ASSIGN,
        {"serviceJobId": job.service_job_id, "appointmentId": "nope1"},
        body={"resources": [{"resourceId": "x"}]},
    )
    assert missing.status == 422
    assert "reason : No appointment exists with appointmentId: nope1" in missing.messages[0]
    empty = await api.call(
        ASSIGN,
        {"serviceJobId": job.service_job_id, "appointmentId": appointment.appointment_id},
        body={"resources": []},
    )
    assert empty.status == 400
    unknown_job = await api.call(
        ASSIGN, {"serviceJobId": "nope", "appointmentId": "nope1"}, body={"resources": [{}]}
    )
    assert unknown_job.messages == ["No job exists with jobId : nope"]


# --- slots ---------------------------------------------------------------------------------


async def test_slots_for_a_job(api: Api, emu: ServicesEmulator, clock: FakeClock) -> None:
    job = pending_job(emu)
    answer = await api.call(SLOTS_FOR_JOB, {"serviceJobId": job.service_job_id})
    assert answer.status == 200
    report = answer.json["payload"]
    assert report["schedulingType"] in ("REAL_TIME_SCHEDULING", "NON_REAL_TIME_SCHEDULING")
    slots = report["appointmentSlots"]
    assert slots
    first = datetime.fromisoformat(slots[0]["startTime"])
    assert first > clock.now()
    assert first.minute == 0
    assert all(s["capacity"] >= 0 for s in slots)
    # Booking a slot takes one unit of the store's capacity there.
    chosen = slots[0]
    await api.call(ADD, {"serviceJobId": job.service_job_id}, body=body(chosen["startTime"]))
    again = await api.call(
        SLOTS_FOR_JOB,
        {"serviceJobId": job.service_job_id},
        query={"startTime": chosen["startTime"], "endTime": chosen["endTime"]},
    )
    assert again.json["payload"]["appointmentSlots"][0]["capacity"] == chosen["capacity"] - 1


async def test_slots_for_a_store_and_asin(api: Api, emu: ServicesEmulator) -> None:
    shop = next(s for s in emu.store.stores.values() if s.marketplace_id == US)
    asin = next(iter(shop.services))
    answer = await api.call(SLOTS, query={"asin": asin, "storeId": shop.store_id})
    assert answer.status == 200
    assert answer.json["payload"]["appointmentSlots"]
    not_offered = await api.call(SLOTS, query={"asin": "B000000000", "storeId": shop.store_id})
    assert not_offered.status == 422
    unknown = await api.call(SLOTS, query={"asin": asin, "storeId": "nope"})
    assert (unknown.status, unknown.messages) == (422, ["No store exists with storeId : nope"])
    missing = await api.call(SLOTS, query={"storeId": shop.store_id})
    assert missing.messages == ["Missing or invalid request parameters: [asin]"]


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"endTime": "20-21-04-04T01:00:00Z"}, "End Time is not a valid ISO date/time object"),
        (
            {"startTime": "2026-07-01T05:00:00Z", "endTime": "2026-07-01T02:00:00Z"},
            "End Time should be after Start Time",
        ),
        ({"startTime": "2026-07-01T05:00:00Z"}, "Start Time and End Time must be given together"),
        (
            {"startTime": "2026-07-01T00:00:00Z", "endTime": "2026-10-01T00:00:00Z"},
            "Maximum range of appointment slots can be 90 days",
        ),
    ],
)
async def test_slot_windows_are_checked(
    api: Api, emu: ServicesEmulator, window: dict[str, str], message: str
) -> None:
    answer = await api.call(
        SLOTS_FOR_JOB, {"serviceJobId": pending_job(emu).service_job_id}, query=window
    )
    assert (answer.status, answer.messages) == (400, [message])
    shop = next(iter(emu.store.stores.values()))
    ranged = await api.call(
        SLOTS,
        query={"asin": next(iter(shop.services)), "storeId": shop.store_id, **window},
        marketplace=shop.marketplace_id,
    )
    assert ranged.status == 400
