"""examples/webhook_receiver.py against the fleet: every change handled once, though the
fleet sends some twice (a redelivery, as after a worker died), and a test message
acknowledged without being handled."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from _pages import load_example
from _servers import PostgresServer
from aiohttp import web

from spapi_services.emulator import ServicesEmulator
from spapi_services.fleet import Fleet

from .conftest import eventually
from .test_webhooks import make_fleet, relaying

__all__ = ["make_fleet"]


@pytest.fixture
async def db(postgres: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2) as pool:
        yield pool


async def test_the_example_handles_each_change_of_the_fleet_once(
    make_fleet: Callable[..., Fleet], emulator: ServicesEmulator, db: asyncpg.Pool
) -> None:
    example = load_example("webhook_receiver.py")
    async with make_fleet() as fleet:
        endpoint = await fleet.set_webhook("http://127.0.0.1:1/", endpoint_id="example")
        app = example["make_app"](endpoint.secrets[0].export())
        runner = web.AppRunner(app)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            port = runner.addresses[0][1]
            url = f"http://127.0.0.1:{port}/webhooks"
            await fleet.set_webhook(url, endpoint_id="example", secret=endpoint.secrets)
            handled: list[Any] = app[example["HANDLED"]]
            seen: Any = app[example["SEEN"]]

            tested = await fleet.test_webhook("example")
            assert tested.status == 204
            assert handled == []  # acknowledged, not handled

            async with relaying(fleet):
                await fleet.run_seller("S0")
                jobs = len(emulator.sellers[0].store.jobs)
                await eventually("each change handled", lambda: _count(handled, jobs))
                ids = [i for i in seen if i.count("_") == 2]  # not the test message's
                assert await fleet.redeliver(message_ids=ids[:5]) == 5
                await eventually("the repeats acknowledged", lambda: _delivered_again(fleet, db))
        finally:
            await runner.cleanup()
    assert len(handled) == jobs
    assert {job_id for _, job_id, _ in handled} == set(emulator.sellers[0].store.jobs)


async def _count(handled: list[Any], count: int) -> bool:
    return len(handled) >= count


async def _delivered_again(fleet: Fleet, db: asyncpg.Pool) -> bool:
    pending = await db.fetchval(
        f"SELECT count(*) FROM {fleet.schema}.webhook_deliveries WHERE state <> 'delivered'"
    )
    return bool(pending == 0)
