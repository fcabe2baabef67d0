"""examples/fastapi_app.py and examples/aiohttp_app.py, served for real on 127.0.0.1 and
asked over HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import uvicorn
from _pages import US, load_example, settings_env
from aiohttp import web

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator

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
        if response.content_type == "application/json":
            return response.status, await response.json()
        return response.status, await response.text()


@pytest.mark.usefixtures("reader_settings")
async def test_fastapi_opens_one_client_at_startup_and_closes_it_at_shutdown(
    emulator: ServicesEmulator,
) -> None:
    app = load_example("fastapi_app.py")["app"]
    job = emulator.store.find_jobs(marketplace_id=US)[0]

    async with served_by_uvicorn(app) as base:
        client = app.state.services
        assert isinstance(client, ServicesClient)
        assert not client.is_closed
        found = await ask(base, f"/jobs/{job.service_job_id}")
        missing = await ask(base, "/jobs/10000000000000")
        again = await ask(base, f"/jobs/{job.service_job_id}")

    assert found == (200, {"job_id": job.service_job_id, "status": job.status})
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
    job = emulator.store.find_jobs(marketplace_id=US)[0]

    async with served_by_aiohttp(app) as base:
        client = app[module["SERVICES"]]
        assert not client.is_closed
        found = await ask(base, f"/jobs/{job.service_job_id}")
        missing = await ask(base, "/jobs/10000000000000")

    assert found == (200, {"job_id": job.service_job_id, "status": job.status})
    assert missing == (404, "no service job 10000000000000")
    assert client.is_closed
    assert (emulator.count(GET, 200), emulator.count(GET, 404)) == (1, 1)
