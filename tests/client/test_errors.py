"""Error statuses to exception classes, with everything a caller needs attached."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aioresponses import aioresponses

from spapi_services import (
    ApiStatusError,
    AuthenticationError,
    BadRequestError,
    ForbiddenError,
    InternalServerError,
    NotFoundError,
    OperationFailedError,
    PaginationError,
    PayloadTooLargeError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    ServicesClient,
    ServiceUnavailableError,
    SpApiError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)
from spapi_services.models import (
    AvailabilityRecord,
    Error,
    ErrorLevel,
    Reservation,
    ReservationType,
)

from ._helpers import expect

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
ERROR_BODY = {
    "errors": [
        {
            "code": "InvalidInput",
            "message": "Missing or invalid request parameters",
            "details": "serviceJobId",
            "errorLevel": "ERROR",
        },
        {"code": "Other", "message": "second"},
    ]
}
HEADERS = {
    "x-amzn-RequestId": "b0e8-req-42",
    "x-amzn-RateLimit-Limit": "5.0",
    "x-amzn-ErrorType": "ValidationException",
}


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (413, PayloadTooLargeError),
        (415, UnsupportedMediaTypeError),
        (422, UnprocessableEntityError),
        (429, RateLimitError),
        (500, InternalServerError),
        (502, ServerError),
        (503, ServiceUnavailableError),
        (504, ServerError),
        (409, ApiStatusError),
        (418, ApiStatusError),
    ],
)
async def test_status_maps_to_its_class(
    mock_api: aioresponses, client: ServicesClient, status: int, cls: type[ApiStatusError]
) -> None:
    sent = expect(mock_api, "GET", status=status, payload=ERROR_BODY, headers=HEADERS)
    with pytest.raises(cls) as caught:
        await client.service_jobs.get("job-1")

    exc = caught.value
    assert type(exc) is cls  # exactly, not a sibling or a parent
    assert isinstance(exc, ApiStatusError)
    assert isinstance(exc, SpApiError)
    assert exc.status_code == status
    assert exc.request_id == "b0e8-req-42"
    assert exc.rate_limit == 5.0
    assert exc.codes == ("InvalidInput", "Other")
    assert exc.errors[0].message == "Missing or invalid request parameters"
    assert exc.errors[0].details == "serviceJobId"
    assert exc.errors[0].error_level is ErrorLevel.ERROR
    assert exc.errors[1].details is None
    # Headers are kept whole and read without regard to case.
    assert exc.headers["x-amzn-RequestId"] == "b0e8-req-42"
    assert exc.headers["X-AMZN-ERRORTYPE"] == "ValidationException"
    assert exc.headers.get("x-amzn-errortype") == "ValidationException"
    assert '"InvalidInput"' in exc.body
    assert exc.operation == "getServiceJobByServiceJobId"
    message = str(exc)
    assert str(status) in message
    assert "InvalidInput: Missing or invalid request parameters" in message
    assert "b0e8-req-42" in message
    assert len(sent) == 1  # max_retries=0: exactly one attempt


def test_status_classes_form_the_documented_tree() -> None:
    assert issubclass(InternalServerError, ServerError)
    assert issubclass(ServiceUnavailableError, ServerError)
    assert issubclass(ServerError, ApiStatusError)
    for cls in (
        BadRequestError,
        ForbiddenError,
        NotFoundError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        UnprocessableEntityError,
        RateLimitError,
    ):
        assert issubclass(cls, ApiStatusError)
        assert not issubclass(cls, ServerError)
    assert not issubclass(OperationFailedError, ApiStatusError)
    assert not issubclass(ResponseDecodeError, ApiStatusError)


async def test_bare_error_array_of_set_fulfillment_data(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    bare = [
        {"code": "InvalidInput", "message": "Fulfillment time is in the future", "details": ""},
        {"code": "InvalidInput", "message": "Document failed to decrypt or decipher"},
    ]
    expect(mock_api, "PUT", status=422, payload=bare, headers={"x-amzn-RequestId": "r-9"})
    with pytest.raises(UnprocessableEntityError) as caught:
        await client.appointments.set_fulfillment_data(
            "job-1", "appt-1", fulfillment_time=(T0, T0 + timedelta(hours=1))
        )
    exc = caught.value
    assert exc.request_id == "r-9"
    assert [e.message for e in exc.errors] == [
        "Fulfillment time is in the future",
        "Document failed to decrypt or decipher",
    ]
    assert exc.rate_limit is None


async def test_html_503_keeps_the_body(mock_api: aioresponses, client: ServicesClient) -> None:
    html = "<html><body><h1>503 Service Unavailable</h1>\n\n  try later</body></html>"
    expect(
        mock_api,
        "GET",
        status=503,
        body=html,
        content_type="text/html",
        headers={"x-amzn-RequestId": "r-503"},
    )
    with pytest.raises(ServiceUnavailableError) as caught:
        await client.service_jobs.get("job-1")
    exc = caught.value
    assert exc.errors == ()
    assert exc.body == html
    assert exc.request_id == "r-503"
    assert exc.headers["content-type"] == "text/html"
    assert "503 Service Unavailable</h1> try later" in str(exc)  # one line, whitespace folded


async def test_empty_500(mock_api: aioresponses, client: ServicesClient) -> None:
    expect(mock_api, "GET", status=500, body="", headers={})
    with pytest.raises(InternalServerError) as caught:
        await client.service_jobs.get("job-1")
    exc = caught.value
    assert exc.errors == ()
    assert exc.body == ""
    assert exc.request_id is None
    assert "(empty body)" in str(exc)


async def test_json_error_without_errors_key(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    expect(mock_api, "GET", status=403, payload={"message": "Forbidden"})
    with pytest.raises(ForbiddenError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.errors == ()
    assert "Forbidden" in str(caught.value)


async def test_2xx_with_top_level_errors_is_operation_failed(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    body = {"errors": [{"code": "InvalidInput", "message": "Resource id is invalid"}]}
    expect(mock_api, "POST", payload=body, headers={"x-amzn-RequestId": "r-200"})
    reservation = Reservation(
        type=ReservationType.BREAK,
        availability=AvailabilityRecord(start_time=T0, end_time=T0 + timedelta(hours=1)),
    )
    with pytest.raises(OperationFailedError) as caught:
        await client.reservations.create("badResourceId", reservation)
    exc = caught.value
    assert exc.status_code == 200
    assert exc.request_id == "r-200"
    assert exc.codes == ("InvalidInput",)
    assert exc.operation == "createReservation"
    assert "Resource id is invalid" in str(exc)


async def test_2xx_with_an_empty_errors_list_is_success(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    expect(mock_api, "PUT", payload={"errors": []})
    assert await client.service_jobs.complete("job-1") is None


async def test_update_schedule_returns_per_record_errors_and_warnings(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    window = {"startTime": "2026-03-01T09:30:00Z", "endTime": "2026-03-01T10:30:00Z"}
    body = {
        "payload": [
            {"availability": window, "errors": [{"code": "Overlap", "message": "overlaps"}]},
            {"availability": window, "warnings": [{"code": "ScheduleOverride", "message": "w"}]},
        ]
    }
    expect(mock_api, "PUT", payload=body)
    record = AvailabilityRecord(start_time=T0, end_time=T0 + timedelta(hours=1))
    records = await client.schedules.update("res-1", [record])
    assert len(records) == 2
    assert records[0].errors is not None
    assert records[0].errors[0].code == "Overlap"
    assert records[1].warnings is not None
    assert records[1].warnings[0].code == "ScheduleOverride"


async def test_non_json_200_is_a_decode_error(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    expect(
        mock_api,
        "GET",
        body="<html>login</html>",
        content_type="text/html",
        headers={"x-amzn-RequestId": "r-html"},
    )
    with pytest.raises(ResponseDecodeError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.request_id == "r-html"
    assert caught.value.operation == "getServiceJobByServiceJobId"


@pytest.mark.parametrize("body", ["", "   ", "null"])
async def test_empty_200_where_a_payload_is_expected(
    mock_api: aioresponses, client: ServicesClient, body: str
) -> None:
    expect(mock_api, "GET", body=body, headers={"x-amzn-RequestId": "r-empty"})
    with pytest.raises(ResponseDecodeError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.request_id == "r-empty"


async def test_200_without_payload_is_a_decode_error(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    expect(mock_api, "GET", payload={})
    with pytest.raises(ResponseDecodeError, match="no payload"):
        await client.service_jobs.get("job-1")


async def test_wrongly_shaped_payload_names_the_json_path(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    body = {"payload": {"jobs": [{"serviceJobId": "j"}, {"scopeOfWork": {"quantity": "many"}}]}}
    expect(mock_api, "GET", payload=body, headers={"x-amzn-RequestId": "r-shape"})
    with pytest.raises(ResponseDecodeError) as caught:
        await client.service_jobs.list_page(created_after=T0)
    exc = caught.value
    assert exc.request_id == "r-shape"
    assert any("$.jobs[1].scopeOfWork.quantity" in p for p in exc.problems), exc.problems


@pytest.mark.parametrize("body", ["", '""', "{}"])
async def test_204_bodies_are_fine(
    mock_api: aioresponses, client: ServicesClient, body: str
) -> None:
    expect(mock_api, "DELETE", status=204, body=body)
    expect(mock_api, "PUT", status=204, body=body)
    assert await client.reservations.cancel("res-1") is None
    assert (
        await client.appointments.set_fulfillment_data(
            "job-1", "appt-1", fulfillment_time=(T0, T0 + timedelta(hours=1))
        )
        is None
    )


@pytest.mark.parametrize(
    "copier", [copy.copy, copy.deepcopy, lambda e: pickle.loads(pickle.dumps(e))]
)
async def test_errors_survive_copy_and_pickle(
    mock_api: aioresponses, client: ServicesClient, copier: Any
) -> None:
    expect(mock_api, "GET", status=503, payload=ERROR_BODY, headers=HEADERS)
    with pytest.raises(ServiceUnavailableError) as caught:
        await client.service_jobs.get("job-1")
    original = caught.value
    clone = copier(original)
    assert type(clone) is ServiceUnavailableError
    assert str(clone) == str(original)
    assert clone.status_code == 503
    assert clone.request_id == "b0e8-req-42"
    assert clone.errors == original.errors
    assert clone.headers["X-Amzn-RequestId"] == "b0e8-req-42"
    assert clone.body == original.body


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("refused", error="invalid_grant", status_code=400),
        OperationFailedError(status_code=200, errors=[Error(code="c", message="m")]),
        ResponseDecodeError("bad", problems=["x @ $.a"], request_id="r"),
        PaginationError("twice"),
    ],
)
def test_every_error_pickles(error: SpApiError) -> None:
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is type(error)
    assert str(clone) == str(error)
    assert clone.__dict__ == error.__dict__


async def test_redirects_are_not_followed(mock_api: aioresponses, client: ServicesClient) -> None:
    elsewhere = "https://elsewhere.test/collect"
    expect(mock_api, "GET", status=307, headers={"Location": elsewhere})
    stolen = expect(mock_api, "GET", payload={"payload": {}}, url=elsewhere)
    with pytest.raises(ApiStatusError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.status_code == 307
    assert stolen == []  # the access token went nowhere else


async def test_request_id_header_in_any_case(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    headers = {"X-AMZN-REQUESTID": "upper-1", "x-amzn-ratelimit-limit": "2.0"}
    expect(mock_api, "GET", status=404, payload=ERROR_BODY, headers=headers)
    with pytest.raises(NotFoundError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.request_id == "upper-1"
    assert caught.value.rate_limit == 2.0


@pytest.mark.parametrize("value", ["", "fast", "0", "-2", "inf", "nan"])
async def test_unreadable_rate_limit_header_is_ignored(
    mock_api: aioresponses, client: ServicesClient, value: str
) -> None:
    expect(
        mock_api, "GET", status=400, payload=ERROR_BODY, headers={"x-amzn-RateLimit-Limit": value}
    )
    with pytest.raises(BadRequestError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.rate_limit is None
