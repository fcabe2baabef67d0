"""Every sandbox case of Amazon's model, replayed by the emulator's static mode, through the SDK.

For each case the SDK method is called with the case's parameters; the answer must be
what Amazon documents: the typed result of the recorded body for a success, or the
exception class of the recorded status carrying the recorded errors.  Cases whose input
the SDK refuses before sending (deliberately malformed requests) are listed with the
reason, and must be refused with a ValueError or TypeError and nothing sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from spec_data import MODEL_PATH, load_model

from spapi_services import ApiStatusError, RetryPolicy, ServicesClient, SpApiError
from spapi_services._serde import converter, parse_datetime, parse_errors
from spapi_services.emulator import ServicesEmulator
from spapi_services.errors import status_error_class
from spapi_services.models import (
    AppointmentResult,
    AppointmentSlotReport,
    AvailabilityRecord,
    CreateReservationRecord,
    FixedSlotCapacity,
    FulfillmentDocument,
    JobListing,
    RangeSlotCapacity,
    Reservation,
    ServiceDocumentUploadDestination,
    ServiceJob,
    UpdateReservationRecord,
    UpdateScheduleRecord,
    Warning,
)

MARKET = "ATVPDKIKX0DER"

Case = tuple[str, int, int, dict[str, Any], Any]


def _cases() -> list[Case]:
    spec = load_model()
    found: list[Case] = []
    for item in spec["paths"].values():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                static = response.get("x-amzn-api-sandbox", {}).get("static", [])
                for index, case in enumerate(static):
                    params = {
                        name: spec_value.get("value")
                        for name, spec_value in case["request"]["parameters"].items()
                    }
                    found.append(
                        (operation["operationId"], int(status), index, params, case["response"])
                    )
    return found


CASES = _cases()

# Requests the SDK will not send, because they break the model's own rules; Amazon's
# sandbox answers them with the 4xx recorded in the case.  The SDK refuses them earlier.
REFUSED_BY_THE_SDK: dict[tuple[str, int, int], str] = {
    ("getServiceJobs", 400, 0): "createdAfter is not a timestamp",
    ("addAppointmentForServiceJobByServiceJobId", 422, 1): "start time does not parse",
    ("rescheduleAppointmentForServiceJobByServiceJobId", 422, 1): "start time does not parse",
    ("assignAppointmentResources", 200, 1): "a resource without an id",
    ("assignAppointmentResources", 400, 3): "no resources at all",
    ("assignAppointmentResources", 400, 4): "an empty list of resources",
    ("setAppointmentFulfillmentData", 400, 2): "nothing to record",
    ("setAppointmentFulfillmentData", 422, 4): "a fulfilment time without a start",
    ("setAppointmentFulfillmentData", 422, 5): "a fulfilment time without an end",
    ("setAppointmentFulfillmentData", 422, 7): "a fulfilment time that does not parse",
    ("setAppointmentFulfillmentData", 422, 8): "a fulfilment that ends before it starts",
    ("setAppointmentFulfillmentData", 422, 9): "a fulfilment that ends in the future",
    ("setAppointmentFulfillmentData", 422, 10): "a fulfilment that ends before it starts",
    ("setAppointmentFulfillmentData", 422, 11): "an arrival window without an end",
    ("setAppointmentFulfillmentData", 422, 12): "an arrival time that does not parse",
    ("setAppointmentFulfillmentData", 422, 24): "a fulfilment time without a start",
    ("setAppointmentFulfillmentData", 422, 25): "a fulfilment time without a start",
    ("setAppointmentFulfillmentData", 422, 26): "a fulfilment time without a start",
    ("getRangeSlotCapacity", 400, 0): "no resource id",
    ("getRangeSlotCapacity", 400, 1): "no end time",
    ("getRangeSlotCapacity", 400, 2): "the end before the start",
    ("getRangeSlotCapacity", 400, 3): "a start time that does not parse",
    ("getFixedSlotCapacity", 400, 0): "no resource id",
    ("getFixedSlotCapacity", 400, 1): "a slot duration over 360 minutes",
    ("getFixedSlotCapacity", 400, 2): "the end before the start",
    ("getFixedSlotCapacity", 400, 3): "no resource id and no end time",
    ("getFixedSlotCapacity", 400, 4): "a start time that does not parse",
    ("updateSchedule", 400, 0): "an empty schedule",
    ("updateSchedule", 400, 1): "an empty schedule",
    ("createReservation", 400, 0): "an empty reservation",
    ("createReservation", 400, 1): "an empty reservation",
    ("updateReservation", 400, 0): "an empty reservation and no reservation id",
    ("updateReservation", 400, 1): "an empty reservation and no reservation id",
    ("getAppointmmentSlotsByJobId", 400, 1): "an end time alone, and it does not parse",
    ("getAppointmmentSlotsByJobId", 400, 2): "the end before the start",
    ("getAppointmentSlots", 400, 1): "an end time alone, and it does not parse",
    ("getAppointmentSlots", 400, 2): "the end before the start",
    ("createServiceDocumentUploadDestination", 400, 0): "no content type or length",
    ("createServiceDocumentUploadDestination", 400, 1): "no content length",
    ("createServiceDocumentUploadDestination", 400, 2): "no content type",
    ("createServiceDocumentUploadDestination", 422, 0): "PNGr is not a content type",
}

# Requests the SDK sends differently from the recorded ones, so no case matches them.
UNREACHABLE: dict[tuple[str, int, int], str] = {
    ("addAppointmentForServiceJobByServiceJobId", 422, 0): (
        "the SDK sends every time in UTC; Amazon's case refuses a +05:30 offset"
    ),
    ("rescheduleAppointmentForServiceJobByServiceJobId", 422, 0): (
        "the SDK sends every time in UTC; Amazon's case refuses a +05:30 offset"
    ),
}


def _time(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return parse_datetime(value)
    except ValueError as exc:
        raise TypeError(f"not a timestamp: {value!r}") from exc


def _model(data: Any, cls: Any) -> Any:
    """A request model as a caller would build it; one they could not build is a TypeError."""
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        raise TypeError(f"cannot build {cls}: {exc}") from exc


async def _call(client: ServicesClient, op: str, p: dict[str, Any]) -> Any:
    """Call the SDK method of ``op`` with the case's parameters."""
    body = p.get("body") or {}
    job = p.get("serviceJobId", "anyJobId")
    appointment = p.get("appointmentId", "anyAppointmentId")
    if op == "getServiceJobByServiceJobId":
        return await client.service_jobs.get(job)
    if op == "cancelServiceJobByServiceJobId":
        return await client.service_jobs.cancel(
            job, reason_code=p.get("cancellationReasonCode", "V1")
        )
    if op == "completeServiceJobByServiceJobId":
        return await client.service_jobs.complete(job)
    if op == "getServiceJobs":
        since = p.get("createdAfter", "2020-01-01T00:00:00Z")
        return await client.service_jobs.list_page(created_after=_time(since))
    if op in (
        "addAppointmentForServiceJobByServiceJobId",
        "rescheduleAppointmentForServiceJobByServiceJobId",
    ):
        when = body.get("appointmentTime", {})
        start = _time(when.get("startTime"))
        if op.startswith("add"):
            return await client.appointments.add(
                job, start_time=start, duration_minutes=when.get("durationInMinutes")
            )
        return await client.appointments.reschedule(
            job,
            appointment,
            start_time=start,
            reason_code=body.get("rescheduleReasonCode"),
            duration_minutes=when.get("durationInMinutes"),
        )
    if op == "assignAppointmentResources":
        ids = [r.get("resourceId") for r in body.get("resources", ())]
        return await client.appointments.assign_resources(job, appointment, ids)
    if op == "setAppointmentFulfillmentData":
        return await _fulfil(client, job, appointment, body)
    if op in ("getRangeSlotCapacity", "getFixedSlotCapacity"):
        return await _capacity(client, op, p, body)
    if op == "updateSchedule":
        schedules = _model(body.get("schedules"), list[AvailabilityRecord])
        return await client.schedules.update(p.get("resourceId", ""), schedules)
    if op in ("createReservation", "updateReservation"):
        reservation = _model(body.get("reservation"), Reservation)
        if op == "createReservation":
            return await client.reservations.create(body.get("resourceId"), reservation)
        return await client.reservations.update(
            p.get("reservationId", ""), body.get("resourceId"), reservation
        )
    if op == "cancelReservation":
        return await client.reservations.cancel(p["reservationId"])
    if op == "getAppointmmentSlotsByJobId":
        return await client.appointments.slots_for_job(
            job, start_time=_time(p.get("startTime")), end_time=_time(p.get("endTime"))
        )
    if op == "getAppointmentSlots":
        return await client.appointments.slots(
            asin=p["asin"],
            store_id=p["storeId"],
            start_time=_time(p.get("startTime")),
            end_time=_time(p.get("endTime")),
        )
    if op == "createServiceDocumentUploadDestination":
        return await client.documents.create_upload_destination(
            content_type=body.get("contentType"),
            content_length=body.get("contentLength"),
            content_md5=body.get("contentMD5"),
        )
    raise AssertionError(f"no SDK call for {op}")


async def _fulfil(client: ServicesClient, job: str, appointment: str, body: Any) -> Any:
    def pair(key: str) -> Any:
        times = body.get(key)
        if times is None:
            return None
        return (_time(times.get("startTime")), _time(times.get("endTime")))

    resources = body.get("appointmentResources")
    documents = body.get("fulfillmentDocuments")
    return await client.appointments.set_fulfillment_data(
        job,
        appointment,
        fulfillment_time=pair("fulfillmentTime"),
        estimated_arrival_time=pair("estimatedArrivalTime"),
        resources=None if resources is None else [r.get("resourceId") for r in resources],
        documents=(
            None if documents is None else [_model(d, FulfillmentDocument) for d in documents]
        ),
    )


async def _capacity(client: ServicesClient, op: str, p: dict[str, Any], body: Any) -> Any:
    args: dict[str, Any] = {
        "start_time": _time(body.get("startDateTime")),
        "end_time": _time(body.get("endDateTime")),
        "capacity_types": body.get("capacityTypes"),
        "page_token": p.get("nextPageToken"),
    }
    if op == "getFixedSlotCapacity":
        pages = client.schedules.fixed_capacity(
            p.get("resourceId", ""), slot_duration=body.get("slotDuration"), **args
        )
    else:
        pages = client.schedules.range_capacity(p.get("resourceId", ""), **args)
    async for page in pages:  # the first page is the recorded answer
        return page
    raise AssertionError("no page")


# What each operation's success looks like once the SDK has decoded it.
def _expected_result(op: str, response: Any) -> Any:
    payload = response.get("payload") if isinstance(response, dict) else None
    decoders: dict[str, Callable[[], Any]] = {
        "getServiceJobByServiceJobId": lambda: converter.structure(payload, ServiceJob),
        "getServiceJobs": lambda: converter.structure(payload, JobListing),
        "cancelServiceJobByServiceJobId": lambda: None,
        "completeServiceJobByServiceJobId": lambda: None,
        "addAppointmentForServiceJobByServiceJobId": lambda: converter.structure(
            response, AppointmentResult
        ),
        "rescheduleAppointmentForServiceJobByServiceJobId": lambda: converter.structure(
            response, AppointmentResult
        ),
        "assignAppointmentResources": lambda: converter.structure(
            (payload or {}).get("warnings", []), list[Warning]
        ),
        "setAppointmentFulfillmentData": lambda: None,
        "getRangeSlotCapacity": lambda: converter.structure(response, RangeSlotCapacity),
        "getFixedSlotCapacity": lambda: converter.structure(response, FixedSlotCapacity),
        "updateSchedule": lambda: converter.structure(payload or [], list[UpdateScheduleRecord]),
        "createReservation": lambda: converter.structure(payload, CreateReservationRecord),
        "updateReservation": lambda: converter.structure(payload, UpdateReservationRecord),
        "cancelReservation": lambda: None,
        "getAppointmmentSlotsByJobId": lambda: converter.structure(payload, AppointmentSlotReport),
        "getAppointmentSlots": lambda: converter.structure(payload, AppointmentSlotReport),
        "createServiceDocumentUploadDestination": lambda: converter.structure(
            payload, ServiceDocumentUploadDestination
        ),
    }
    return decoders[op]()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def sandbox() -> AsyncIterator[tuple[ServicesEmulator, ServicesClient]]:
    async with ServicesEmulator(static_spec=MODEL_PATH, enforce_limits=False) as emu:
        client = ServicesClient(
            emu.credentials,
            endpoint=emu.url,
            token_url=emu.token_url,
            marketplace_id=MARKET,
            rate_limits=False,
            retry=RetryPolicy(max_retries=0),
        )
        async with client:
            yield emu, client


def test_every_case_is_replayed() -> None:
    assert len(CASES) == 147
    listed = set(REFUSED_BY_THE_SDK) | set(UNREACHABLE)
    assert listed <= {(op, status, index) for op, status, index, _, _ in CASES}


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    ("op", "status", "index", "params", "response"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in CASES],
)
async def test_sandbox_case_through_the_sdk(
    sandbox: tuple[ServicesEmulator, ServicesClient],
    op: str,
    status: int,
    index: int,
    params: dict[str, Any],
    response: Any,
) -> None:
    emu, client = sandbox
    key = (op, status, index)
    before = len(emu.requests)
    call: Callable[[], Awaitable[Any]] = lambda: _call(client, op, params)  # noqa: E731

    if key in REFUSED_BY_THE_SDK:
        with pytest.raises((ValueError, TypeError)):
            await call()
        assert len(emu.requests) == before, "a refused request must not be sent"
        return

    if key in UNREACHABLE:
        with pytest.raises(SpApiError):
            await call()
        return

    if 200 <= status < 300:
        if isinstance(response, dict) and response.get("errors"):
            # Amazon's model records failures as 2xx answers: the SDK raises for them.
            with pytest.raises(SpApiError) as failed:
                await call()
            assert [e.code for e in failed.value.errors] == [  # type: ignore[attr-defined]
                e.code for e in parse_errors(response)
            ]
            return
        result = await call()
        assert result == _expected_result(op, response)
        return

    with pytest.raises(ApiStatusError) as caught:
        await call()
    error = caught.value
    assert type(error) is status_error_class(status)
    assert error.status_code == status
    assert error.errors == parse_errors(response)
    assert error.request_id
