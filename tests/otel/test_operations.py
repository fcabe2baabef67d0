"""Every operation's span and metrics, against the emulator over real sockets.

Each of the 17 operations is made once, as the reliability scenarios set it up, and its
span is compared with what the emulator itself logged for the request: the status, the
request id, the rate-limit header it sent.  The document upload adds a span of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from _emulators import emulators
from e2e.conftest import tiny_png
from opentelemetry.trace import SpanKind, StatusCode
from reliability._scenarios import NOW, SCENARIOS, US

from spapi_services import ServicesClient
from spapi_services._routes import ROUTES
from spapi_services.emulator import FakeClock, ServicesEmulator

from .conftest import Telemetry

PAGINATED = {"getServiceJobs", "getRangeSlotCapacity", "getFixedSlotCapacity"}


@pytest.fixture
async def emu() -> AsyncIterator[ServicesEmulator]:
    async with emulators(jobs=40, seed=5, clock=FakeClock(NOW), enforce_limits=False) as start:
        yield await start()


@pytest.fixture
async def client(emu: ServicesEmulator, telemetry: Telemetry) -> AsyncIterator[ServicesClient]:
    async with ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
        rate_limits=False,
        **telemetry.providers,
    ) as made:
        yield made


@pytest.mark.parametrize("operation", sorted(SCENARIOS))
async def test_every_operation_has_its_span(
    operation: str, emu: ServicesEmulator, client: ServicesClient, telemetry: Telemetry
) -> None:
    scenario = SCENARIOS[operation]
    await scenario.call(client, scenario.prepare(emu))

    span = telemetry.span(operation)
    (logged,) = [r for r in emu.requests if r.operation == operation]
    expected = {
        "rpc.system": "spapi",
        "rpc.service": "services",
        "rpc.method": operation,
        "server.address": "127.0.0.1",
        "server.port": emu.port,
        "http.request.method": ROUTES[operation].method,
        "http.response.status_code": logged.status,
        "spapi.request_id": logged.request_id,
        "spapi.attempts": 1,
        "spapi.rate_limit.limit": float(emu.limits.header(operation)),
    }
    if operation in PAGINATED:
        expected["spapi.page"] = 1
    attributes = dict(span.attributes or {})
    assert {k: attributes.get(k) for k in expected} == expected
    assert attributes["spapi.rate_limit.wait"] == 0.0  # no client-side plan
    assert attributes["spapi.queue.wait"] >= 0.0
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert 200 <= logged.status < 300

    ok = {"rpc.method": operation, "spapi.outcome": "ok"}
    assert telemetry.total("spapi.client.calls", **ok) == 1
    (duration,) = telemetry.points("spapi.client.call.duration", **ok)
    assert duration.count == 1
    assert 0 < duration.sum <= (span.end_time - span.start_time) / 1e9 + 0.01
    assert telemetry.metrics()["spapi.client.call.duration"][0] == "s"


async def test_a_document_upload_has_a_span_beside_its_destinations(
    emu: ServicesEmulator, client: ServicesClient, telemetry: Telemetry
) -> None:
    png = tiny_png()
    document = await client.documents.upload(png)

    (destination,) = [r for r in emu.requests if r.operation == "upload"]
    put = telemetry.span("document upload")
    assert put.kind is SpanKind.CLIENT
    assert put.status.status_code is StatusCode.UNSET
    attributes = dict(put.attributes or {})
    assert attributes["http.request.method"] == "PUT"
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["spapi.document.content_type"] == "PNG"
    # Encrypted on the way: the stored size is the ciphertext's, at least the image's.
    assert attributes["spapi.document.size"] == destination.body_size >= len(png)
    assert attributes["spapi.upload_destination_id"] == document.upload_destination_id
    made = telemetry.span("createServiceDocumentUploadDestination")
    assert made.end_time <= put.start_time
    # The presigned URL's query (its signature) is nowhere.
    assert destination.query
    exported = put.to_json()
    assert [v for v in destination.query.values() if v in exported] == []
