"""Breaking out, cancelling, a deadline: nothing of the feed goes on running.
And every argument is checked before anything is sent."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from spapi_services import ServicesClient
from spapi_services.emulator.faults import Fault

from .conftest import World, run

LIST = "getServiceJobs"


def open_connections(client: ServicesClient) -> int:
    session = client._core.session
    assert session is not None
    connector = session.connector
    assert connector is not None
    return len(connector._acquired)  # type: ignore[attr-defined]


def others() -> set[asyncio.Task[Any]]:
    """Tasks other than this test's and the emulator's own (its connection handlers)."""
    return {
        task
        for task in asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]
        if not task.get_coro().__qualname__.startswith(  # type: ignore[union-attr]
            ("RequestHandler.", "BaseSelectorEventLoop._accept_connection")
        )
    }


async def test_break_leaves_no_task_and_no_open_response(world: World) -> None:
    jobs = world.jobs()
    for job in jobs[:3]:
        world.timer.at(1, world.touch(job.service_job_id, "HOLD"))
    world.timer.stop_after(30)
    feed = world.client.service_jobs.changes()

    async for _change in feed:
        break

    assert others() == set()
    assert open_connections(world.client) == 0
    assert world.emu.count(LIST) == 2  # the poll that found nothing, the one that did
    await feed.aclose()
    assert [c async for c in feed] == []  # closed: ends at once


async def in_flight(world: World) -> tuple[ServicesClient, asyncio.Event]:
    """A client whose requests hang at the emulator (for 1.5 s: the emulator waits for its
    handlers when it stops); the event says one is out."""
    sent = asyncio.Event()
    trace = aiohttp.TraceConfig()

    async def started(*_: object) -> None:
        sent.set()

    trace.on_request_start.append(started)
    world.emu.faults.set(LIST, Fault(latency=1.5))
    return world.client_for(trace_configs=[trace]), sent


async def test_cancelling_mid_request_leaves_nothing_running(world: World) -> None:
    client, sent = await in_flight(world)
    async with client:
        consumer = asyncio.create_task(run(client.service_jobs.changes()))
        await sent.wait()
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert others() == set()
        assert open_connections(client) == 0


async def test_a_deadline_leaves_nothing_running(world: World) -> None:
    client, sent = await in_flight(world)
    async with client:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await run(client.service_jobs.changes())
        assert sent.is_set()
        assert others() == set()
        assert open_connections(client) == 0


async def test_async_with_closes_the_feed(world: World) -> None:
    world.timer.at(1, world.touch(world.jobs()[0].service_job_id, "HOLD"))
    world.timer.stop_after(30)
    async with world.client.service_jobs.changes() as feed:
        first = await anext(feed)
    assert first.kind == "updated"
    with pytest.raises(StopAsyncIteration):
        await anext(feed)


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"since": datetime(2026, 6, 1)}, ValueError, "since: naive datetime"),
        ({"since": "2026-06-01"}, TypeError, "since: expected a datetime"),
        ({"interval": 0}, ValueError, "interval: must be from 0.1"),
        ({"interval": float("nan")}, ValueError, "interval"),
        ({"interval": True}, TypeError, "interval: expected a number"),
        ({"interval": "5"}, TypeError, "interval: expected a number"),
        ({"overlap": timedelta(seconds=-1)}, ValueError, "overlap: must be a timedelta"),
        ({"overlap": 60}, ValueError, "overlap: must be a timedelta"),
        ({"marketplace_ids": []}, ValueError, "marketplace_ids"),
        ({"marketplace_ids": "ATVPDKIKX0DER"}, TypeError, "marketplace_ids"),
        ({"marketplace_ids": ["A", "A"]}, ValueError, "marketplace_ids: each marketplace once"),
        ({"marketplace_ids": [" "]}, ValueError, r"marketplace_ids\[0\]: must not be blank"),
        ({"resume_token": ""}, ValueError, "resume_token"),
        ({"resume_token": "sjf1.AAAA"}, ValueError, "resume_token: not a resume token"),
        ({"resume_token": "hello"}, ValueError, "resume_token: not a resume token"),
        ({"resume_token": 7}, TypeError, "resume_token"),
        (
            {"since": datetime(2026, 6, 1).astimezone(), "resume_token": "x"},
            ValueError,
            "since / resume_token: give one of them",
        ),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_sent(
    world: World, arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        world.client.service_jobs.changes(**arguments)
    assert world.emu.count() == 0


async def test_without_a_marketplace_the_client_says_which_to_give(world: World) -> None:
    async with ServicesClient(
        world.emu.credentials, endpoint=world.emu.url, token_url=world.emu.token_url
    ) as client:
        with pytest.raises(ValueError, match="marketplace_id: required"):
            client.service_jobs.changes()
    assert world.emu.count() == 0
