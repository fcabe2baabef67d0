"""A call's span: its name, kind and attributes, its retries as events, its failures.

The API is an in-memory sender (the pipeline's seam), so every answer, header and retry
is chosen by the test; the back-offs are recorded instead of slept.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from _timers import ManualTimer, RecordingTimer
from opentelemetry.trace import SpanKind, StatusCode
from yarl import URL

from spapi_services import (
    ApiConnectionError,
    NotFoundError,
    OperationFailedError,
    RateLimitError,
    RawResponse,
    RetryPolicy,
    ServiceUnavailableError,
)

from ._api import GET, FakeApi, PacedPlan, answer, client_for, job_body, replies
from .conftest import Telemetry

ERROR_BODY = {"errors": [{"code": "NotFound", "message": "No job with that id."}]}


async def test_a_call_is_one_client_span_named_by_its_operation(telemetry: Telemetry) -> None:
    api = FakeApi(replies(answer(200, job_body(), **{"x-amzn-RateLimit-Limit": "5.0"})))
    # On a clock that stands still, the token arrives at once: no auth wait to report.
    async with client_for(api, timer=ManualTimer(), **telemetry.providers) as client:
        await client.service_jobs.get("job-1")

    span = telemetry.span(GET)
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert span.events == ()
    assert dict(span.attributes or {}) == {
        "rpc.system": "spapi",
        "rpc.service": "services",
        "rpc.method": GET,
        "server.address": "sellingpartnerapi-na.amazon.com",
        "server.port": 443,
        "http.request.method": "GET",
        "http.response.status_code": 200,
        "spapi.request_id": "req-1",
        "spapi.attempts": 1,
        "spapi.rate_limit.wait": 0.0,
        "spapi.queue.wait": 0.0,
        "spapi.rate_limit.limit": 5.0,
    }


async def test_the_wait_for_an_access_token_is_on_the_call_that_waited(
    telemetry: Telemetry,
) -> None:
    timer = ManualTimer()

    class SlowTokens(FakeApi):
        async def __call__(self, method: str, url: URL, *args: Any) -> RawResponse:
            if url.path.endswith("/token"):
                timer.advance(0.25)  # the exchange takes a quarter of a second
            return await super().__call__(method, url, *args)

    async with client_for(SlowTokens(replies(answer(200, job_body()))), timer=timer,
                          **telemetry.providers) as client:  # fmt: skip
        await client.service_jobs.get("job-1")
        await client.service_jobs.get("job-2")

    first, second = telemetry.spans(GET)
    assert first.attributes["spapi.auth.wait"] == pytest.approx(0.25)
    assert "spapi.auth.wait" not in second.attributes  # the token was at hand


async def test_status_request_id_and_rate_limit_are_the_last_attempts(
    telemetry: Telemetry,
) -> None:
    api = FakeApi(
        replies(
            answer(503, {"errors": []}, **{"x-amzn-RequestId": "req-a"}),
            answer(
                200, job_body(), **{"x-amzn-RequestId": "req-b", "x-amzn-RateLimit-Limit": "0.5"}
            ),
        )
    )
    async with client_for(
        api, retry=RetryPolicy(max_retries=2), timer=RecordingTimer(), **telemetry.providers
    ) as client:
        await client.service_jobs.get("job-1")

    attributes = telemetry.span(GET).attributes
    assert attributes["http.response.status_code"] == 200
    assert attributes["spapi.request_id"] == "req-b"
    assert attributes["spapi.attempts"] == 2
    assert attributes["spapi.rate_limit.limit"] == 0.5


async def test_retries_are_span_events_with_their_reason_and_delay(telemetry: Telemetry) -> None:
    timer = RecordingTimer()
    api = FakeApi(replies(answer(503), answer(500), answer(200, job_body())))
    async with client_for(
        api, retry=RetryPolicy(max_retries=3), timer=timer, **telemetry.providers
    ) as client:
        await client.service_jobs.get("job-1")

    events = telemetry.span(GET).events
    assert [e.name for e in events] == ["retry", "retry"]
    assert [dict(e.attributes) for e in events] == [
        {"spapi.retry.attempt": 1, "spapi.retry.reason": "HTTP 503", "spapi.retry.delay": timer[0]},
        {"spapi.retry.attempt": 2, "spapi.retry.reason": "HTTP 500", "spapi.retry.delay": timer[1]},
    ]
    assert telemetry.total("spapi.client.retries", **{"spapi.retry.reason": "HTTP 503"}) == 1
    assert telemetry.total("spapi.client.retries", **{"spapi.retry.reason": "HTTP 500"}) == 1


async def test_a_lost_connection_is_a_retry_whose_reason_names_it(telemetry: Telemetry) -> None:
    lost = [True]

    async def handler(*_: Any) -> RawResponse:
        if lost.pop() if lost else False:
            raise aiohttp.ServerDisconnectedError()
        return answer(200, job_body())

    async with client_for(
        FakeApi(handler),
        retry=RetryPolicy(max_retries=1),
        timer=RecordingTimer(),
        **telemetry.providers,
    ) as client:
        await client.service_jobs.get("job-1")

    (event,) = telemetry.span(GET).events
    assert event.attributes["spapi.retry.reason"] == "connection lost (ServerDisconnectedError)"
    # The metric's reason drops what varies from one failure to the next.
    assert telemetry.total("spapi.client.retries", **{"spapi.retry.reason": "connection lost"}) == 1


async def test_429s_are_counted_on_the_span_and_in_the_metrics(telemetry: Telemetry) -> None:
    api = FakeApi(replies(answer(429), answer(429), answer(200, job_body())))
    async with client_for(
        api, retry=RetryPolicy(max_retries=3), timer=RecordingTimer(), **telemetry.providers
    ) as client:
        await client.service_jobs.get("job-1")
        await client.service_jobs.get("job-2")

    first, second = telemetry.spans(GET)
    assert first.attributes["spapi.throttled"] == 2
    assert [e.attributes["spapi.retry.reason"] for e in first.events] == ["HTTP 429"] * 2
    assert "spapi.throttled" not in second.attributes
    assert telemetry.total("spapi.client.throttled", **{"rpc.method": GET}) == 2


async def test_a_429_that_ends_the_call_is_counted_too(telemetry: Telemetry) -> None:
    async with client_for(FakeApi(replies(answer(429))), **telemetry.providers) as client:
        with pytest.raises(RateLimitError):
            await client.service_jobs.get("job-1")

    assert telemetry.span(GET).attributes["spapi.throttled"] == 1
    assert telemetry.total("spapi.client.throttled") == 1


async def test_the_wait_for_the_usage_plan_is_an_attribute_and_a_histogram(
    telemetry: Telemetry,
) -> None:
    timer = ManualTimer()
    async with client_for(
        FakeApi(replies(answer(200, job_body()))),
        rate_limits=PacedPlan(0.75),
        timer=timer,
        **telemetry.providers,
    ) as client:
        await client.service_jobs.get("job-1")
        await client.service_jobs.get("job-2")

    assert [s.attributes["spapi.rate_limit.wait"] for s in telemetry.spans(GET)] == [0.75, 0.75]
    (point,) = telemetry.points("spapi.client.rate_limit.wait", **{"rpc.method": GET})
    assert (point.count, point.sum) == (2, 1.5)


async def test_no_plan_no_plan_wait_histogram(telemetry: Telemetry) -> None:
    async with client_for(FakeApi(replies(answer(200, job_body()))), **telemetry.providers) as c:
        await c.service_jobs.get("job-1")

    assert telemetry.points("spapi.client.rate_limit.wait") == []


# --- failures ------------------------------------------------------------------------


async def test_a_failed_call_sets_the_error_status_type_and_exception_event(
    telemetry: Telemetry,
) -> None:
    async with client_for(FakeApi(replies(answer(404, ERROR_BODY))), **telemetry.providers) as c:
        with pytest.raises(NotFoundError) as caught:
            await c.service_jobs.get("job-1")

    span = telemetry.span(GET)
    description = f"{GET}: HTTP 404: NotFound: No job with that id."
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == description
    assert span.attributes["error.type"] == "NotFoundError"
    assert span.attributes["http.response.status_code"] == 404
    assert span.attributes["spapi.request_id"] == "req-1"
    (event,) = span.events
    assert event.name == "exception"
    assert event.attributes["exception.type"] == "spapi_services.errors.NotFoundError"
    assert event.attributes["exception.message"] == description
    stack = event.attributes["exception.stacktrace"]
    assert stack.startswith("Traceback (most recent call last):\n")
    assert stack.endswith(f"spapi_services.errors.NotFoundError: {description}")
    assert "_transport.py" in stack
    # The span says less than the exception itself: no time, no headers, no notes.
    assert str(caught.value).startswith(description)


async def test_an_error_page_is_not_copied_into_the_span(telemetry: Telemetry) -> None:
    page = b"<html><body>Service down. Jane Buyer, 555-0100</body></html>"
    async with client_for(FakeApi(replies(answer(503, page))), **telemetry.providers) as c:
        with pytest.raises(ServiceUnavailableError) as caught:
            await c.service_jobs.get("job-1")

    assert "Jane Buyer" in str(caught.value)  # the exception keeps what it was told
    span = telemetry.span(GET)
    assert span.status.description == f"{GET}: HTTP 503: no error details"
    assert "Jane" not in repr(span.to_json())


async def test_a_2xx_with_errors_fails_its_span(telemetry: Telemetry) -> None:
    body = {"errors": [{"code": "InvalidInput", "message": "Unknown resource."}]}
    async with client_for(FakeApi(replies(answer(200, body))), **telemetry.providers) as c:
        with pytest.raises(OperationFailedError):
            await c.reservations.cancel("rsv-1")

    span = telemetry.span("cancelReservation")
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "OperationFailedError"
    assert span.status.description == "cancelReservation: HTTP 200: InvalidInput: Unknown resource."


async def test_no_answer_at_all_leaves_the_status_code_out(telemetry: Telemetry) -> None:
    async def refused(*_: Any) -> RawResponse:
        raise aiohttp.ServerDisconnectedError()

    async with client_for(FakeApi(refused), **telemetry.providers) as client:
        with pytest.raises(ApiConnectionError):
            await client.service_jobs.get("job-1")

    span = telemetry.span(GET)
    assert "http.response.status_code" not in span.attributes
    assert span.attributes["error.type"] == "ApiConnectionError"
    assert span.attributes["spapi.attempts"] == 1
    assert "connection lost" in (span.status.description or "")


async def test_someone_elses_exception_is_named_by_its_class_alone(telemetry: Telemetry) -> None:
    leaked = "Atza|" + "leaked-by-a-provider"

    async def provider() -> str:
        raise RuntimeError(f"vault said no to token {leaked}")

    async with client_for(
        FakeApi(replies(answer(200, job_body()))),
        access_token_provider=provider,
        **telemetry.providers,
    ) as client:
        with pytest.raises(RuntimeError):
            await client.service_jobs.get("job-1")

    span = telemetry.span(GET)
    assert span.attributes["error.type"] == "RuntimeError"
    assert span.status.description == "RuntimeError"
    assert leaked not in span.to_json()


async def test_a_cancelled_call_is_marked_cancelled_not_failed(telemetry: Telemetry) -> None:
    started = asyncio.Event()

    async def hangs(*_: Any) -> RawResponse:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("never answered")

    async with client_for(FakeApi(hangs), **telemetry.providers) as client:
        task = asyncio.create_task(client.service_jobs.get("job-1"))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    span = telemetry.span(GET)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["spapi.cancelled"] is True
    assert "error.type" not in span.attributes
    assert telemetry.total("spapi.client.calls", **{"spapi.outcome": "cancelled"}) == 1


# --- where the span sits ---------------------------------------------------------------


async def test_the_span_is_a_child_of_the_callers_and_current_while_it_runs(
    telemetry: Telemetry,
) -> None:
    from opentelemetry import trace

    seen: list[Any] = []

    async def handler(*_: Any) -> RawResponse:
        seen.append(trace.get_current_span().get_span_context())
        return answer(200, job_body())

    tracer = telemetry.tracer_provider.get_tracer("the application")
    async with client_for(FakeApi(handler), **telemetry.providers) as client:
        with tracer.start_as_current_span("nightly job") as parent:
            await client.service_jobs.get("job-1")
        # Outside: the caller's context is as it was.
        assert trace.get_current_span() is trace.INVALID_SPAN

    span = telemetry.span(GET)
    assert span.parent is not None
    assert span.parent.span_id == parent.get_span_context().span_id
    assert span.context.trace_id == parent.get_span_context().trace_id
    # The sender (aiohttp, and its instrumentation) runs inside the call's span.
    assert seen == [span.context]


async def test_with_options_copies_share_the_instrumentation(telemetry: Telemetry) -> None:
    api = FakeApi(replies(answer(200, job_body())))
    async with client_for(api, **telemetry.providers) as client:
        await client.with_options(timeout=5).service_jobs.get("job-1")

    assert len(telemetry.spans(GET)) == 1
    assert telemetry.total("spapi.client.calls", **{"rpc.method": GET}) == 1


async def test_an_activity_span_holds_the_calls_made_inside_it(telemetry: Telemetry) -> None:
    from spapi_services._otel import activity

    api = FakeApi(replies(answer(200, job_body())))
    async with client_for(api, **telemetry.providers) as client:
        with activity(client, "sync_jobs", {"spapi.sync.marketplaces": 2}) as run:
            await client.service_jobs.get("job-1")
            run.set("spapi.sync.pages", 7)
            run.set("spapi.sync.note", "line one\nline two")

    outer = telemetry.span("sync_jobs")
    assert outer.kind is SpanKind.INTERNAL
    assert dict(outer.attributes or {}) == {
        "spapi.sync.marketplaces": 2,
        "spapi.sync.pages": 7,
        "spapi.sync.note": "line one\\nline two",
    }
    call = telemetry.span(GET)
    assert call.parent is not None
    assert call.parent.span_id == outer.context.span_id


async def test_an_activity_that_fails_records_it_safely(telemetry: Telemetry) -> None:
    from spapi_services._otel import activity

    async with client_for(FakeApi(replies(answer(404, ERROR_BODY))), **telemetry.providers) as c:
        with pytest.raises(NotFoundError), activity(c, "sync_jobs"):
            await c.service_jobs.get("job-1")

    outer = telemetry.span("sync_jobs")
    assert outer.status.status_code is StatusCode.ERROR
    assert outer.attributes["error.type"] == "NotFoundError"
    assert [e.name for e in outer.events] == ["exception"]


async def test_an_activity_without_instrumentation_is_nothing(telemetry: Telemetry) -> None:
    from spapi_services._otel import activity

    api = FakeApi(replies(answer(200, job_body())))
    async with client_for(api, instrument=False, **telemetry.providers) as client:
        with activity(client, "sync_jobs") as run:
            run.set("spapi.sync.pages", 1)
            await client.service_jobs.get("job-1")

    assert telemetry.spans() == []
