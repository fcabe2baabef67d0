"""setAppointmentFulfillmentData without documents: times, resources, arrival window,
and the job and appointment checks, all answered with bare-array errors."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.store import AppointmentRecord, JobRecord
from spapi_services.emulator.times import format_datetime

from ._helpers import Api

FULFIL = "setAppointmentFulfillmentData"
GET = "getServiceJobByServiceJobId"
AGAIN = "Please check the input again"


def open_appointment(emu: ServicesEmulator) -> tuple[JobRecord, AppointmentRecord]:
    for job in emu.store.find_jobs(status="NOT_SERVICED"):
        appointment = job.active_appointment()
        if appointment is not None and appointment.technicians:
            return job, appointment
    raise AssertionError("no staffed appointment in the seed")


def path_of(job: JobRecord, appointment: AppointmentRecord) -> dict[str, str]:
    return {"serviceJobId": job.service_job_id, "appointmentId": appointment.appointment_id}


async def test_times_and_resources_are_recorded(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    job, appointment = open_appointment(emu)
    tech_id, tech_name = appointment.technicians[0]
    start = format_datetime(clock.now() - timedelta(hours=3))
    end = format_datetime(clock.now() - timedelta(hours=2))
    answer = await api.call(
        FULFIL,
        path_of(job, appointment),
        body={
            "fulfillmentTime": {"startTime": start, "endTime": end},
            "appointmentResources": [{"resourceId": tech_id}],
            "estimatedArrivalTime": {"startTime": start, "endTime": end},
        },
    )
    assert (answer.status, answer.text) == (204, ""), answer.text
    assert appointment.fulfillment is not None
    assert appointment.fulfillment["fulfillmentTime"] == {"startTime": start, "endTime": end}
    got = (await api.call(GET, {"serviceJobId": job.service_job_id})).json["payload"]
    (mine,) = [a for a in got["appointments"] if a["appointmentId"] == appointment.appointment_id]
    assert mine["poa"]["technicians"] == [{"technicianId": tech_id, "name": tech_name}]


async def test_no_artifacts_is_a_bare_400(api: Api, emu: ServicesEmulator) -> None:
    answer = await api.call(FULFIL, path_of(*open_appointment(emu)), body={})
    assert answer.status == 400
    assert answer.json == [
        {
            "code": "InvalidInput",
            "message": "No fulfillment artifacts provided in JSON payload.",
            "details": "",
        }
    ]
    assert answer.headers["x-amzn-RateLimit-Limit"] == "5.0"


async def test_schema_errors_are_bare_too(api: Api, emu: ServicesEmulator) -> None:
    answer = await api.call(
        FULFIL, path_of(*open_appointment(emu)), body={"appointmentResources": "x"}
    )
    assert answer.status == 400
    assert isinstance(answer.json, list)
    too_long = await api.call(FULFIL, {"serviceJobId": "x" * 101, "appointmentId": "a"}, body={})
    assert too_long.status == 400
    assert isinstance(too_long.json, list)


def relative(clock: FakeClock, hours: float, offset: str = "Z") -> str:
    when = clock.now() + timedelta(hours=hours)
    text = when.strftime("%Y-%m-%dT%H:%M:%S.000")
    return text + offset


@pytest.mark.parametrize(
    ("times", "message"),
    [
        ({"endTime": -2}, f"Appointment start time is required. {AGAIN}."),
        ({"startTime": (-3, "+05:30")}, f"Appointment end time is required. {AGAIN}."),
        (
            {"startTime": (-30, "+05:30"), "endTime": -2},
            "ISO8601 time {startTime} is not in UTC format. Please provide time in UTC",
        ),
        (
            {"startTime": "2021-01-01T10-00:00.000Z", "endTime": -2},
            "Could not parse given time input 2021-01-01T10-00:00.000Z. "
            "Please provide time in ISO8601 format",
        ),
        (
            {"startTime": 5, "endTime": -2},
            f"Appointment start time should not be in future. {AGAIN}",
        ),
        (
            {"startTime": (-30, "+05:30"), "endTime": 5},
            f"Appointment end time should not be in future. {AGAIN}",
        ),
        (
            {"startTime": -2, "endTime": -3},
            f"Appointment end time should be after start time. {AGAIN}.",
        ),
    ],
)
async def test_fulfilment_times_in_the_sandboxs_order(
    api: Api, emu: ServicesEmulator, clock: FakeClock, times: dict[str, Any], message: str
) -> None:
    wire = {}
    for key, value in times.items():
        if isinstance(value, tuple):
            wire[key] = relative(clock, value[0], value[1])
        elif isinstance(value, int):
            wire[key] = relative(clock, value)
        else:
            wire[key] = value
    answer = await api.call(FULFIL, path_of(*open_appointment(emu)), body={"fulfillmentTime": wire})
    assert answer.status == 422
    assert answer.json == [
        {"code": "InvalidInput", "message": message.format(**wire), "details": ""}
    ]


async def test_several_problems_are_reported_together(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    answer = await api.call(
        FULFIL,
        path_of(*open_appointment(emu)),
        body={
            "fulfillmentTime": {"endTime": relative(clock, -1)},
            "appointmentResources": [{}, {"resourceId": "TNOSUCHTECH"}],
            "fulfillmentDocuments": [{"uploadDestinationId": "nope", "contentSha256": "x"}],
        },
    )
    assert answer.status == 422
    assert answer.messages == [
        f"One or more resources provided is invalid. {AGAIN}.",
        f"Appointment start time is required. {AGAIN}.",
        "Failed to process proof of appointment input. "
        "Reason: Input document id does not exist. Please check the input",
    ]
    unknown = await api.call(
        FULFIL,
        path_of(*open_appointment(emu)),
        body={"appointmentResources": [{"resourceId": "TNOSUCHTECH"}]},
    )
    assert unknown.messages == [
        f"One or more resources provided does not exist or is deleted. {AGAIN}."
    ]


async def test_arrival_window_needs_both_ends(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    answer = await api.call(
        FULFIL,
        path_of(*open_appointment(emu)),
        body={"estimatedArrivalTime": {"startTime": relative(clock, 1)}},
    )
    assert answer.status == 422
    assert answer.messages[0].startswith(
        "Failed to process input. Reason: ETA start and end time both are mandatory"
    )
    future = await api.call(
        FULFIL,
        path_of(*open_appointment(emu)),
        body={
            "estimatedArrivalTime": {"startTime": relative(clock, 1), "endTime": relative(clock, 2)}
        },
    )
    assert future.status == 204


async def test_job_and_appointment_must_be_open(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    payload = {
        "fulfillmentTime": {"startTime": relative(clock, -3), "endTime": relative(clock, -2)}
    }
    unknown = await api.call(
        FULFIL, {"serviceJobId": "nope", "appointmentId": "nope1"}, body=payload
    )
    assert unknown.json == [
        {"code": "InvalidInput", "message": "No job exist with jobId : nope", "details": ""}
    ]
    done = emu.store.find_jobs(status="COMPLETED")[0]
    closed = await api.call(FULFIL, path_of(done, done.appointments[0]), body=payload)
    assert closed.messages == [
        f"Job with id {done.service_job_id} can not be updated. "
        "Please check if the job is in valid status."
    ]
    job, appointment = open_appointment(emu)
    missing = await api.call(
        FULFIL, {"serviceJobId": job.service_job_id, "appointmentId": "nope1"}, body=payload
    )
    assert missing.messages == [f"Appointment with id nope1 is not present in the job. {AGAIN}."]
    appointment.status = "CANCELLED"
    emu.store.touch_job(job)
    cancelled = await api.call(FULFIL, path_of(job, appointment), body=payload)
    assert cancelled.messages == [
        f"Appointment with appointment id {appointment.appointment_id} "
        f"is not valid to update. {AGAIN}"
    ]
