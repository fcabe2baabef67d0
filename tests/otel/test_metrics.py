"""The SDK's metrics: names, units, attributes, and what each counts."""

from __future__ import annotations

from typing import Any

import pytest
from _timers import RecordingTimer

from spapi_services import (
    AuthenticationError,
    NotFoundError,
    RetryPolicy,
)
from spapi_services._otel import METRICS

from ._api import GET, FakeApi, PacedPlan, answer, client_for, job_body, replies
from .conftest import Telemetry

NOT_FOUND = {"errors": [{"code": "NotFound", "message": "No such job."}]}


async def test_calls_are_counted_and_timed_by_operation_and_outcome(telemetry: Telemetry) -> None:
    async def handler(method: str, url: Any, *_: Any) -> Any:
        return answer(404, NOT_FOUND) if url.path.endswith("/missing") else answer(200, job_body())

    async with client_for(FakeApi(handler), **telemetry.providers) as client:
        await client.service_jobs.get("job-1")
        await client.service_jobs.get("job-2")
        with pytest.raises(NotFoundError):
            await client.service_jobs.get("missing")

    ok = {"rpc.method": GET, "spapi.outcome": "ok"}
    failed = {"rpc.method": GET, "spapi.outcome": "error", "error.type": "NotFoundError"}
    assert telemetry.total("spapi.client.calls", **ok) == 2
    assert telemetry.total("spapi.client.calls", **failed) == 1
    (timed_ok,) = telemetry.points("spapi.client.call.duration", **ok)
    (timed_failed,) = telemetry.points("spapi.client.call.duration", **failed)
    assert (timed_ok.count, timed_failed.count) == (2, 1)
    assert timed_ok.sum > 0
    # An ok call's attributes are exactly these two: a dashboard can group by them.
    assert [dict(p.attributes) for p in telemetry.points("spapi.client.calls", **ok)] == [ok]


async def test_durations_fall_into_buckets_made_for_seconds(telemetry: Telemetry) -> None:
    async with client_for(FakeApi(replies(answer(200, job_body()))), **telemetry.providers) as c:
        await c.service_jobs.get("job-1")

    (point,) = telemetry.points("spapi.client.call.duration")
    assert point.explicit_bounds[:3] == (0.005, 0.01, 0.025)
    assert point.explicit_bounds[-1] == 120.0


async def test_token_requests_are_counted_by_outcome(telemetry: Telemetry) -> None:
    api = FakeApi(
        replies(answer(200, job_body())),
        token_answers=[answer(503), answer(500)],  # then the default: a token
    )
    async with client_for(
        api, retry=RetryPolicy(max_retries=3), timer=RecordingTimer(), **telemetry.providers
    ) as client:
        await client.service_jobs.get("job-1")
        await client.service_jobs.get("job-2")  # the token is at hand: no exchange

    assert telemetry.total("spapi.lwa.exchanges", **{"spapi.outcome": "ok"}) == 1
    failed = {"spapi.outcome": "error", "error.type": "AuthenticationError"}
    assert telemetry.total("spapi.lwa.exchanges", **failed) == 2
    assert client._core.transport.tokens.exchanges == 3


async def test_a_refused_exchange_is_counted_as_an_error(telemetry: Telemetry) -> None:
    refusal = answer(400, {"error": "invalid_grant", "error_description": "revoked"})
    api = FakeApi(replies(answer(200, job_body())), token_answers=[refusal])
    async with client_for(api, **telemetry.providers) as client:
        with pytest.raises(AuthenticationError):
            await client.service_jobs.get("job-1")

    failed = {"spapi.outcome": "error", "error.type": "AuthenticationError"}
    assert telemetry.total("spapi.lwa.exchanges", **failed) == 1
    assert telemetry.total("spapi.lwa.exchanges", **{"spapi.outcome": "ok"}) == 0
    span = telemetry.span(GET)
    assert span.attributes["error.type"] == "AuthenticationError"
    assert span.status.description == "Login with Amazon: invalid_grant"
    assert span.attributes["spapi.attempts"] == 0  # nothing reached the API


async def test_every_metric_has_the_documented_name_and_unit(telemetry: Telemetry) -> None:
    api = FakeApi(replies(answer(429), answer(503), answer(200, job_body())))
    async with client_for(
        api,
        retry=RetryPolicy(max_retries=3),
        timer=RecordingTimer(),
        rate_limits=PacedPlan(0.5),  # a plan: its wait is measured
        **telemetry.providers,
    ) as client:
        await client.service_jobs.get("job-1")

    exported = {name: unit for name, (unit, _) in telemetry.metrics().items()}
    assert exported == {name: unit for name, (_, unit, _) in METRICS.items()}
    for name in exported:
        assert name == name.lower()
        assert name.startswith("spapi.")
