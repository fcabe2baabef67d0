"""Every body in the official model's static sandbox cases against the models.

Each request body and each response body structures into its model and unstructures back
to the same JSON, up to datetime normalisation (compared as instants) and omitted nulls.
The bodies the sandbox sends on purpose to be refused are listed below with the reason,
and must fail to structure; nothing is skipped silently, and the cases are counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import cattrs
import pytest

from spapi_services import _serde
from spapi_services._validation import check_request
from spapi_services.errors import ResponseDecodeError
from spapi_services.models import (
    AddAppointmentRequest,
    AppointmentResult,
    AppointmentSlotReport,
    AssignAppointmentResourcesRequest,
    AssignAppointmentResourcesResult,
    CreateReservationRecord,
    CreateReservationRequest,
    Error,
    FixedSlotCapacity,
    FixedSlotCapacityQuery,
    JobListing,
    RangeSlotCapacity,
    RangeSlotCapacityQuery,
    RescheduleAppointmentRequest,
    ServiceDocumentUploadDestination,
    ServiceJob,
    ServiceUploadDocument,
    SetAppointmentFulfillmentDataRequest,
    UpdateReservationRecord,
    UpdateReservationRequest,
    UpdateScheduleRecord,
    UpdateScheduleRequest,
)

from ._sandbox import NO_BODY, SandboxCase, operations, sandbox_cases

CASES = sandbox_cases()
EXPECTED_CASE_COUNT = 147

# --- the mapping: operation -> request body model, and response envelope -----------------

REQUEST_MODELS: dict[str, type] = {
    "addAppointmentForServiceJobByServiceJobId": AddAppointmentRequest,
    "rescheduleAppointmentForServiceJobByServiceJobId": RescheduleAppointmentRequest,
    "assignAppointmentResources": AssignAppointmentResourcesRequest,
    "setAppointmentFulfillmentData": SetAppointmentFulfillmentDataRequest,
    "getRangeSlotCapacity": RangeSlotCapacityQuery,
    "getFixedSlotCapacity": FixedSlotCapacityQuery,
    "updateSchedule": UpdateScheduleRequest,
    "createReservation": CreateReservationRequest,
    "updateReservation": UpdateReservationRequest,
    "createServiceDocumentUploadDestination": ServiceUploadDocument,
}

# Envelopes:
#   PAYLOAD  {"payload": <model>, "errors": [...]}, either key may be absent (any status)
#   BARE     the body is the model itself (its own ``errors``/``warnings`` fields included)
#   CAPACITY 2xx: the model itself; otherwise {"errors": [...]}
#   ERRORS   {"errors": [...]} or {} (operations with nothing to return)
#   NO_CONTENT_BARE_ERRORS  2xx: "" or {}; otherwise a bare array of errors
PAYLOAD, BARE, CAPACITY, ERRORS, NO_CONTENT_BARE_ERRORS = (
    "payload",
    "bare",
    "capacity",
    "errors",
    "no-content/bare-errors",
)

RESPONSES: dict[str, tuple[str, Any]] = {
    "getServiceJobByServiceJobId": (PAYLOAD, ServiceJob),
    "cancelServiceJobByServiceJobId": (ERRORS, None),
    "completeServiceJobByServiceJobId": (ERRORS, None),
    "getServiceJobs": (PAYLOAD, JobListing),
    "addAppointmentForServiceJobByServiceJobId": (BARE, AppointmentResult),
    "rescheduleAppointmentForServiceJobByServiceJobId": (BARE, AppointmentResult),
    "assignAppointmentResources": (PAYLOAD, AssignAppointmentResourcesResult),
    "setAppointmentFulfillmentData": (NO_CONTENT_BARE_ERRORS, None),
    "getRangeSlotCapacity": (CAPACITY, RangeSlotCapacity),
    "getFixedSlotCapacity": (CAPACITY, FixedSlotCapacity),
    "updateSchedule": (PAYLOAD, tuple[UpdateScheduleRecord, ...]),
    "createReservation": (PAYLOAD, CreateReservationRecord),
    "updateReservation": (PAYLOAD, UpdateReservationRecord),
    "cancelReservation": (ERRORS, None),
    "getAppointmmentSlotsByJobId": (PAYLOAD, AppointmentSlotReport),
    "getAppointmentSlots": (PAYLOAD, AppointmentSlotReport),
    "createServiceDocumentUploadDestination": (PAYLOAD, ServiceDocumentUploadDestination),
}

# --- request bodies the sandbox sends to be refused --------------------------------------

UNPARSEABLE = "unparseable timestamp"

#: Request bodies that must fail to structure, with the reason.
INVALID_REQUESTS: dict[tuple[str, str, int], str] = {
    ("addAppointmentForServiceJobByServiceJobId", "422", 1): UNPARSEABLE + " 10-00:00",
    ("rescheduleAppointmentForServiceJobByServiceJobId", "422", 1): UNPARSEABLE + " 10-00:00",
    ("assignAppointmentResources", "400", 3): "{} without the required resources",
    ("setAppointmentFulfillmentData", "422", 7): UNPARSEABLE + " fulfillmentTime.startTime",
    ("setAppointmentFulfillmentData", "422", 11): "estimatedArrivalTime without its endTime",
    ("setAppointmentFulfillmentData", "422", 12): UNPARSEABLE + " estimatedArrivalTime",
    ("getRangeSlotCapacity", "400", 1): "no endDateTime",
    ("getRangeSlotCapacity", "400", 3): UNPARSEABLE + " 2021-0",
    ("getFixedSlotCapacity", "400", 3): "malformed: resourceId inside the body parameter, "
    "and the body has no endDateTime",
    ("getFixedSlotCapacity", "400", 4): UNPARSEABLE + " 2021-0",
    ("createReservation", "400", 0): "reservation {} without type and availability",
    ("createReservation", "400", 1): "reservation {} without type and availability",
    ("updateReservation", "400", 0): "reservation {} without type and availability",
    ("updateReservation", "400", 1): "reservation {} without type and availability",
    ("createServiceDocumentUploadDestination", "400", 0): "{} without contentType/Length",
    ("createServiceDocumentUploadDestination", "400", 1): "no contentLength",
    ("createServiceDocumentUploadDestination", "400", 2): "no contentType",
}

#: Request bodies that structure, but that the client-side checks refuse before sending:
#: the field path the ValueError must name.
REFUSED_BY_CHECKS: dict[tuple[str, str, int], str] = {
    ("assignAppointmentResources", "400", 4): "body.resources",  # []
    ("getFixedSlotCapacity", "400", 1): "body.slot_duration",  # 400 > 360
    ("updateSchedule", "400", 0): "body.schedules",  # []
    ("updateSchedule", "400", 1): "body.schedules",  # []
}

STRICT = _serde.make_converter(forbid_extra_keys=True)
ERROR_LIST = tuple[Error, ...]


# --- helpers ---------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T")


def normalise(value: Any) -> Any:
    """JSON with nulls dropped, arrays as lists and timestamps as aware datetimes."""
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, str) and _TIMESTAMP.match(value):
        parsed = datetime.fromisoformat(value)
        assert parsed.tzinfo is not None, f"timestamp without an offset: {value}"
        return parsed
    return value


def round_trip(body: Any, model: Any, structure: Callable[[Any, Any], Any]) -> Any:
    """Structure ``body`` with ``structure`` and unstructure the result."""
    return _serde.unstructure(structure(body, model))


def decode_response(
    case: SandboxCase, structure: Callable[[Any, Any], Any]
) -> tuple[Any, tuple[Error, ...]]:
    """The case's response rebuilt from the models, and the errors found in it."""
    envelope, model = RESPONSES[case.operation_id]
    body = case.response
    if envelope == CAPACITY:
        envelope = BARE if case.success else ERRORS
    if envelope == NO_CONTENT_BARE_ERRORS:
        if case.success:
            assert body in ("", {}, None)
            return body, ()
        assert isinstance(body, list), "error bodies of this operation are bare arrays"
        errors = structure(body, ERROR_LIST)
        return _serde.unstructure(errors), errors
    assert isinstance(body, dict)
    if envelope == BARE:
        result = structure(body, model)
        return _serde.unstructure(result), tuple(getattr(result, "errors", None) or ())
    allowed = {"errors"} if envelope == ERRORS else {"payload", "errors"}
    assert set(body) <= allowed, f"unexpected top-level keys {set(body) - allowed}"
    rebuilt: dict[str, Any] = {}
    errors: tuple[Error, ...] = ()
    if "payload" in body:
        rebuilt["payload"] = round_trip(body["payload"], model, structure)
    if "errors" in body:
        errors = structure(body["errors"], ERROR_LIST)
        rebuilt["errors"] = _serde.unstructure(errors)
    return rebuilt, errors


def raw_error_entries(case: SandboxCase) -> list[Any]:
    body = case.response
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        return list(body.get("errors") or [])
    return []


def strict_structure(data: Any, model: Any) -> Any:
    return STRICT.structure(data, model)


# --- the bookkeeping: nothing is skipped silently -------------------------------------


def test_every_sandbox_case_is_counted() -> None:
    assert len(CASES) == EXPECTED_CASE_COUNT
    assert len({case.key for case in CASES}) == EXPECTED_CASE_COUNT


def test_the_tables_cover_every_operation_and_body() -> None:
    spec_ops = dict(operations())
    assert set(RESPONSES) == set(spec_ops)
    with_body = {}
    for operation_id, operation in spec_ops.items():
        for param in operation.get("parameters", []):
            if param.get("in") == "body":
                with_body[operation_id] = param["schema"]["$ref"].rsplit("/", 1)[-1]
    # Every body parameter has a model of the same name as the spec's definition.
    assert {op: model.__name__ for op, model in REQUEST_MODELS.items()} == with_body


def test_listed_cases_exist() -> None:
    keys = {case.key for case in CASES}
    assert set(INVALID_REQUESTS) <= keys
    assert set(REFUSED_BY_CHECKS) <= keys
    assert not set(INVALID_REQUESTS) & set(REFUSED_BY_CHECKS)


def test_case_counts_per_status() -> None:
    by_status: dict[str, int] = {}
    for case in CASES:
        by_status[case.status] = by_status.get(case.status, 0) + 1
    assert by_status == {"200": 29, "204": 9, "400": 42, "403": 7, "404": 2, "422": 58}


# --- request bodies ----------------------------------------------------------------------

REQUEST_CASES = [case for case in CASES if case.body is not NO_BODY]


def test_request_bodies_are_where_the_table_says() -> None:
    assert {case.operation_id for case in REQUEST_CASES} == set(REQUEST_MODELS)
    # add 12, reschedule 14, assign 16, fulfilment 41, capacity 8 + 6, schedule 5,
    # reservations 4 + 5, documents 5.
    assert len(REQUEST_CASES) == 116


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda c: c.id)
def test_request_body_round_trips(case: SandboxCase) -> None:
    model = REQUEST_MODELS[case.operation_id]
    if case.key in INVALID_REQUESTS:
        with pytest.raises(ResponseDecodeError) as caught:
            _serde.structure(case.body, model)
        assert caught.value.problems, INVALID_REQUESTS[case.key]
        return
    request = _serde.structure(case.body, model)
    assert isinstance(request, model)
    assert normalise(_serde.unstructure(request)) == normalise(case.body)
    field = REFUSED_BY_CHECKS.get(case.key)
    if field is None:
        check_request(request, "body")
    else:
        with pytest.raises(ValueError, match=re.escape(field)):
            check_request(request, "body")


@pytest.mark.parametrize("case", REQUEST_CASES, ids=lambda c: c.id)
def test_request_models_cover_every_field_used(case: SandboxCase) -> None:
    model = REQUEST_MODELS[case.operation_id]
    if case.key in INVALID_REQUESTS:
        with pytest.raises(cattrs.BaseValidationError):
            strict_structure(case.body, model)
        return
    assert isinstance(strict_structure(case.body, model), model)


def test_invalid_requests_fail_for_the_listed_reason() -> None:
    # Spot checks that each failure is about what the list says, not something else.
    problems = {}
    for case in REQUEST_CASES:
        if case.key in INVALID_REQUESTS:
            with pytest.raises(ResponseDecodeError) as caught:
                _serde.structure(case.body, REQUEST_MODELS[case.operation_id])
            problems[case.key] = " | ".join(caught.value.problems)
    assert len(problems) == len(INVALID_REQUESTS)
    for key, reason in INVALID_REQUESTS.items():
        if reason.startswith(UNPARSEABLE):
            assert "expected an ISO 8601 timestamp" in problems[key], problems[key]
        else:
            assert "required field missing" in problems[key], problems[key]
    assert (
        "@ $.appointmentTime.startTime"
        in problems[("addAppointmentForServiceJobByServiceJobId", "422", 1)]
    )
    assert "@ $.resources" in problems[("assignAppointmentResources", "400", 3)]
    assert "@ $.endDateTime" in problems[("getFixedSlotCapacity", "400", 3)]
    assert "@ $.reservation.type" in problems[("createReservation", "400", 0)]
    assert "@ $.contentLength" in problems[("createServiceDocumentUploadDestination", "400", 1)]


# --- response bodies ---------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_response_body_round_trips(case: SandboxCase) -> None:
    rebuilt, errors = decode_response(case, _serde.structure)
    assert normalise(rebuilt) == normalise(case.response)
    # The errors found are the ones in the body, and parse_errors agrees.
    raw = raw_error_entries(case)
    assert [e.code for e in errors] == [entry["code"] for entry in raw]
    assert [e.message for e in errors] == [entry["message"] for entry in raw]
    assert _serde.parse_errors(case.response) == errors
    if not case.success and case.operation_id != "getServiceJobByServiceJobId":
        # Every error response carries at least one error (the one exception is the
        # model's 400 of getServiceJobByServiceJobId, which returns an empty payload,
        # and the 403 answering empty parameters with {}).
        assert errors or case.response == {}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_response_models_cover_every_field_used(case: SandboxCase) -> None:
    rebuilt, _ = decode_response(case, strict_structure)
    assert normalise(rebuilt) == normalise(case.response)


# --- a few facts worth pinning down -----------------------------------------------------


def _case(operation_id: str, status: str, index: int) -> SandboxCase:
    return next(c for c in CASES if c.key == (operation_id, status, index))


def test_hour_only_offsets_of_update_schedule_become_utc() -> None:
    case = _case("updateSchedule", "200", 0)
    request = _serde.structure(case.body, UpdateScheduleRequest)
    first = request.schedules[0]
    assert first.start_time == datetime.fromisoformat("2020-01-01T07:00:00+00:00")
    assert _serde.unstructure(request)["schedules"][0]["startTime"] == "2020-01-01T07:00:00Z"


def test_get_service_jobs_page_decodes_to_a_job() -> None:
    case = _case("getServiceJobs", "200", 0)
    listing = _serde.structure(case.response["payload"], JobListing)
    assert listing.total_result_size == 1
    assert listing.jobs is not None
    job = listing.jobs[0]
    assert job.service_job_status == "COMPLETED"
    assert job.appointments is not None
    assert job.appointments[0].appointment_time is not None
    assert job.appointments[0].appointment_time.duration_in_minutes == 60


def test_upload_destination_keeps_the_odd_characters_of_its_id() -> None:
    case = _case("createServiceDocumentUploadDestination", "200", 0)
    destination = _serde.structure(case.response["payload"], ServiceDocumentUploadDestination)
    assert "<->" in destination.upload_destination_id
    assert destination.headers is None
    assert destination.encryption_details.standard == "AES"
