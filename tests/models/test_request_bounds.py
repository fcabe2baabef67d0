"""Client-side bounds: each is refused naming the field, and the value just inside passes."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from spapi_services._validation import (
    check_enum,
    check_id,
    check_int,
    check_items,
    check_request,
    check_string,
)
from spapi_services.models import (
    AppointmentResource,
    AppointmentStatus,
    AppointmentTimeInput,
    AssignAppointmentResourcesRequest,
    AvailabilityRecord,
    CapacityType,
    ContentType,
    CreateReservationRequest,
    DayOfWeek,
    FixedSlotCapacityQuery,
    ItemStatus,
    Recurrence,
    RescheduleAppointmentRequest,
    Reservation,
    ReservationType,
    ServiceJobStatus,
    ServiceUploadDocument,
    UpdateScheduleRequest,
)

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
MD5_B64 = base64.b64encode(hashlib.md5(b"document").digest()).decode()
MD5_HEX = hashlib.md5(b"document").hexdigest()


def availability(capacity: Any = None, days_of_month: Any = None) -> AvailabilityRecord:
    recurrence = None
    if days_of_month is not None:
        recurrence = Recurrence(end_time=T1, days_of_month=days_of_month)
    return AvailabilityRecord(start_time=T0, end_time=T1, capacity=capacity, recurrence=recurrence)


def fixed_query(slot_duration: Any) -> FixedSlotCapacityQuery:
    return FixedSlotCapacityQuery(start_date_time=T0, end_date_time=T1, slot_duration=slot_duration)


def upload(content_length: Any = 1024, content_md5: Any = None) -> ServiceUploadDocument:
    return ServiceUploadDocument(
        content_type=ContentType.PDF, content_length=content_length, content_md5=content_md5
    )


def assign(resources: Any) -> AssignAppointmentResourcesRequest:
    return AssignAppointmentResourcesRequest(resources=resources)


def assign_one(resource_id: Any) -> AssignAppointmentResourcesRequest:
    return assign(
        [AppointmentResource(resource_id="first"), AppointmentResource(resource_id=resource_id)]
    )


def appointment_time(minutes: Any) -> AppointmentTimeInput:
    return AppointmentTimeInput(start_time=T0, duration_in_minutes=minutes)


def reschedule(code: Any) -> RescheduleAppointmentRequest:
    return RescheduleAppointmentRequest(
        appointment_time=AppointmentTimeInput(start_time=T0), reschedule_reason_code=code
    )


def schedules(records: Any) -> UpdateScheduleRequest:
    return UpdateScheduleRequest(schedules=records)


def reservation_for(resource_id: Any) -> CreateReservationRequest:
    return CreateReservationRequest(
        resource_id=resource_id,
        reservation=Reservation(type=ReservationType.BREAK, availability=availability()),
    )


# (build, field path in the message, values refused, values just inside)
BOUNDS: list[tuple[Callable[[Any], Any], str, list[Any], list[Any]]] = [
    (availability, "body.capacity", [0, -1], [1, 2]),
    (
        lambda days: availability(days_of_month=days),
        "body.recurrence.days_of_month[1]",
        [[1, 0], [1, 32]],
        [[1, 31], [31, 1]],
    ),
    (fixed_query, "body.slot_duration", [0, 4, 7, 361, 365, 400], [5, 10, 355, 360]),
    (upload, "body.content_length", [0, 5_242_881], [1, 5_242_880]),
    (
        lambda md5: upload(content_md5=md5),
        "body.content_md5",
        [
            MD5_HEX,
            MD5_B64.rstrip("="),
            MD5_B64 + "\n",
            MD5_B64[:-3] + "===",
            "",
            "a" * 22 + "=="[:1],
        ],
        [MD5_B64, "97WrSKv9ffHkDopCdB32mw=="],
    ),
    (assign, "body.resources", [[], ()], [[AppointmentResource(resource_id="r")]]),
    (assign_one, "body.resources[1].resource_id", ["", "x" * 101], ["x", "x" * 100, None]),
    (appointment_time, "body.duration_in_minutes", [0, -30], [1, None]),
    (reschedule, "body.reschedule_reason_code", [""], ["R", "R1"]),
    (schedules, "body.schedules", [[], ()], [[availability()]]),
    (reservation_for, "body.resource_id", ["", "x" * 101], ["x", "x" * 100]),
]


def _cases(refused: bool) -> list[Any]:
    cases = []
    for build, path, bad, good in BOUNDS:
        for value in bad if refused else good:
            cases.append(pytest.param(build, path, value, id=f"{path}={value!r}"[:60]))
    return cases


@pytest.mark.parametrize(("build", "path", "value"), _cases(refused=True))
def test_out_of_bounds_is_refused_naming_the_field(
    build: Callable[[Any], Any], path: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=r"must|does not match") as caught:
        check_request(build(value), "body")
    message = str(caught.value)
    assert message.startswith(path + ": "), message


@pytest.mark.parametrize(("build", "path", "value"), _cases(refused=False))
def test_just_inside_the_bounds_is_accepted(
    build: Callable[[Any], Any], path: str, value: Any
) -> None:
    check_request(build(value), "body")


@pytest.mark.parametrize(
    ("message_part", "build", "value"),
    [
        ("must be at least 5", fixed_query, 4),
        ("must be a multiple of 5", fixed_query, 7),
        ("must be at most 360", fixed_query, 365),
        ("must be at most 5242880", upload, 5_242_881),
        ("does not match the pattern", lambda md5: upload(content_md5=md5), MD5_HEX),
        ("must not be empty", assign, []),
        ("must be at most 100 characters", assign_one, "x" * 101),
        ("must be at least 1", availability, 0),
    ],
)
def test_the_message_states_the_rule(
    message_part: str, build: Callable[[Any], Any], value: Any
) -> None:
    with pytest.raises(ValueError, match=re.escape(message_part)):
        check_request(build(value), "body")


@pytest.mark.parametrize(
    ("build", "value", "path"),
    [
        (availability, "1", "body.capacity"),
        (availability, True, "body.capacity"),
        (availability, 1.0, "body.capacity"),
        (upload, "1024", "body.content_length"),
        (assign, "r1", "body.resources"),
        (assign, ["r1"], "body.resources[0]"),
        (assign_one, 7, "body.resources[1].resource_id"),
        (
            lambda days: availability(days_of_month=days),
            [1, "2"],
            "body.recurrence.days_of_month[1]",
        ),
    ],
)
def test_wrong_kinds_are_type_errors_naming_the_field(
    build: Callable[[Any], Any], value: Any, path: str
) -> None:
    with pytest.raises(TypeError) as caught:
        check_request(build(value), "body")
    assert str(caught.value).startswith(path + ": ")


def test_a_missing_required_value_is_named() -> None:
    body = RescheduleAppointmentRequest(
        appointment_time=AppointmentTimeInput(start_time=T0),
        reschedule_reason_code=None,  # type: ignore[arg-type]
    )
    with pytest.raises(ValueError, match=r"^body\.reschedule_reason_code: is required$"):
        check_request(body, "body")


def test_enums_inside_requests_are_checked() -> None:
    query = FixedSlotCapacityQuery(
        start_date_time=T0,
        end_date_time=T1,
        capacity_types=[CapacityType.SCHEDULED_CAPACITY, "SCHEDULED_CAPACTY"],  # type: ignore[list-item]
    )
    with pytest.raises(ValueError, match=r"^body\.capacity_types\[1\]: 'SCHEDULED_CAPACTY' is not"):
        check_request(query, "body")
    recurrence = Recurrence(end_time=T1, days_of_week=[DayOfWeek.MONDAY, "FRIDAY"])  # type: ignore[list-item]
    check_request(recurrence, "body")


def test_check_request_wants_a_model() -> None:
    with pytest.raises(TypeError, match="expected a request model"):
        check_request({"resources": []}, "body")


# --- the single-value checkers -------------------------------------------------------------


def test_check_id() -> None:
    assert check_id("service_job_id", "job-1") == "job-1"
    assert check_id("service_job_id", "x" * 100) == "x" * 100
    with pytest.raises(ValueError, match=r"^service_job_id: must not be empty$"):
        check_id("service_job_id", "")
    with pytest.raises(ValueError, match=r"^service_job_id: must be at most 100 characters"):
        check_id("service_job_id", "x" * 101)
    with pytest.raises(TypeError, match=r"^service_job_id: expected a string, got int"):
        check_id("service_job_id", 42)
    with pytest.raises(TypeError, match=r"^service_job_id: expected a string, got NoneType"):
        check_id("service_job_id", None)


def test_check_string() -> None:
    rule = {"min_length": 1, "max_length": 100, "pattern": r"^[A-Z0-9_]*$"}
    assert check_string("cancellation_reason_code", "V1", **rule) == "V1"
    with pytest.raises(ValueError, match=r"^cancellation_reason_code: 'v1' does not match"):
        check_string("cancellation_reason_code", "v1", **rule)
    with pytest.raises(ValueError, match=r"^asin: must be at least 10 characters, got 9"):
        check_string("asin", "B07BB1RGT", min_length=10, max_length=10)
    assert check_string("asin", "B07BB1RGT5", min_length=10, max_length=10) == "B07BB1RGT5"


def test_check_int() -> None:
    assert check_int("page_size", 1, minimum=1, maximum=20) == 1
    assert check_int("page_size", 20, minimum=1, maximum=20) == 20
    with pytest.raises(ValueError, match=r"^page_size: must be at least 1, got 0$"):
        check_int("page_size", 0, minimum=1, maximum=20)
    with pytest.raises(ValueError, match=r"^page_size: must be at most 20, got 21$"):
        check_int("page_size", 21, minimum=1, maximum=20)
    with pytest.raises(ValueError, match=r"^slot_duration: must be a multiple of 5, got 12$"):
        check_int("slot_duration", 12, multiple_of=5)
    with pytest.raises(TypeError, match=r"^page_size: expected an integer, got bool$"):
        check_int("page_size", True)
    with pytest.raises(TypeError, match=r"^page_size: expected an integer, got float$"):
        check_int("page_size", 5.0)


def test_check_items() -> None:
    assert check_items("asins", ("a", "b"), min_items=1, max_items=2) == ["a", "b"]
    assert check_items("asins", (x for x in "ab"), max_items=2) == ["a", "b"]
    with pytest.raises(ValueError, match=r"^asins: must not be empty$"):
        check_items("asins", [], min_items=1)
    with pytest.raises(ValueError, match=r"^asins: must have at most 20 items, got 21$"):
        check_items("asins", ["a"] * 21, max_items=20)
    with pytest.raises(ValueError, match=r"^store_ids: must have at least 2 items, got 1$"):
        check_items("store_ids", ["a"], min_items=2)
    with pytest.raises(TypeError, match=r"^asins: expected a list, got str$"):
        check_items("asins", "B07BB1RGT5")
    with pytest.raises(TypeError, match=r"^asins: expected a list, got int$"):
        check_items("asins", 5)


def test_check_enum_refuses_a_typo_listing_the_allowed_values() -> None:
    with pytest.raises(ValueError, match="is not one of") as caught:
        check_enum("statuses[0]", "COMPLETE", ServiceJobStatus)
    message = str(caught.value)
    assert message.startswith("statuses[0]: 'COMPLETE' is not one of ")
    for allowed in ServiceJobStatus:
        assert allowed.value in message


def test_check_enum_takes_known_strings_and_members() -> None:
    assert check_enum("status", "COMPLETED", ServiceJobStatus) is ServiceJobStatus.COMPLETED
    assert check_enum("status", ServiceJobStatus.HOLD, ServiceJobStatus) is ServiceJobStatus.HOLD


def test_check_enum_takes_a_deliberate_new_value() -> None:
    new = ServiceJobStatus("NEW")
    assert check_enum("status", new, ServiceJobStatus) is new
    # ... but the same text as a plain string is taken for a typo, even after the API has
    # sent that value once (the pseudo-member is cached, not promoted to a known value).
    with pytest.raises(ValueError, match="'NEW' is not one of"):
        check_enum("status", "NEW", ServiceJobStatus)


def test_check_enum_takes_another_enums_member_by_value() -> None:
    assert check_enum("status", ItemStatus.ACTIVE, AppointmentStatus) is AppointmentStatus.ACTIVE
    with pytest.raises(ValueError, match=r"^status: 'SHIPPED' is not one of ACTIVE, CANCELLED"):
        check_enum("status", ItemStatus.SHIPPED, AppointmentStatus)


def test_check_enum_refuses_non_strings() -> None:
    with pytest.raises(TypeError, match=r"^status: expected a ServiceJobStatus or string, got int"):
        check_enum("status", 3, ServiceJobStatus)
