"""No secret and no buyer's data in anything exported: every span, event and metric.

A day's work against the emulator, with the SDK's instrumentation and aiohttp's on (its
default settings, which capture no header): every operation, every job paged through
(each carries a buyer's name, phone and address), a document uploaded, and the failures
that carry the most context (API errors, an error page, a revoked token, an LWA refusal
and an outage).  Then every exported span (attributes, events, status) and every metric
is searched for the client secret, the refresh token, every access token issued, and
every buyer's name, phone and address.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from _emulators import emulators
from _timers import RecordingTimer
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from reliability._scenarios import NOW, SCENARIOS, US

from spapi_services import (
    AuthenticationError,
    LwaCredentials,
    NotFoundError,
    RetryPolicy,
    ServicesClient,
    ServiceUnavailableError,
    UnprocessableEntityError,
)
from spapi_services.emulator import FakeClock, ServicesEmulator

from .conftest import Telemetry

#: Whatever cannot be named in advance: every LWA secret and token starts like this.
PREFIXES = ("Atza|", "Atzr|", "amzn1.oa2-cs.")


@pytest.fixture
async def emu() -> AsyncIterator[ServicesEmulator]:
    async with emulators(jobs=40, seed=5, clock=FakeClock(NOW), enforce_limits=False) as start:
        yield await start()


def personal_data(emu: ServicesEmulator) -> set[str]:
    found: set[str] = set()
    for job in emu.store.jobs.values():
        buyer = job.details.get("buyer", {})
        address = job.details.get("serviceLocation", {}).get("address", {})
        for value in (
            buyer.get("name"),
            buyer.get("phone"),
            address.get("name"),
            address.get("addressLine1"),
            address.get("phone"),
        ):
            if value:
                found.add(value)
    assert found, "the seeded jobs carry no buyer data: the search would be blind"
    return found


def exported_texts(telemetry: Telemetry) -> list[str]:
    texts = [span.to_json() for span in telemetry.spans()]
    data = telemetry.reader.get_metrics_data()
    if data is not None:
        texts.append(data.to_json())
    return texts


async def test_nothing_secret_or_personal_is_exported(
    emu: ServicesEmulator, telemetry: Telemetry
) -> None:
    http = create_trace_config(tracer_provider=telemetry.tracer_provider)

    def client(**kwargs: Any) -> ServicesClient:
        kwargs.setdefault("credentials", emu.credentials)
        return ServicesClient(
            endpoint=emu.url,
            token_url=emu.token_url,
            marketplace_id=US,
            rate_limits=False,
            retry=RetryPolicy(max_retries=2),
            timer=RecordingTimer(),
            trace_configs=[http],
            **telemetry.providers,
            **kwargs,
        )

    issued: set[str] = set()
    async with client() as services:
        for scenario in SCENARIOS.values():
            await scenario.call(services, scenario.prepare(emu))
        jobs = services.service_jobs.list(created_after=NOW - timedelta(days=3650))
        assert len([job async for job in jobs]) == len(
            [j for j in emu.store.jobs.values() if j.marketplace_id == US]
        )
        await services.documents.upload(b"%PDF-1.4 proof of appointment")

        with pytest.raises(NotFoundError):
            await services.service_jobs.get("no-such-job")
        closed = emu.store.find_jobs(status="COMPLETED")[0].service_job_id
        with pytest.raises(UnprocessableEntityError):
            await services.service_jobs.cancel(closed, reason_code="V1")
        emu.faults.set("getServiceJobs", error_rate=1.0, error_status=503)
        with pytest.raises(ServiceUnavailableError):
            await services.service_jobs.list_page(created_after=NOW - timedelta(days=30))
        emu.faults.clear("getServiceJobs")
        issued |= set(emu.auth._tokens)
        emu.auth.revoke_all()  # the next call is refused, refreshes its token, and succeeds
        await services.service_jobs.get(next(iter(emu.store.jobs)))
        issued |= set(emu.auth._tokens)

    wrong = LwaCredentials(
        emu.credentials.client_id,
        "amzn1.oa2-cs.v1.WRONG-SECRET-0123456789",
        emu.credentials.refresh_token,
    )
    async with client(credentials=wrong) as refused:
        with pytest.raises(AuthenticationError):
            await refused.service_jobs.get("job-1")
    emu.faults.set("token", error_rate=1.0, error_status=503)
    async with client() as outage:
        with pytest.raises(AuthenticationError):
            await outage.service_jobs.get("job-1")

    texts = exported_texts(telemetry)
    # The search sees what it looks for: request ids, and the refresh after the revocation.
    assert any("spapi.request_id" in t for t in texts)
    assert any("spapi.lwa.exchanges" in t for t in texts)
    assert any('"spapi.auth.refreshed": true' in t for t in texts)
    assert len(issued) >= 2
    creds = emu.credentials
    forbidden = {creds.client_secret, creds.refresh_token, wrong.client_secret, *issued}
    found = [s[:12] for s in forbidden | set(PREFIXES) if any(s in t for t in texts)]
    assert found == [], f"secrets exported: {found}"
    personal = [p for p in personal_data(emu) if any(p in t for t in texts)]
    assert personal == [], f"buyers' data exported: {personal}"


async def test_the_search_is_not_blind(emu: ServicesEmulator, telemetry: Telemetry) -> None:
    # The same search, on a span that does hold a secret, finds it.
    tracer = telemetry.tracer_provider.get_tracer("careless")
    with tracer.start_as_current_span("careless", attributes={"x": emu.credentials.client_secret}):
        pass
    assert any(emu.credentials.client_secret in t for t in exported_texts(telemetry))
