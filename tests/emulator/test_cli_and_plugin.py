"""Starting the emulator from a shell, and the pytest fixtures."""

from __future__ import annotations

import asyncio
import json
import shlex
import signal
import sys

import aiohttp
import pytest

from spapi_services.emulator import ServicesEmulator


async def test_python_dash_m_starts_prints_and_stops() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spapi_services.emulator",
        *("--port", "0", "--jobs", "20", "--seed", "3", "--json"),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        facts = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert facts["url"].startswith("http://127.0.0.1:")
        assert facts["token_url"] == facts["url"] + "/auth/o2/token"
        assert facts["jobs"] == 20
        async with aiohttp.ClientSession() as session:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": facts["refresh_token"],
                "client_id": facts["client_id"],
                "client_secret": facts["client_secret"],
            }
            async with session.post(facts["token_url"], data=form) as response:
                assert response.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0


def test_the_human_readable_banner(capsys: pytest.CaptureFixture[str]) -> None:
    from spapi_services.emulator.__main__ import _announce

    emu = ServicesEmulator(jobs=3, port=8080)
    _announce(emu, as_json=False)
    out = capsys.readouterr().out
    assert "Services API emulator (live, 3 jobs) on http://127.0.0.1:8080" in out
    assert "export SPAPI_ENDPOINT=http://127.0.0.1:8080" in out
    assert f"export SPAPI_REFRESH_TOKEN={shlex.quote(emu.credentials.refresh_token)}" in out


def test_only_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        ServicesEmulator(host="0.0.0.0")


async def test_start_twice_is_refused_and_stop_twice_is_harmless() -> None:
    emu = ServicesEmulator(jobs=1)
    async with emu:
        with pytest.raises(RuntimeError, match="already running"):
            await emu.start()
        assert emu.port != 0
    await emu.stop()


async def test_the_emulator_fixture(services_emulator: ServicesEmulator) -> None:
    assert len(services_emulator.store.jobs) == 100
    assert services_emulator.url.startswith("http://127.0.0.1:")


@pytest.mark.services_emulator(jobs=12, seed=5, enforce_limits=False)
async def test_the_marker_configures_the_fixture(services_emulator: ServicesEmulator) -> None:
    assert len(services_emulator.store.jobs) == 12
    assert services_emulator.seed == 5
    assert not services_emulator.limits.enforce


async def test_the_client_fixture(
    services_emulator: ServicesEmulator, services_client: object
) -> None:
    job = services_emulator.store.find_jobs(marketplace_id="ATVPDKIKX0DER")[0]
    fetched = await services_client.service_jobs.get(job.service_job_id)  # type: ignore[attr-defined]
    assert fetched.service_job_id == job.service_job_id
    assert services_emulator.lwa_exchanges == 1
