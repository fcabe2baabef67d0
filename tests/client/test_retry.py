"""Retries: the two pure functions, then what the transport does with them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

from spapi_services import (
    ApiConnectionError,
    ApiTimeoutError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ServiceUnavailableError,
)
from spapi_services._retry import (
    Failure,
    classify,
    parse_retry_after,
    retry_delay,
    should_retry,
)

from ._helpers import API_PATTERN, ClientFactory, lwa_ok, token_posts

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
JOB = {"payload": {"serviceJobId": "job-1"}}
BOOKED = {"appointmentId": "appt-12345"}

# --- pure functions ------------------------------------------------------------------

DEFAULT = RetryPolicy()


@pytest.mark.parametrize(
    ("failure", "retries_done", "idempotent", "retry_after", "policy", "expected"),
    [
        (Failure.THROTTLED, 0, False, None, DEFAULT, True),
        (Failure.THROTTLED, 2, True, None, DEFAULT, True),
        (Failure.THROTTLED, 3, True, None, DEFAULT, False),  # the cap
        (Failure.NOT_SENT, 0, False, None, DEFAULT, True),
        (Failure.SERVER, 0, True, None, DEFAULT, True),
        (Failure.SERVER, 0, False, None, DEFAULT, False),
        (Failure.AMBIGUOUS, 0, True, None, DEFAULT, True),
        (Failure.AMBIGUOUS, 0, False, None, DEFAULT, False),
        (Failure.SERVER, 0, False, None, RetryPolicy(retry_non_idempotent=True), True),
        (Failure.AMBIGUOUS, 0, False, None, RetryPolicy(retry_non_idempotent=True), True),
        (Failure.FINAL, 0, True, None, DEFAULT, False),
        (Failure.FINAL, 0, True, None, RetryPolicy(retry_non_idempotent=True), False),
        (Failure.THROTTLED, 0, True, 60.0, DEFAULT, True),  # at the limit: wait
        (Failure.THROTTLED, 0, True, 60.5, DEFAULT, False),  # beyond it: give up now
        (Failure.SERVER, 0, True, 5.0, RetryPolicy(max_retry_after=4), False),
        (Failure.THROTTLED, 0, True, None, RetryPolicy(max_retries=0), False),
        (Failure.NOT_SENT, 0, True, None, RetryPolicy(max_retries=0), False),
    ],
)
def test_should_retry(
    failure: Failure,
    retries_done: int,
    idempotent: bool,
    retry_after: float | None,
    policy: RetryPolicy,
    expected: bool,
) -> None:
    assert (
        should_retry(
            policy,
            failure,
            retries_done=retries_done,
            idempotent=idempotent,
            retry_after=retry_after,
        )
        is expected
    )


@pytest.mark.parametrize(
    ("failure", "retries_done", "retry_after", "rand", "policy", "expected"),
    [
        (Failure.SERVER, 0, None, 0.0, DEFAULT, 0.5),
        (Failure.SERVER, 0, None, 1.0, DEFAULT, 0.375),  # at most 25 % off
        (Failure.SERVER, 1, None, 0.0, DEFAULT, 1.0),
        (Failure.SERVER, 3, None, 0.5, DEFAULT, 4.0 * 0.875),
        (Failure.SERVER, 4, None, 0.0, DEFAULT, 8.0),
        (Failure.SERVER, 30, None, 0.0, DEFAULT, 8.0),  # capped
        (Failure.SERVER, 1000, None, 0.0, DEFAULT, 8.0),  # no overflow
        (Failure.NOT_SENT, 2, None, 0.0, DEFAULT, 2.0),
        # A 429 waits a random share of the whole back-off ("full jitter").
        (Failure.THROTTLED, 2, None, 0.0, DEFAULT, 0.0),
        (Failure.THROTTLED, 2, None, 0.7, DEFAULT, 2.0 * 0.7),
        (Failure.THROTTLED, 30, None, 0.5, DEFAULT, 4.0),  # capped before the draw
        (Failure.THROTTLED, 0, 2.5, 0.9, DEFAULT, 2.5),  # the server's word wins
        (Failure.SERVER, 5, 0.0, 0.9, DEFAULT, 0.0),
        (Failure.SERVER, 0, None, 0.9, RetryPolicy(jitter=0), 0.5),
        (Failure.SERVER, 2, None, 0.0, RetryPolicy(base_delay=0.1, max_delay=0.3), 0.3),
    ],
)
def test_retry_delay(
    failure: Failure,
    retries_done: int,
    retry_after: float | None,
    rand: float,
    policy: RetryPolicy,
    expected: float,
) -> None:
    delay = retry_delay(
        policy,
        failure,
        retries_done=retries_done,
        retry_after=retry_after,
        rand=lambda: rand,
    )
    assert delay == pytest.approx(expected)


@pytest.mark.parametrize(
    ("status", "failure"),
    [
        (429, Failure.THROTTLED),
        (500, Failure.SERVER),
        (502, Failure.SERVER),
        (503, Failure.SERVER),
        (504, Failure.SERVER),
        (400, Failure.FINAL),
        (403, Failure.FINAL),
        (404, Failure.FINAL),
        (422, Failure.FINAL),
        (501, Failure.FINAL),
    ],
)
def test_classify(status: int, failure: Failure) -> None:
    assert classify(status) is failure


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-1", None),
        ("soon", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:59:00 GMT", now=now) == 0.0  # past: now


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_retries": -1},
        {"max_retries": True},
        {"max_retries": 1.5},
        {"base_delay": -0.1},
        {"max_delay": -1},
        {"max_retry_after": -1},
        {"jitter": 1.5},
        {"jitter": -0.1},
        {"jitter": float("nan")},
        {"base_delay": float("nan")},
        {"base_delay": float("inf")},
        {"max_delay": True},
        {"max_retry_after": float("nan")},
    ],
)
def test_policy_refuses_nonsense(kwargs: dict[str, Any]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        RetryPolicy(**kwargs)


def test_policy_may_obey_any_retry_after() -> None:
    patient = RetryPolicy(max_retry_after=float("inf"))
    assert should_retry(
        patient, Failure.THROTTLED, retries_done=0, idempotent=True, retry_after=1e6
    )


# --- the transport ---------------------------------------------------------------------


def answers(m: aioresponses, method: str, *responses: Any) -> list[int]:
    """Answer ``method`` requests in order (a CallbackResult or an exception each)."""
    attempts: list[int] = []
    queue = list(responses)

    def callback(url: Any, **kwargs: Any) -> CallbackResult:
        attempts.append(1)
        answer = queue.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, CallbackResult)
        return answer

    m.add(API_PATTERN, method=method, callback=callback, repeat=True)
    return attempts


def status(code: int, **kwargs: Any) -> CallbackResult:
    kwargs.setdefault("payload", {"errors": [{"code": "E", "message": f"HTTP {code}"}]})
    return CallbackResult(status=code, **kwargs)


def ok(payload: Any) -> CallbackResult:
    return CallbackResult(payload=payload)


async def test_429_on_a_post_is_retried(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, "POST", status(429), ok(BOOKED))
    client = make_client(retry=RetryPolicy(max_retries=2))
    result = await client.appointments.add("job-1", start_time=T0)
    assert result.appointment_id == "appt-12345"
    assert len(attempts) == 2
    assert len(sleeps) == 1
    assert 0 <= sleeps[0] <= 0.5  # full jitter: anywhere up to the first back-off


async def test_503_on_a_post_is_not_retried(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, "POST", status(503), ok(BOOKED))
    client = make_client(retry=RetryPolicy(max_retries=3))
    with pytest.raises(ServiceUnavailableError):
        await client.appointments.add("job-1", start_time=T0)
    assert len(attempts) == 1  # the appointment may exist: never book it twice
    assert sleeps == []


async def test_503_on_a_post_with_retry_non_idempotent(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, "POST", status(503), ok(BOOKED))
    client = make_client(retry=RetryPolicy(max_retries=3, retry_non_idempotent=True))
    await client.appointments.add("job-1", start_time=T0)
    assert len(attempts) == 2


@pytest.mark.parametrize("code", [500, 502, 503, 504])
async def test_5xx_on_a_get_is_retried(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float], code: int
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, "GET", status(code, body="", payload=None), ok(JOB))
    client = make_client(retry=RetryPolicy(max_retries=2))
    job = await client.service_jobs.get("job-1")
    assert job.service_job_id == "job-1"
    assert len(attempts) == 2
    assert len(sleeps) == 1


async def test_connection_error_on_a_get_is_retried(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    attempts = answers(
        mock_api,
        "GET",
        aiohttp.ClientConnectionError("Connection refused"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientPayloadError("cut short"),
        ok(JOB),
    )
    client = make_client(retry=RetryPolicy(max_retries=3))
    await client.service_jobs.get("job-1")
    assert len(attempts) == 4
    assert len(sleeps) == 3


async def test_connection_lost_on_a_post_is_not_retried(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, "POST", aiohttp.ServerDisconnectedError(), ok(BOOKED))
    client = make_client(retry=RetryPolicy(max_retries=2))
    with pytest.raises(ApiConnectionError) as caught:
        await client.appointments.add("job-1", start_time=T0)
    assert not isinstance(caught.value, ApiTimeoutError)
    assert isinstance(caught.value.__cause__, aiohttp.ServerDisconnectedError)
    assert len(attempts) == 1


async def test_failed_connect_on_a_post_is_retried(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    refused = aiohttp.ClientConnectorError(
        mock.Mock(host="api.test", port=443, ssl=True), OSError(111, "Connection refused")
    )
    attempts = answers(mock_api, "POST", refused, ok(BOOKED))
    client = make_client(retry=RetryPolicy(max_retries=2))
    await client.appointments.add("job-1", start_time=T0)
    assert len(attempts) == 2  # nothing was sent, so nothing can be booked twice


async def test_tls_failure_is_not_retried(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    bad_certificate = aiohttp.ClientConnectorCertificateError(
        mock.Mock(host="api.test", port=443, ssl=True), ValueError("self-signed certificate")
    )
    attempts = answers(mock_api, "GET", bad_certificate, ok(JOB))
    client = make_client(retry=RetryPolicy(max_retries=3))
    with pytest.raises(ApiConnectionError, match="TLS"):
        await client.service_jobs.get("job-1")
    assert len(attempts) == 1  # it would fail the same way again
    assert sleeps == []


@pytest.mark.parametrize(("method", "tries"), [("GET", 3), ("POST", 1)])
async def test_timeouts_are_retried_only_when_idempotent(
    mock_api: aioresponses,
    make_client: ClientFactory,
    sleeps: list[float],
    method: str,
    tries: int,
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, method, *[TimeoutError()] * 3)
    client = make_client(retry=RetryPolicy(max_retries=2))
    call = (
        client.service_jobs.get("job-1")
        if method == "GET"
        else client.appointments.add("job-1", start_time=T0)
    )
    with pytest.raises(ApiTimeoutError):
        await call
    assert len(attempts) == tries


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_max_retries_is_honoured(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float], max_retries: int
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, "GET", *[status(500)] * 10)
    client = make_client(retry=RetryPolicy(max_retries=max_retries, jitter=0))
    with pytest.raises(InternalServerError):
        await client.service_jobs.get("job-1")
    assert len(attempts) == max_retries + 1
    assert sleeps == [0.5 * 2**i for i in range(max_retries)]


async def test_client_errors_are_never_retried(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, "GET", status(400), ok(JOB))
    client = make_client(retry=RetryPolicy(max_retries=3))
    with pytest.raises(BadRequestError):
        await client.service_jobs.get("job-1")
    assert len(attempts) == 1


async def test_retry_after_is_honoured(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    attempts = answers(
        mock_api,
        "GET",
        status(429, headers={"Retry-After": "7"}),
        status(503, headers={"retry-after": "0.25"}),
        ok(JOB),
    )
    client = make_client(retry=RetryPolicy(max_retries=3))
    await client.service_jobs.get("job-1")
    assert len(attempts) == 3
    assert sleeps == [7.0, 0.25]


async def test_too_long_retry_after_gives_up_at_once(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, "GET", status(429, headers={"Retry-After": "120"}), ok(JOB))
    client = make_client(retry=RetryPolicy(max_retries=3, max_retry_after=60))
    with pytest.raises(RateLimitError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.headers["Retry-After"] == "120"
    assert len(attempts) == 1
    assert sleeps == []


async def test_with_options_overrides_the_policy_per_call(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    attempts = answers(mock_api, "GET", status(503), status(503), ok(JOB), status(503), ok(JOB))
    client = make_client(retry=RetryPolicy(max_retries=0))
    patient = client.with_options(retry=RetryPolicy(max_retries=2))

    assert (await patient.service_jobs.get("job-1")).service_job_id == "job-1"
    assert len(attempts) == 3
    with pytest.raises(ServiceUnavailableError):
        await client.service_jobs.get("job-1")  # the original keeps its own policy
    assert len(attempts) == 4
    assert (await patient.service_jobs.get("job-1")).service_job_id == "job-1"
    assert token_posts(mock_api) == 1  # one token, shared


async def test_with_options_timeout_reaches_the_request(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    seen: list[Any] = []

    def callback(url: Any, **kwargs: Any) -> CallbackResult:
        seen.append(kwargs["timeout"])
        return ok(JOB)

    mock_api.add(API_PATTERN, method="GET", callback=callback, repeat=True)
    client = make_client(timeout=30)
    await client.service_jobs.get("job-1")
    await client.with_options(timeout=2.5).service_jobs.get("job-1")
    assert [t.total for t in seen] == [30.0, 2.5]
    with pytest.raises(ValueError, match="timeout"):
        client.with_options(timeout=0)


async def test_retry_sleeps_grow_with_jitter(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    lwa_ok(mock_api)
    answers(mock_api, "GET", *[status(502)] * 5)
    client = make_client(retry=RetryPolicy(max_retries=4))
    with pytest.raises(ServerError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.status_code == 502
    assert len(sleeps) == 4
    for retry, delay in enumerate(sleeps):
        assert 0.5 * 2**retry * 0.75 <= delay <= 0.5 * 2**retry
