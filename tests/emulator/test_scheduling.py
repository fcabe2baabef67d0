"""Schedules, reservations and capacity of resources."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.store import ResourceRecord
from spapi_services.emulator.times import format_datetime

from ._helpers import Api

SCHEDULE = "updateSchedule"
CREATE = "createReservation"
UPDATE = "updateReservation"
CANCEL = "cancelReservation"
RANGE = "getRangeSlotCapacity"
FIXED = "getFixedSlotCapacity"


def technician(emu: ServicesEmulator) -> ResourceRecord:
    return next(r for r in emu.store.resources.values() if r.kind == "TECHNICIAN")


def day(clock: FakeClock, days: int, hour: int = 0) -> datetime:
    return (clock.now() + timedelta(days=days)).replace(
        hour=hour, minute=0, second=0, microsecond=0
    )


def window(start: datetime, end: datetime, **extra: Any) -> dict[str, Any]:
    return {"startTime": format_datetime(start), "endTime": format_datetime(end), **extra}


async def test_a_new_schedule_overrides_what_it_overlaps(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    tech = technician(emu)
    start = day(clock, 5, 9)
    record = window(start, start + timedelta(hours=4), capacity=2)
    answer = await api.call(
        SCHEDULE, {"resourceId": tech.resource_id}, body={"schedules": [record]}
    )
    assert answer.status == 200, answer.text
    (entry,) = answer.json["payload"]
    assert entry["warnings"][0]["code"] == "ScheduleOverride"
    assert len(tech.schedule) == 1
    again = await api.call(
        SCHEDULE,
        {"resourceId": tech.resource_id},
        body={"schedules": [window(start + timedelta(days=3), start + timedelta(days=3, hours=2))]},
    )
    assert (again.status, again.json) == (200, {})
    assert len(tech.schedule) == 2


async def test_schedule_with_recurrence_and_odd_offsets(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    tech = technician(emu)
    body = {
        "schedules": [
            {
                "startTime": "2026-06-22T08:00:00.00-07",
                "endTime": "2026-06-22T16:00:00.00-07",
                "recurrence": {
                    "endTime": "2026-07-31T23:59:00.00-07",
                    "daysOfWeek": ["MONDAY", "TUESDAY"],
                },
            }
        ]
    }
    answer = await api.call(SCHEDULE, {"resourceId": tech.resource_id}, body=body)
    assert answer.status == 200, answer.text
    capacity = await api.call(
        RANGE,
        {"resourceId": tech.resource_id},
        body={"startDateTime": "2026-06-22T00:00:00Z", "endDateTime": "2026-06-25T00:00:00Z"},
    )
    (scheduled,) = capacity.json["capacities"]
    open_ranges = [
        (s["startDateTime"], s["endDateTime"]) for s in scheduled["slots"] if s["capacity"] == 1
    ]
    assert open_ranges == [
        ("2026-06-22T15:00:00Z", "2026-06-22T23:00:00Z"),
        ("2026-06-23T15:00:00Z", "2026-06-23T23:00:00Z"),
    ]


async def test_schedule_errors(api: Api, emu: ServicesEmulator, clock: FakeClock) -> None:
    tech = technician(emu)
    unknown = await api.call(
        SCHEDULE,
        {"resourceId": "nobody"},
        body={"schedules": [window(day(clock, 1), day(clock, 2))]},
    )
    # The sandbox's quirk: an unknown resource is a 200 whose body carries errors.
    assert unknown.status == 200
    assert unknown.errors[0]["message"] == "Invalid request parameters: [resourceId]"
    empty = await api.call(SCHEDULE, {"resourceId": tech.resource_id}, body={"schedules": []})
    assert (empty.status, empty.messages) == (
        400,
        ["Missing or invalid request parameters: [schedules]"],
    )
    inverted = await api.call(
        SCHEDULE,
        {"resourceId": tech.resource_id},
        body={"schedules": [window(day(clock, 2), day(clock, 1))]},
    )
    assert inverted.status == 400
    assert "endTime must be after" in inverted.errors[0]["details"]
    bad_day = await api.call(
        SCHEDULE,
        {"resourceId": tech.resource_id},
        body={
            "schedules": [
                window(
                    day(clock, 1),
                    day(clock, 2),
                    recurrence={"endTime": "2027-01-01T00:00:00Z", "daysOfWeek": ["FUNDAY"]},
                )
            ]
        },
    )
    assert bad_day.status == 400


async def test_reservations_lifecycle(api: Api, emu: ServicesEmulator, clock: FakeClock) -> None:
    tech = technician(emu)
    start = day(clock, 6, 15)
    reservation = {"type": "BREAK", "availability": window(start, start + timedelta(hours=1))}
    created = await api.call(
        CREATE, body={"resourceId": tech.resource_id, "reservation": reservation}
    )
    assert created.status == 200, created.text
    record = created.json["payload"]["reservation"]
    reservation_id = record["reservationId"]
    assert record["type"] == "BREAK"
    assert record["availability"]["startTime"] == format_datetime(start)
    assert emu.store.reservations[reservation_id].resource_id == tech.resource_id

    moved = {
        "type": "TRAINING",
        "availability": window(start + timedelta(hours=2), start + timedelta(hours=3)),
    }
    updated = await api.call(
        UPDATE,
        {"reservationId": reservation_id},
        body={"resourceId": tech.resource_id, "reservation": moved},
    )
    assert updated.status == 200
    assert updated.json["payload"]["reservation"]["type"] == "TRAINING"

    cancelled = await api.call(CANCEL, {"reservationId": reservation_id})
    assert (cancelled.status, cancelled.text) == (204, "")
    assert cancelled.headers["x-amzn-RateLimit-Limit"] == "5.0"
    assert reservation_id not in emu.store.reservations
    again = await api.call(CANCEL, {"reservationId": reservation_id})
    assert (again.status, again.messages) == (404, ["Reservation does not exist"])
    assert again.headers["x-amzn-RateLimit-Limit"] == "5.0"


async def test_reservation_errors(api: Api, emu: ServicesEmulator, clock: FakeClock) -> None:
    tech = technician(emu)
    start = day(clock, 6, 15)
    reservation = {"type": "BREAK", "availability": window(start, start + timedelta(hours=1))}
    missing = await api.call(
        UPDATE,
        {"reservationId": "not-existent-456"},
        body={"resourceId": tech.resource_id, "reservation": reservation},
    )
    assert (missing.status, missing.messages) == (
        404,
        ["Could not find reservation with ID: [not-existent-456]"],
    )
    unknown = await api.call(CREATE, body={"resourceId": "nobody", "reservation": reservation})
    assert unknown.status == 200
    assert unknown.errors[0]["message"] == "Invalid request parameters: [resourceId]"
    empty = await api.call(CREATE, body={"resourceId": tech.resource_id, "reservation": {}})
    assert (empty.status, empty.messages) == (
        400,
        ["Missing or invalid request parameters: [reservation]"],
    )
    wrong_type = await api.call(
        CREATE, body={"resourceId": tech.resource_id, "reservation": {**reservation, "type": "NAP"}}
    )
    assert wrong_type.status == 400
    no_marketplace = await api.call(
        CREATE, body={"resourceId": tech.resource_id, "reservation": reservation}, marketplace=None
    )
    assert no_marketplace.messages == ["Missing or invalid request parameters: [marketplaceIds]"]


async def test_capacity_reflects_reservations_and_appointments(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    tech = technician(emu)
    start = day(clock, 5, 0)
    await api.call(
        SCHEDULE,
        {"resourceId": tech.resource_id},
        body={
            "schedules": [
                window(start + timedelta(hours=8), start + timedelta(hours=12), capacity=3)
            ]
        },
    )
    await api.call(
        CREATE,
        body={
            "resourceId": tech.resource_id,
            "reservation": {
                "type": "BREAK",
                "availability": window(start + timedelta(hours=9), start + timedelta(hours=10)),
            },
        },
    )
    body = {
        "startDateTime": format_datetime(start + timedelta(hours=8)),
        "endDateTime": format_datetime(start + timedelta(hours=12)),
        "capacityTypes": [
            "SCHEDULED_CAPACITY",
            "AVAILABLE_CAPACITY",
            "RESERVED_CAPACITY",
            "ENCUMBERED_CAPACITY",
        ],
    }
    answer = await api.call(RANGE, {"resourceId": tech.resource_id}, body=body)
    assert answer.status == 200, answer.text
    by_type = {
        c["capacityType"]: [
            (s["startDateTime"][11:16], s["endDateTime"][11:16], s["capacity"]) for s in c["slots"]
        ]
        for c in answer.json["capacities"]
    }
    assert by_type["SCHEDULED_CAPACITY"] == [("08:00", "12:00", 3)]
    assert by_type["RESERVED_CAPACITY"] == [
        ("08:00", "09:00", 0),
        ("09:00", "10:00", 1),
        ("10:00", "12:00", 0),
    ]
    assert by_type["AVAILABLE_CAPACITY"] == [
        ("08:00", "09:00", 3),
        ("09:00", "10:00", 2),
        ("10:00", "12:00", 3),
    ]
    assert by_type["ENCUMBERED_CAPACITY"] == [("08:00", "12:00", 0)]
    fixed = await api.call(
        FIXED, {"resourceId": tech.resource_id}, body={**body, "slotDuration": 60}
    )
    assert fixed.status == 200
    assert fixed.json["slotDuration"] == 60
    assert [s["availableCapacity"] for s in fixed.json["capacities"]] == [3, 2, 3, 3]
    assert [s["reservedCapacity"] for s in fixed.json["capacities"]] == [0, 1, 0, 0]
    default = await api.call(
        FIXED,
        {"resourceId": tech.resource_id},
        body={"startDateTime": body["startDateTime"], "endDateTime": body["endDateTime"]},
    )
    assert default.json["slotDuration"] == 30
    assert set(default.json["capacities"][0]) == {"startDateTime", "scheduledCapacity"}


@pytest.mark.parametrize("operation", [RANGE, FIXED])
async def test_capacity_pages_with_next_page_tokens(
    api: Api, emu: ServicesEmulator, operation: str
) -> None:
    tech = technician(emu)
    body: dict[str, Any] = {
        "startDateTime": "2026-06-01T00:00:00Z",
        "endDateTime": "2026-07-20T00:00:00Z",
        "capacityTypes": ["AVAILABLE_CAPACITY"],
    }
    if operation == FIXED:
        body["slotDuration"] = 60
    seen: list[Any] = []
    query: dict[str, str] = {}
    tokens = []
    while True:
        answer = await api.call(operation, {"resourceId": tech.resource_id}, query=query, body=body)
        assert answer.status == 200, answer.text
        seen.extend(
            answer.json["capacities"]
            if operation == FIXED
            else answer.json["capacities"][0]["slots"]
        )
        token = answer.json.get("nextPageToken")
        if not token:
            break
        tokens.append(token)
        query = {"nextPageToken": token}
    assert len(tokens) >= 2
    assert all("+" in t and "/" in t and t.endswith("=") for t in tokens)
    if operation == FIXED:
        assert len(seen) == 49 * 24
    else:
        assert seen[0]["startDateTime"] == "2026-06-01T00:00:00Z"
        assert seen[-1]["endDateTime"] == "2026-07-20T00:00:00Z"
    other = await api.call(
        operation,
        {"resourceId": tech.resource_id},
        query={"nextPageToken": tokens[0]},
        body={**body, "endDateTime": "2026-07-21T00:00:00Z"},
    )
    assert other.status == 400


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"startDateTime": "2021-04-04T00:00:00Z"}, "startDateTime or endDateTime are not present"),
        (
            {"startDateTime": "2021-04-04T02:00:00Z", "endDateTime": "2021-04-04T00:00:00Z"},
            "endDateTime should be after Start Time",
        ),
        (
            {"startDateTime": "2021-0", "endDateTime": "2021-04-04T00:00:00Z"},
            "startDateTime is not a valid ISO date/time object",
        ),
        (
            {
                "startDateTime": "2021-04-04T00:00:00Z",
                "endDateTime": "2021-04-04T02:00:00Z",
                "slotDuration": 400,
            },
            "Slot duration is not valid, it should be a multiple of 5 and within allowed range.",
        ),
        (
            {
                "startDateTime": "2021-04-04T00:00:00Z",
                "endDateTime": "2021-04-04T02:00:00Z",
                "slotDuration": 7,
            },
            "Slot duration is not valid, it should be a multiple of 5 and within allowed range.",
        ),
    ],
)
async def test_capacity_errors_are_worded_like_the_sandbox(
    api: Api, emu: ServicesEmulator, body: dict[str, Any], reason: str
) -> None:
    answer = await api.call(FIXED, {"resourceId": technician(emu).resource_id}, body=body)
    assert answer.status == 400
    assert answer.errors == [
        {
            "code": "InvalidInput",
            "message": "This is invalid input",
            "details": f"Received the following errors: [{reason}]",
        }
    ]


async def test_capacity_of_an_unknown_resource_is_404(api: Api) -> None:
    answer = await api.call(
        RANGE,
        {"resourceId": "nobody"},
        body={"startDateTime": "2021-04-04T00:00:00Z", "endDateTime": "2021-04-05T00:00:00Z"},
    )
    assert answer.status == 404
