"""Transient failures never stop a feed; anything else does, before or at the first poll."""

from __future__ import annotations

import logging

import pytest

from spapi_services import AuthenticationError, LwaCredentials, ServicesClient
from spapi_services.emulator.faults import Fault

from .conftest import US, World, run, summary

LIST = "getServiceJobs"


@pytest.mark.parametrize("status", [503, 429])
async def test_a_storm_of_errors_is_outlasted_and_counted(
    world: World, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = (j.service_job_id for j in world.jobs()[:2])
    t = world.timer
    storm = Fault(error_rate=1.0, error_status=status, count=24)  # 6 polls of 4 attempts
    t.at(2, world.touch(a, "HOLD"))
    t.at(9, lambda: world.emu.faults.set(LIST, storm))
    t.at(10, world.touch(b, "HOLD"))  # made during the storm
    t.at(30, world.touch(a, "COMPLETED"))
    t.at(400, lambda: world.emu.faults.set(LIST, Fault(error_rate=1.0, count=8)))
    t.stop_after(600)
    feed = world.client.service_jobs.changes()

    with caplog.at_level(logging.INFO, logger="spapi_services.feed"):
        changes = await run(feed)

    assert summary(changes) == [
        ("updated", a, "HOLD"),
        ("updated", b, "HOLD"),
        ("updated", a, "COMPLETED"),
    ]
    # Each failed poll (the client's own retries spent) is counted, and the feed says
    # how many when polls succeed again.
    assert feed.errors >= 2
    assert world.emu.count(LIST, status) == 24 + (8 if status == 503 else 0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # once per outage
    assert "a poll failed" in warnings[0].getMessage()
    recovered = [r.getMessage() for r in caplog.records if "succeed again" in r.getMessage()]
    assert len(recovered) == 2
    assert sum(int(m.split("after ")[1].split()[0]) for m in recovered) == feed.errors
    assert feed.last_error is not None


async def test_dropped_connections_are_outlasted(world: World) -> None:
    job = world.jobs()[0].service_job_id
    world.timer.at(1, lambda: world.emu.faults.set(LIST, Fault(drop_rate=1.0, count=8)))
    world.timer.at(2, world.touch(job, "HOLD"))
    world.timer.stop_after(120)
    feed = world.client.service_jobs.changes()

    changes = await run(feed)

    assert summary(changes) == [("updated", job, "HOLD")]
    assert feed.errors >= 1
    assert world.emu.count(LIST, 0) == 8  # 0: dropped


async def test_refused_credentials_are_raised(world: World) -> None:
    wrong = LwaCredentials(
        world.emu.credentials.client_id, world.emu.credentials.client_secret, "Atzr|unknown"
    )
    world.timer.stop_after(60)
    async with ServicesClient(
        wrong,
        endpoint=world.emu.url,
        token_url=world.emu.token_url,
        marketplace_id=US,
        timer=world.timer,
        rate_limits=False,
    ) as client:
        feed = client.service_jobs.changes()
        with pytest.raises(AuthenticationError):
            await run(feed)
    assert feed.errors == 0
    assert world.emu.count(LIST) == 0
