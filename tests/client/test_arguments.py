"""Bad arguments to the other resources: a ValueError or TypeError naming the argument,
raised before anything is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aioresponses import aioresponses

from spapi_services import ServicesClient
from spapi_services.models import (
    AvailabilityRecord,
    Recurrence,
    Reservation,
    ReservationType,
)

from ._helpers import ClientFactory

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
NAIVE = datetime(2026, 3, 1, 9, 30)
HOUR = timedelta(hours=1)
RECORD = AvailabilityRecord(start_time=T0, end_time=T0 + HOUR)
RESERVATION = Reservation(type=ReservationType.BREAK, availability=RECORD)

Call = Callable[[ServicesClient], Awaitable[Any]]


async def _pages(iterator: Any) -> list[Any]:
    return [page async for page in iterator]


CASES: list[tuple[str, Call, type[Exception], str]] = [
    ("empty job id", lambda c: c.service_jobs.get(""), ValueError, "service_job_id"),
    ("long job id", lambda c: c.service_jobs.get("x" * 101), ValueError, "service_job_id"),
    ("job id not str", lambda c: c.service_jobs.get(12), TypeError, "service_job_id"),
    ("dot-dot job id", lambda c: c.service_jobs.get(".."), ValueError, "service_job_id"),
    ("dot job id", lambda c: c.service_jobs.complete("."), ValueError, "service_job_id"),
    (
        "dot-dot appointment id",
        lambda c: c.appointments.assign_resources("job", "..", ["t"]),
        ValueError,
        "appointment_id",
    ),
    (
        "dot-dot reservation id",
        lambda c: c.reservations.cancel(".."),
        ValueError,
        "reservation_id",
    ),
    (
        "lower-case reason",
        lambda c: c.service_jobs.cancel("job", reason_code="v1"),
        ValueError,
        "reason_code",
    ),
    (
        "naive start",
        lambda c: c.appointments.add("job", start_time=NAIVE),
        ValueError,
        "start_time",
    ),
    (
        "zero duration",
        lambda c: c.appointments.add("job", start_time=T0, duration_minutes=0),
        ValueError,
        "duration_minutes",
    ),
    (
        "empty reschedule reason",
        lambda c: c.appointments.reschedule("job", "appt", start_time=T0, reason_code=""),
        ValueError,
        "reason_code",
    ),
    (
        "no resources",
        lambda c: c.appointments.assign_resources("job", "appt", []),
        ValueError,
        "resource_ids",
    ),
    (
        "resource twice",
        lambda c: c.appointments.assign_resources("job", "appt", ["a", "a"]),
        ValueError,
        "resource_ids[1]",
    ),
    (
        "resources as a string",
        lambda c: c.appointments.assign_resources("job", "appt", "tech-7"),
        TypeError,
        "resource_ids",
    ),
    (
        "nothing to record",
        lambda c: c.appointments.set_fulfillment_data("job", "appt"),
        ValueError,
        "fulfillment_time",
    ),
    (
        "fulfillment ends first",
        lambda c: c.appointments.set_fulfillment_data(
            "job", "appt", fulfillment_time=(T0, T0 - HOUR)
        ),
        ValueError,
        "fulfillment_time",
    ),
    (
        "document of the wrong type",
        lambda c: c.appointments.set_fulfillment_data("job", "appt", documents=[{"id": 1}]),
        TypeError,
        "documents[0]",
    ),
    (
        "slot window half given",
        lambda c: c.appointments.slots_for_job("job", start_time=T0),
        ValueError,
        "end_time",
    ),
    (
        "slot window too wide",
        lambda c: c.appointments.slots(
            asin="B00EXAMPLE", store_id="s", start_time=T0, end_time=T0 + timedelta(days=91)
        ),
        ValueError,
        "end_time",
    ),
    (
        "slot window inverted",
        lambda c: c.appointments.slots_for_job("job", start_time=T0, end_time=T0 - HOUR),
        ValueError,
        "end_time",
    ),
    (
        "empty schedule",
        lambda c: c.schedules.update("res", []),
        ValueError,
        "schedules",
    ),
    (
        "schedule of dicts",
        lambda c: c.schedules.update("res", [{"startTime": "x"}]),
        TypeError,
        "schedules[0]",
    ),
    (
        "schedule capacity 0",
        lambda c: c.schedules.update(
            "res", [AvailabilityRecord(start_time=T0, end_time=T0 + HOUR, capacity=0)]
        ),
        ValueError,
        "schedules[0].capacity",
    ),
    (
        "recurrence day 32",
        lambda c: c.schedules.update(
            "res",
            [
                AvailabilityRecord(
                    start_time=T0,
                    end_time=T0 + HOUR,
                    recurrence=Recurrence(end_time=T0 + HOUR, days_of_month=[32]),
                )
            ],
        ),
        ValueError,
        "days_of_month[0]",
    ),
    (
        "capacity window inverted",
        lambda c: _pages(c.schedules.range_capacity("res", start_time=T0, end_time=T0)),
        ValueError,
        "end_time",
    ),
    (
        "unknown capacity type",
        lambda c: _pages(
            c.schedules.range_capacity(
                "res", start_time=T0, end_time=T0 + HOUR, capacity_types=["FREE"]
            )
        ),
        ValueError,
        "capacity_types[0]",
    ),
    (
        "slot duration 7",
        lambda c: _pages(
            c.schedules.fixed_capacity("res", start_time=T0, end_time=T0 + HOUR, slot_duration=7)
        ),
        ValueError,
        "slot_duration",
    ),
    (
        "empty capacity page token",
        lambda c: _pages(
            c.schedules.range_capacity("res", start_time=T0, end_time=T0 + HOUR, page_token="")
        ),
        ValueError,
        "page_token",
    ),
    (
        "reservation not a model",
        lambda c: c.reservations.create("res", {"type": "BREAK"}),
        TypeError,
        "reservation",
    ),
    (
        "reservation naive time",
        lambda c: c.reservations.update(
            "rid",
            "res",
            Reservation(
                type=ReservationType.BREAK,
                availability=AvailabilityRecord(start_time=NAIVE, end_time=T0),
            ),
        ),
        ValueError,
        "start_time",
    ),
    (
        "document too large",
        lambda c: c.documents.create_upload_destination(
            content_type="PDF", content_length=5_242_881
        ),
        ValueError,
        "content_length",
    ),
    (
        "hex md5",
        lambda c: c.documents.create_upload_destination(
            content_type="PDF", content_length=10, content_md5="0" * 32
        ),
        ValueError,
        "content_md5",
    ),
    (
        "unknown content type",
        lambda c: c.documents.create_upload_destination(content_type="DOCX", content_length=10),
        ValueError,
        "content_type",
    ),
]


@pytest.mark.parametrize(("call", "exc", "name"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_arguments_fail_before_any_request(
    mock_api: aioresponses,
    make_client: ClientFactory,
    call: Call,
    exc: type[Exception],
    name: str,
) -> None:
    client = make_client()
    with pytest.raises(exc) as caught:
        await call(client)
    assert name in str(caught.value), str(caught.value)
    assert mock_api.requests == {}


async def test_marketplace_required_only_where_the_route_takes_it(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    client = make_client(marketplace_id=None)
    with pytest.raises(ValueError, match="marketplace_id"):
        await client.reservations.cancel("rid")
    with pytest.raises(ValueError, match="marketplace_id"):
        await client.appointments.slots_for_job("job")
    with pytest.raises(ValueError, match="marketplace_id"):
        client.schedules.range_capacity("res", start_time=T0, end_time=T0 + HOUR)
    assert mock_api.requests == {}
