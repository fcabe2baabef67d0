"""Cancellations that land in a Redis round trip of the usage plan or the token cache,
against a real redis-server (frozen with SIGSTOP where the round trip must stay in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio
from _emulators import NOW, StartEmulator, emulators
from _servers import RedisServer

from spapi_services import ServicesClient
from spapi_services._queue import queue_for
from spapi_services.redis import RedisRateLimits, RedisTokenCache
from spapi_services.redis._link import RedisLink

GET_JOB = "getServiceJobByServiceJobId"
SELLER = "amzn1.application-oa2-client.test/seller:A1SELLER"


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    async with emulators(jobs=3, seed=3, at=NOW) as start:
        yield start


class ReadingConnection(redis.asyncio.Connection):
    """A connection that counts the commands it has sent and now waits to hear back on."""

    reading = 0
    _changed: asyncio.Event | None = None

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        ReadingConnection.reading += 1
        if ReadingConnection._changed is not None:
            ReadingConnection._changed.set()
        try:
            return await super().read_response(*args, **kwargs)
        finally:
            ReadingConnection.reading -= 1

    @classmethod
    async def until_reading(cls, n: int, seconds: float = 10.0) -> None:
        """Wait until ``n`` commands are written and waiting for their answers."""
        async with asyncio.timeout(seconds):
            while cls.reading < n:
                cls._changed = asyncio.Event()
                await cls._changed.wait()


async def test_calls_cancelled_in_their_reservation_leave_the_request_queue_whole(
    start_emulator: StartEmulator, own_server: RedisServer
) -> None:
    """Issue 21's reproduction: a 2-connection session, two calls cancelled while Redis
    reserves their tokens; the next call must go out, not wait out its deadline in line."""
    emu = await start_emulator()
    job = next(iter(emu.store.jobs))
    # Redis's own reply timeout, and the plan's, well past the test: the round trips stay
    # in flight until cancelled.
    watched = redis.asyncio.Redis.from_url(
        own_server.url, connection_class=ReadingConnection, socket_timeout=60
    )
    plan = RedisRateLimits(watched, timeout=60.0)
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
            # Both wait for Redis's reservation: the first books for both, in one round trip.
            await ReadingConnection.until_reading(1)
            for _ in range(20):
                await asyncio.sleep(0)
            assert queue.in_flight == 2  # each holding its place meanwhile
            for call in calls:
                call.cancel()
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        finally:
            own_server.resume()
        assert [type(o) for o in outcomes] == [asyncio.CancelledError] * 2
        assert queue.in_flight == 0
        assert (await client.service_jobs.get(job)).service_job_id == job
        assert plan.shared  # the cancelled commands did not mark Redis down
    finally:
        await client.aclose()
        await session.close()
        await plan.aclose()
        await watched.aclose()


class LosingRedis(redis.asyncio.Redis):
    """A client that loses a cancellation as redis-py does on Python 3.11 (its write under
    ``wait_for`` completes in the same turn as the cancellation): the command goes on."""

    hold = False
    held: asyncio.Event

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.hold:
            self.hold = False
            self.held.set()
            # The lost cancellation: dropped here, still counted by Task.cancelling().
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        return await super().execute_command(*args, **options)


async def test_a_cancellation_redis_py_loses_still_ends_the_plans_question(
    redis_url: str, shared_server: RedisServer
) -> None:
    losing = LosingRedis.from_url(redis_url)
    losing.held = asyncio.Event()
    plan = RedisRateLimits(losing, overrides={GET_JOB: (1.0, 1)}, headroom=0)
    try:
        losing.hold = True
        asking = asyncio.create_task(plan.reserve(SELLER, GET_JOB, max_wait=None))
        await losing.held.wait()
        asking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asking
        # The command itself went on (it could not be taken back): one token is spent.
        assert shared_server.call("EXISTS", plan.key(SELLER, GET_JOB)) == b":1"
        assert plan.shared
        reserved, wait = await plan.reserve(SELLER, GET_JOB, max_wait=None)
        assert reserved
        assert 0.9 < wait <= 1.0  # behind the one spent, not on it
    finally:
        await plan.aclose()
        await losing.aclose()


async def test_a_cancellation_redis_py_loses_still_ends_the_token_lookup(
    redis_url: str,
) -> None:
    losing = LosingRedis.from_url(redis_url)
    losing.held = asyncio.Event()
    cache = RedisTokenCache(losing)
    exchanged: list[str] = []

    async def exchange() -> Any:
        exchanged.append("exchange")  # a cancelled lookup must not go on to exchange
        raise AssertionError("exchanged")

    try:
        losing.hold = True
        looking = asyncio.create_task(cache.get_or_exchange("lwa:key", exchange))
        await losing.held.wait()
        looking.cancel()
        with pytest.raises(asyncio.CancelledError):
            await looking
        assert cache.shared
        # Nothing of it goes on: no exchange, no task renewing a lease.
        current = asyncio.current_task()
        assert [t for t in asyncio.all_tasks() if t is not current and not t.done()] == []
    finally:
        await cache.aclose()
        await losing.aclose()
    assert exchanged == []


async def test_the_link_itself_raises_a_cancellation_its_command_swallowed(
    redis_url: str,
) -> None:
    """The guard the plan and the cache rely on is the link's own (``run`` and ``call``):
    a command that takes a cancellation in and returns anyway, as redis-py's ``wait_for``
    does on 3.11, still ends in ``CancelledError``, without marking the link down."""
    link = RedisLink(redis_url, owner="test", what="a test", timeout=5.0, retry_interval=1.0)
    arrived = asyncio.Event()

    async def swallowing() -> str:
        arrived.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return "answered"

    try:
        for method in (link.run, link.call):
            arrived.clear()
            running = asyncio.create_task(method(swallowing))
            await arrived.wait()
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            assert link.answering
        assert await link.run(lambda: link.client.ping())
    finally:
        await link.aclose()
