"""Bring your own HTTP instrumentation: aiohttp trace configs reach the client's session,
and opentelemetry-instrumentation-aiohttp-client's spans nest under the SDK's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from _emulators import emulators
from opentelemetry.instrumentation.aiohttp_client import (
    AioHttpClientInstrumentor,
    create_trace_config,
)
from opentelemetry.trace import SpanKind
from reliability._scenarios import NOW, US

from spapi_services import ServicesClient
from spapi_services.emulator import FakeClock, ServicesEmulator

from ._api import FakeApi, answer, replies
from .conftest import Telemetry

GET = "getServiceJobByServiceJobId"
SANITIZE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SANITIZE_FIELDS"
CAPTURE = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST"


@pytest.fixture
async def emu() -> AsyncIterator[ServicesEmulator]:
    async with emulators(jobs=10, seed=5, clock=FakeClock(NOW), enforce_limits=False) as start:
        yield await start()


def client_of(emu: ServicesEmulator, **kwargs: Any) -> ServicesClient:
    return ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
        rate_limits=False,
        **kwargs,
    )


async def test_trace_configs_reach_the_session_the_client_makes(emu: ServicesEmulator) -> None:
    seen: list[tuple[str, str]] = []

    async def on_request_start(
        _: aiohttp.ClientSession, __: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        seen.append((params.method, params.url.path))

    config = aiohttp.TraceConfig()
    config.on_request_start.append(on_request_start)
    job = next(iter(emu.store.jobs))
    async with client_of(emu, trace_configs=[config], instrument=False) as client:
        await client.service_jobs.get(job)

    assert seen == [("POST", "/auth/o2/token"), ("GET", f"/service/v1/serviceJobs/{job}")]


async def test_aiohttp_spans_nest_under_the_calls_span(
    emu: ServicesEmulator, telemetry: Telemetry
) -> None:
    http = create_trace_config(tracer_provider=telemetry.tracer_provider)
    job = next(iter(emu.store.jobs))
    async with client_of(emu, trace_configs=[http], **telemetry.providers) as client:
        await client.service_jobs.get(job)
        await client.service_jobs.get(job)

    calls = telemetry.spans(GET)
    requests = [s for s in telemetry.spans() if s.name == "GET"]
    exchanges = [s for s in telemetry.spans() if s.name == "POST"]
    assert len(calls) == len(requests) == 2
    for call, request in zip(calls, requests, strict=True):
        assert request.kind is SpanKind.CLIENT
        assert request.parent is not None
        assert request.parent.span_id == call.context.span_id
    # The token exchange happened inside the first call, and is a child of it too.
    (exchange,) = exchanges
    assert exchange.parent is not None
    assert exchange.parent.span_id == calls[0].context.span_id


async def test_the_sanitize_setting_redacts_the_access_token_when_headers_are_captured(
    emu: ServicesEmulator, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The instrumentor reads the two settings when it instruments, and adds its trace
    # config to every session made after that: the client's own included.
    monkeypatch.setenv(CAPTURE, "x-amz-access-token,user-agent")
    monkeypatch.setenv(SANITIZE, "x-amz-access-token")
    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        async with client_of(emu, **telemetry.providers) as client:
            await client.service_jobs.get(next(iter(emu.store.jobs)))
    finally:
        instrumentor.uninstrument()

    (request,) = [s for s in telemetry.spans() if s.name == "GET"]
    attributes = dict(request.attributes or {})
    assert attributes["http.request.header.x_amz_access_token"] == ("[REDACTED]",)
    assert attributes["http.request.header.user_agent"][0].startswith("spapi-services/")
    assert request.parent is not None
    assert request.parent.span_id == telemetry.span(GET).context.span_id
    issued = set(emu.auth._tokens)
    assert issued
    assert [t for t in issued if t in request.to_json()] == []


async def test_create_trace_config_takes_the_same_setting_as_an_argument(
    emu: ServicesEmulator, telemetry: Telemetry
) -> None:
    http = create_trace_config(
        tracer_provider=telemetry.tracer_provider,
        captured_request_headers=["x-amz-access-token"],
        sensitive_headers=["x-amz-access-token"],
    )
    async with client_of(emu, trace_configs=[http], **telemetry.providers) as client:
        await client.service_jobs.get(next(iter(emu.store.jobs)))

    (request,) = [s for s in telemetry.spans() if s.name == "GET"]
    assert request.attributes["http.request.header.x_amz_access_token"] == ("[REDACTED]",)


def test_trace_configs_and_a_session_of_ones_own_do_not_mix() -> None:
    async def never(*_: Any) -> Any:
        raise AssertionError("nothing is sent")

    with pytest.raises(ValueError, match=r"^trace_configs: only for the session the client makes"):
        ServicesClient(
            access_token_provider=never,
            session=aiohttp.ClientSession.__new__(aiohttp.ClientSession),
            trace_configs=[aiohttp.TraceConfig()],
        )
    with pytest.raises(ValueError, match=r"^trace_configs: only for the client's own aiohttp"):
        ServicesClient(
            access_token_provider=never,
            sender=FakeApi(replies(answer(200))),
            trace_configs=[aiohttp.TraceConfig()],
        )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (aiohttp.TraceConfig(), r"^trace_configs: expected a list of aiohttp.TraceConfig, not one"),
        (["not a config"], r"^trace_configs\[0\]: expected an aiohttp.TraceConfig, got str"),
        (42, r"^trace_configs: expected a list of aiohttp.TraceConfig, got int"),
    ],
)
def test_trace_configs_are_checked(value: Any, message: str) -> None:
    async def never() -> str:
        raise AssertionError("nothing is sent")

    with pytest.raises(TypeError, match=message):
        ServicesClient(access_token_provider=never, trace_configs=value)
