"""What Amazon's support asks for, on every error about an answer; the wire logger."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from spapi_services import (
    ApiStatusError,
    NotFoundError,
    OperationFailedError,
    RateLimitError,
    RetryPolicy,
)
from spapi_services.models.common import Error

from ._api import ACCESS_TOKEN, FakeApi, answer, client_for, job_body, replies

DATE = "Tue, 02 Mar 2027 10:15:00 GMT"
NOT_FOUND = {"errors": [{"code": "NotFound", "message": "No job with that id."}]}


async def test_a_status_error_gives_support_what_it_asks_for() -> None:
    headers = {"x-amzn-RequestId": "8e0d-req", "x-amzn-RateLimit-Limit": "20.0", "Date": DATE}
    async with client_for(FakeApi(replies(answer(404, NOT_FOUND, **headers)))) as client:
        with pytest.raises(NotFoundError) as caught:
            await client.service_jobs.get("job-1")

    error = caught.value
    assert error.answered_at == datetime(2027, 3, 2, 10, 15, tzinfo=UTC)
    assert error.support_info() == {
        "operation": "getServiceJobByServiceJobId",
        "request_id": "8e0d-req",
        "time": "2027-03-02T10:15:00Z",
        "status": 404,
        "rate_limit": "20.0",
        "error_codes": ["NotFound"],
        "endpoint": "sellingpartnerapi-na.amazon.com",
        "attempts": 1,
    }
    assert str(error) == (
        "getServiceJobByServiceJobId: HTTP 404: NotFound: No job with that id. "
        "(request id 8e0d-req, 2027-03-02T10:15:00Z, rate limit 20.0/s)"
    )


async def test_without_a_date_header_the_time_is_when_the_answer_was_read() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    async with client_for(
        FakeApi(replies(answer(429))), retry=RetryPolicy(max_retries=0)
    ) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.service_jobs.get("job-1")
    after = datetime.now(UTC)

    info = caught.value.support_info()
    read = datetime.strptime(info["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= read <= after
    assert info["rate_limit"] is None
    assert info["error_codes"] == []
    assert f"(request id req-1, {info['time']})" in str(caught.value)


async def test_attempts_count_in_the_support_info_after_retries() -> None:
    async with client_for(
        FakeApi(replies(answer(503))), retry=RetryPolicy(max_retries=2, base_delay=0)
    ) as client:
        with pytest.raises(ApiStatusError) as caught:
            await client.service_jobs.get("job-1")

    assert caught.value.support_info()["attempts"] == 3


async def test_an_operation_failed_error_gives_the_same_facts() -> None:
    body = {"errors": [{"code": "InvalidInput", "message": "Unknown resource."}]}
    headers = {"x-amzn-RequestId": "r-200", "x-amzn-RateLimit-Limit": "5.0", "Date": DATE}
    async with client_for(FakeApi(replies(answer(200, body, **headers)))) as client:
        with pytest.raises(OperationFailedError) as caught:
            await client.reservations.cancel("rsv-1")

    error = caught.value
    assert error.support_info() == {
        "operation": "cancelReservation",
        "request_id": "r-200",
        "time": "2027-03-02T10:15:00Z",
        "status": 200,
        "rate_limit": "5.0",
        "error_codes": ["InvalidInput"],
        "endpoint": "sellingpartnerapi-na.amazon.com",
        "attempts": 1,
    }
    assert str(error).endswith("(request id r-200, 2027-03-02T10:15:00Z, rate limit 5.0/s)")
    assert error.headers["X-AMZN-REQUESTID"] == "r-200"


@pytest.mark.parametrize(
    "date", ["not a date", "", "Tue, 99 Foo 2027 10:15:00 GMT", "Tue, 02 Mar 2027 10:15:00 -0000"]
)
def test_an_odd_date_header_falls_back_or_reads_as_utc(date: str) -> None:
    error = ApiStatusError(status_code=500, headers={"Date": date})
    if date.endswith("-0000"):
        assert error.answered_at == datetime(2027, 3, 2, 10, 15, tzinfo=UTC)
    else:
        assert abs(datetime.now(UTC) - error.answered_at) < timedelta(minutes=1)
    assert error.answered_at.tzinfo is not None


def test_server_text_in_the_support_info_is_made_printable() -> None:
    error = OperationFailedError(
        status_code=200,
        errors=[Error(code="Bad\nCode", message="m")],
        headers={"x-amzn-RateLimit-Limit": "5\x1b[31m"},
    )
    info = error.support_info()
    assert info["error_codes"] == ["Bad\\nCode"]
    assert info["rate_limit"] == "5\\u001b[31m"
    assert "\n" not in str(error)
    assert "\x1b" not in str(error)


def test_the_facts_survive_pickling() -> None:
    error = ApiStatusError(
        status_code=503, headers={"Date": DATE, "x-amzn-RequestId": "r"}, request_id="r", host="h"
    )
    clone = pickle.loads(pickle.dumps(error))
    assert clone.support_info() == error.support_info()
    assert str(clone) == str(error)


# --- the wire logger ---------------------------------------------------------------------


@pytest.fixture
def wire(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    logger = logging.getLogger("spapi_services.wire")
    caplog.set_level(logging.DEBUG, logger="spapi_services.wire")
    yield caplog
    logger.setLevel(logging.NOTSET)


async def test_the_wire_logger_shows_the_request_line_and_headers_redacted(
    wire: pytest.LogCaptureFixture,
) -> None:
    body = {**job_body(), "payload": {**job_body()["payload"], "buyer": {"name": "Jane Buyer"}}}
    answered = answer(200, body, **{"x-amzn-RateLimit-Limit": "5.0", "Set-Cookie": "s=secret"})
    async with client_for(FakeApi(replies(answered))) as client:
        await client.service_jobs.get("job 1")

    lines = [r.getMessage() for r in wire.records if r.name == "spapi_services.wire"]
    assert len(lines) == 2
    request, response = lines
    assert request.startswith(
        "> GET https://sellingpartnerapi-na.amazon.com/service/v1/serviceJobs/job%201 attempt=1 "
    )
    assert "x-amz-access-token: <redacted>" in request
    assert "User-Agent: spapi-services/" in request
    assert request.endswith("(no body)")
    assert response.startswith("< GET getServiceJobByServiceJobId -> 200 headers={")
    assert "x-amzn-RateLimit-Limit: 5.0" in response
    assert "Set-Cookie: <redacted>" in response
    assert response.endswith(f"({len(answered.body)}-byte body)")
    text = "\n".join(lines)
    assert ACCESS_TOKEN not in text
    assert "Jane" not in text
    assert "secret" not in text


async def test_the_sdks_debug_level_alone_does_not_turn_the_wire_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="spapi_services")
    async with client_for(FakeApi(replies(answer(200, job_body())))) as client:
        await client.service_jobs.get("job-1")

    assert any(r.name == "spapi_services" for r in caplog.records)  # the usual lines
    assert [r for r in caplog.records if r.name == "spapi_services.wire"] == []
