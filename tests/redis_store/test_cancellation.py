"""Cancellations that land in a Redis round trip of the usage plan, against a real
redis-server frozen (SIGSTOP) so that the round trip is certain to be in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import redis.asyncio
from _emulators import NOW, StartEmulator, emulators
from _servers import RedisServer

from spapi_services import ServicesClient
from spapi_services._queue import queue_for
from spapi_services.redis import RedisRateLimits

GET_JOB = "getServiceJobByServiceJobId"


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    async with emulators(jobs=3, seed=3, at=NOW) as start:
        yield start


class WatchedRedis(redis.asyncio.Redis):
    """A Redis client that counts the commands it has sent and not yet had answered."""

    in_flight = 0

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.in_flight += 1
        try:
            return await super().execute_command(*args, **options)
        finally:
            self.in_flight -= 1


async def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    async with asyncio.timeout(seconds):
        while not condition():
            await asyncio.sleep(0.005)


async def test_calls_cancelled_in_their_reservation_leave_the_request_queue_whole(
    start_emulator: StartEmulator, own_server: RedisServer
) -> None:
    """Issue 21's reproduction: a 2-connection session, two calls cancelled while Redis
    reserves their tokens; the next call must go out, not wait out its deadline in line."""
    emu = await start_emulator()
    job = next(iter(emu.store.jobs))
    watched = WatchedRedis.from_url(own_server.url)
    plan = RedisRateLimits(watched, timeout=30.0)  # the round trip stays in flight
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=2))
    client = ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        session=session,
        rate_limits=plan,
        deadline=3.0,
    )
    try:
        await client.service_jobs.get(job)  # the token is had, the bucket in Redis
        queue = queue_for(session)
        assert queue.size == 2
        own_server.pause()
        try:
            calls = [asyncio.create_task(client.service_jobs.get(job)) for _ in range(2)]
            await until(lambda: watched.in_flight == 2)  # both are reserving
            for call in calls:
                call.cancel()
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            own_server.resume()
        assert all(isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes
        assert queue.in_flight == 0
        assert (await client.service_jobs.get(job)).service_job_id == job
        assert plan.shared  # the cancelled commands did not mark Redis down
    finally:
        await client.aclose()
        await session.close()
        await plan.aclose()
        await watched.aclose()
