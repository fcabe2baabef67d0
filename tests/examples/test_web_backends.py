"""examples/fastapi_app.py and examples/aiohttp_app.py, served for real on 127.0.0.1 and
asked over HTTP: each answers with the job as the API's JSON, the emulator's own JSON for it.

The JSON is read with every fractional number a Decimal, so that an amount compares
digit for digit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import uvicorn
from _pages import US, load_example, settings_env
from aiohttp import web
from fastapi import FastAPI

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.store import JobRecord

GET = "getServiceJobByServiceJobId"


@pytest.fixture
def reader_settings(emulator: ServicesEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment a reader exports for the emulator, in this process."""
    for name, value in settings_env(emulator).items():
        if name.startswith("SPAPI_"):
            monkeypatch.setenv(name, value)


@asynccontextmanager
async def served_by_uvicorn(app: Any) -> AsyncIterator[str]:
    """``app`` served by uvicorn on a free port of 127.0.0.1 until the block ends."""
    # log_config=None: uvicorn leaves the process's logging configuration alone.
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None))
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                assert not serving.done(), "uvicorn stopped while starting"
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


@asynccontextmanager
async def served_by_aiohttp(app: web.Application) -> AsyncIterator[str]:
    """``app`` served by an aiohttp AppRunner on a free port of 127.0.0.1."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def ask(base: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(base + path) as response:
        text = await response.text()
        if response.content_type == "application/json":
            return response.status, json.loads(text, parse_float=Decimal)
        return response.status, text


def a_full_job(emulator: ServicesEmulator) -> JobRecord:
    """A US job with an appointment, a buyer and an amount with cents."""
    return next(
        job
        for job in emulator.store.find_jobs(marketplace_id=US)
        if job.appointments
        and "buyer" in job.details
        and any(p["amount"]["value"] % 1 for p in job.details.get("payments", []))
    )


def api_json(job: JobRecord) -> Any:
    """The emulator's own JSON for ``job`` (the payload of its answer), read exactly."""
    return json.loads(job.payload_json(), parse_float=Decimal)["payload"]


@pytest.mark.usefixtures("reader_settings")
async def test_fastapi_opens_one_client_at_startup_and_closes_it_at_shutdown(
    emulator: ServicesEmulator,
) -> None:
    app = load_example("fastapi_app.py")["app"]
    job = a_full_job(emulator)

    async with served_by_uvicorn(app) as base:
        client = app.state.services
        assert isinstance(client, ServicesClient)
        assert not client.is_closed
        found = await ask(base, f"/jobs/{job.service_job_id}")
        missing = await ask(base, "/jobs/10000000000000")
        again = await ask(base, f"/jobs/{job.service_job_id}")

    assert found == (200, api_json(job))
    assert missing == (404, {"detail": "no service job 10000000000000"})
    assert again == found
    assert client.is_closed
    assert app.state.services is client  # the one client served every request
    assert emulator.lwa_exchanges == 1
    assert (emulator.count(GET, 200), emulator.count(GET, 404)) == (2, 1)


@pytest.mark.usefixtures("reader_settings")
async def test_aiohttp_web_opens_the_client_in_cleanup_ctx_and_closes_it_at_cleanup(
    emulator: ServicesEmulator,
) -> None:
    module = load_example("aiohttp_app.py")
    app = module["make_app"]()
    job = a_full_job(emulator)

    async with served_by_aiohttp(app) as base:
        client = app[module["SERVICES"]]
        assert not client.is_closed
        found = await ask(base, f"/jobs/{job.service_job_id}")
        missing = await ask(base, "/jobs/10000000000000")

    assert found == (200, api_json(job))
    assert missing == (404, "no service job 10000000000000")
    assert client.is_closed
    assert (emulator.count(GET, 200), emulator.count(GET, 404)) == (1, 1)


async def test_fastapi_writes_a_returned_api_dict_as_the_guide_says(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    """The guide's advice for returning ``to_api_dict()`` itself from FastAPI, checked."""
    record = a_full_job(emulator)
    job = await client.service_jobs.get(record.service_job_id)
    app = FastAPI()

    @app.get("/plain", response_model=None)
    async def plain() -> dict[str, Any]:
        return job.to_api_dict()

    @app.get("/modelled")  # FastAPI makes a response model of the return annotation
    async def modelled() -> dict[str, Any]:
        return job.to_api_dict()

    async with served_by_uvicorn(app) as base:
        as_it_is = await ask(base, "/plain")
        through_a_model = await ask(base, "/modelled")

    assert as_it_is == (200, api_json(record))
    # Through a response model, pydantic writes each Decimal as a string.
    status, body = through_a_model
    assert status == 200
    assert body["payments"][0]["amount"]["value"] == str(job.payments[0].amount.value)
    assert body["serviceJobId"] == record.service_job_id
