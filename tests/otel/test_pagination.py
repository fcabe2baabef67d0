"""Paginated operations: a span per page, numbered along the chain of page tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _emulators import emulators
from opentelemetry.trace import StatusCode
from reliability._scenarios import NOW, US
from yarl import URL

from spapi_services import RawResponse, ServicesClient
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.sync import SqliteSink, sync_jobs

from ._api import FakeApi, answer, client_for
from .conftest import Telemetry

LIST = "getServiceJobs"
SINCE = NOW - timedelta(days=3650)


def paged(param: str, pages: int, *, wrapped: bool) -> FakeApi:
    """An API whose answers chain ``pages`` pages by page token (``param`` in the query)."""

    async def handler(method: str, url: URL, *_: Any) -> RawResponse:
        token = url.query.get(param)
        number = 1 if token is None else int(token.removeprefix("tok+"))
        body: dict[str, Any] = {}
        if number < pages:
            body["nextPageToken"] = f"tok+{number + 1}"
        return answer(200, {"payload": {"jobs": [], **body}} if wrapped else body)

    return FakeApi(handler)


async def test_each_page_of_a_job_list_is_a_span_with_its_number(telemetry: Telemetry) -> None:
    async with client_for(paged("pageToken", 3, wrapped=True), **telemetry.providers) as client:
        pages = [p async for p in client.service_jobs.list(created_after=SINCE).pages()]

    spans = telemetry.spans(LIST)
    assert len(pages) == len(spans) == 3
    assert [s.attributes["spapi.page"] for s in spans] == [1, 2, 3]
    # Tokens are the API's cursors, not facts about the call: they are kept out.
    assert not any("tok+" in s.to_json() for s in spans)


@pytest.mark.parametrize("kind", ["range_capacity", "fixed_capacity"])
async def test_capacity_pages_are_numbered_too(kind: str, telemetry: Telemetry) -> None:
    api = paged("nextPageToken", 2, wrapped=False)
    async with client_for(api, **telemetry.providers) as client:
        pages = getattr(client.schedules, kind)(
            "tech-1", start_time=NOW, end_time=NOW + timedelta(days=1)
        )
        assert len([p async for p in pages]) == 2

    operation = "getRangeSlotCapacity" if kind == "range_capacity" else "getFixedSlotCapacity"
    assert [s.attributes["spapi.page"] for s in telemetry.spans(operation)] == [1, 2]


async def test_a_list_resumed_from_a_token_of_elsewhere_has_no_page_numbers(
    telemetry: Telemetry,
) -> None:
    async with client_for(paged("pageToken", 4, wrapped=True), **telemetry.providers) as client:
        pages = client.service_jobs.list_page(created_after=SINCE, page_token="tok+3")
        await pages

    (span,) = telemetry.spans(LIST)
    assert "spapi.page" not in span.attributes


async def test_pages_fetched_one_by_one_are_numbered_along_their_tokens(
    telemetry: Telemetry,
) -> None:
    async with client_for(paged("pageToken", 3, wrapped=True), **telemetry.providers) as client:
        first = await client.service_jobs.list_page(created_after=SINCE)
        other = await client.service_jobs.list_page(created_after=SINCE)  # a second chain
        second = await client.service_jobs.list_page(
            created_after=SINCE, page_token=first.next_page_token
        )
        await client.service_jobs.list_page(created_after=SINCE, page_token=second.next_page_token)
        assert other.next_page_token == first.next_page_token

    assert [s.attributes["spapi.page"] for s in telemetry.spans(LIST)] == [1, 1, 2, 3]


@pytest.fixture
async def emu() -> AsyncIterator[ServicesEmulator]:
    async with emulators(jobs=150, seed=5, clock=FakeClock(NOW), enforce_limits=False) as start:
        yield await start()


async def test_a_sync_under_the_callers_span_is_one_readable_trace(
    emu: ServicesEmulator, telemetry: Telemetry, tmp_path: Path
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("nightly")
    async with ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
        rate_limits=False,
        **telemetry.providers,
    ) as client:
        with tracer.start_as_current_span("nightly sync") as run:
            report = await sync_jobs(
                client, SqliteSink(tmp_path / "jobs.sqlite"), since=SINCE, windows=3
            )

    pages = telemetry.spans(LIST)
    assert len(pages) == report.requests > 3
    trace_id = run.get_span_context().trace_id
    assert {s.context.trace_id for s in pages} == {trace_id}
    assert {s.parent.span_id for s in pages if s.parent} == {run.get_span_context().span_id}
    # Every page is numbered: the first of each window's chain 1, the next ones on from it.
    numbers = sorted(s.attributes["spapi.page"] for s in pages)
    assert numbers[0] == 1
    assert numbers[-1] >= 2
    for number in set(numbers) - {1}:
        assert numbers.count(number) <= numbers.count(number - 1)
    assert all(s.status.status_code is StatusCode.UNSET for s in pages)
