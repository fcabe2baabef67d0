"""One DEBUG line per attempt, and nothing secret or personal in any log record."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

from spapi_services import ForbiddenError, RateLimits, RetryPolicy, ServiceUnavailableError

from ._helpers import (
    ACCESS_TOKEN,
    API_PATTERN,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    TOKEN_URL,
    ClientFactory,
    LoopClock,
    expect,
    lwa_ok,
)

BUYER_NAME = "Jane Q. Buyer-Unique"
BUYER_PHONE = "+1-206-555-0199"
JOB = {
    "payload": {
        "serviceJobId": "job-1",
        "buyer": {"name": BUYER_NAME, "phone": BUYER_PHONE},
        "serviceLocation": {"address": {"name": BUYER_NAME, "addressLine1": "1 Secret Lane"}},
    }
}
NEVER_LOGGED = (ACCESS_TOKEN, CLIENT_SECRET, REFRESH_TOKEN, BUYER_NAME, BUYER_PHONE, "Secret Lane")


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.append(record.exc_text or "")
        parts.append(repr(record.__dict__))
    return "\n".join(parts)


def sdk_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("spapi_services")]


def attempt_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [line for line in sdk_lines(caplog) if "attempt=" in line]


async def test_one_line_per_attempt(
    mock_api: aioresponses,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    sleeps: list[float],
) -> None:
    caplog.set_level(logging.DEBUG)
    lwa_ok(mock_api)
    queue = [
        CallbackResult(status=503, body="", headers={"x-amzn-RequestId": "rid-1"}),
        CallbackResult(payload=JOB, headers={"x-amzn-RequestId": "rid-2"}),
    ]
    mock_api.add(API_PATTERN, "GET", callback=lambda url, **kw: queue.pop(0), repeat=True)
    client = make_client(retry=RetryPolicy(max_retries=2), rate_limits=RateLimits())
    await client.service_jobs.get("job-1")

    lines = attempt_lines(caplog)
    assert len(lines) == 2
    first, second = lines
    for line in lines:
        assert line.startswith("GET /service/v1/serviceJobs/{serviceJobId} -> ")
        assert "elapsed=" in line
        assert "waited=" in line
    assert "-> 503 " in first
    assert "request_id=rid-1" in first
    assert "attempt=1" in first
    assert "-> 200 " in second
    assert "request_id=rid-2" in second
    assert "attempt=2" in second
    assert "job-1" not in "\n".join(lines)  # the template, not the id
    assert all(r.levelno == logging.DEBUG for r in caplog.records if "attempt=" in r.message)


async def test_connection_failures_are_logged_too(
    mock_api: aioresponses,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    sleeps: list[float],
) -> None:
    caplog.set_level(logging.DEBUG, logger="spapi_services")
    lwa_ok(mock_api)
    mock_api.get(API_PATTERN, exception=aiohttp.ServerDisconnectedError())
    expect(mock_api, "GET", payload=JOB)
    client = make_client(retry=RetryPolicy(max_retries=1))
    await client.service_jobs.get("job-1")
    first, second = attempt_lines(caplog)
    assert first.startswith("GET /service/v1/serviceJobs/{serviceJobId} -> ServerDisconnected")
    assert "attempt=1" in first
    assert "waited=" in first
    assert "-> 200 " in second
    assert "attempt=2" in second


async def test_nothing_secret_or_personal_is_logged(
    mock_api: aioresponses,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    sleeps: list[float],
) -> None:
    caplog.set_level(logging.DEBUG)
    lwa_ok(mock_api)
    expired = {"errors": [{"code": "Unauthorized", "message": "The access token has expired"}]}
    queue: list[Any] = [
        CallbackResult(status=403, payload=expired),
        CallbackResult(status=503, payload=JOB),
        CallbackResult(payload=JOB),
        CallbackResult(status=403, payload={"errors": [{"code": "Denied", "message": "no"}]}),
    ]
    mock_api.add(API_PATTERN, "GET", callback=lambda url, **kw: queue.pop(0), repeat=True)
    client = make_client(retry=RetryPolicy(max_retries=2))

    job = await client.service_jobs.get("job-1")
    assert job.buyer is not None
    assert job.buyer.name == BUYER_NAME
    with pytest.raises(ForbiddenError):
        await client.service_jobs.get("job-1")

    assert len(attempt_lines(caplog)) == 4
    logged = everything_logged(caplog)
    for secret in NEVER_LOGGED:
        assert secret not in logged


async def test_lwa_failures_log_no_secret(
    mock_api: aioresponses,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    sleeps: list[float],
) -> None:
    caplog.set_level(logging.DEBUG)
    mock_api.post(TOKEN_URL, status=500, body=f"echo {CLIENT_SECRET}", repeat=True)
    client = make_client(retry=RetryPolicy(max_retries=1))
    with pytest.raises(Exception, match="HTTP 500"):
        await client.service_jobs.get("job-1")
    assert any("LWA exchange failed" in line for line in sdk_lines(caplog))
    logged = everything_logged(caplog)
    for secret in NEVER_LOGGED:
        assert secret not in logged


async def test_error_bodies_are_not_logged(
    mock_api: aioresponses,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    lwa_ok(mock_api)
    expect(mock_api, "GET", status=503, payload={"errors": [{"code": "X", "message": BUYER_NAME}]})
    client = make_client()
    with pytest.raises(ServiceUnavailableError):
        await client.service_jobs.get("job-1")
    assert BUYER_NAME not in everything_logged(caplog)


async def test_waited_is_the_time_spent_on_the_limiter(
    mock_api: aioresponses,
    make_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
    loop_clock: LoopClock,
) -> None:
    caplog.set_level(logging.DEBUG, logger="spapi_services")
    lwa_ok(mock_api)
    expect(mock_api, "PUT", payload={}, repeat=True)
    client = make_client(rate_limits=RateLimits({"assignAppointmentResources": (0.5, 1)}))
    await client.appointments.assign_resources("job", "appt", ["t"])
    task = asyncio.create_task(client.appointments.assign_resources("job", "appt", ["t"]))
    for _ in range(50):
        await asyncio.sleep(0)
    loop_clock.now = 2.0
    for _ in range(50):
        await asyncio.sleep(0)
    assert task.done()
    await task
    first, second = attempt_lines(caplog)
    assert first.startswith("PUT /service/v1/serviceJobs/{serviceJobId}/appointments/")
    assert "waited=0.000s" in first
    assert "waited=2.000s" in second


async def test_the_attempt_after_a_token_refresh_is_counted(
    mock_api: aioresponses, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="spapi_services")
    lwa_ok(mock_api)
    expired = {"errors": [{"code": "Unauthorized", "message": "The access token has expired"}]}
    queue = [CallbackResult(status=403, payload=expired), CallbackResult(payload=JOB)]
    mock_api.add(API_PATTERN, "GET", callback=lambda url, **kw: queue.pop(0), repeat=True)
    client = make_client()
    await client.service_jobs.get("job-1")
    first, second = attempt_lines(caplog)
    assert "-> 403 " in first
    assert "attempt=1" in first
    assert "-> 200 " in second
    assert "attempt=2" in second
