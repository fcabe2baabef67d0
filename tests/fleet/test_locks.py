"""A seller's lock under faults: a lease judged by the monotonic clock, every Redis call
bounded, a key lost with Redis taken again, and cancellations that go through.

The lease keeper's clock is a manual one (``tests/_timers.py``): it moves only by what
the keeper sleeps, so the moment a lease is given up is exact, whatever the machine's
load.  The Redis calls are real, through a proxy that can go silent.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from _proxy import Proxy
from _servers import RedisServer
from _timers import ManualTimer
from redis.asyncio import Redis
from redis.exceptions import RedisError

from spapi_services.fleet import LeaseLost, SellerBusy, SellerLocks

from .conftest import eventually


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def checked() -> bool:
        return check()

    return checked


@pytest.fixture
async def link(redis_server: RedisServer) -> AsyncIterator[Proxy]:
    async with Proxy(redis_server.port) as proxy:
        yield proxy


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def test_a_lease_not_renewed_is_given_up_a_margin_before_it_can_expire(
    link: Proxy, redis_server: RedisServer, redis: Redis, names: dict[str, str]
) -> None:
    client = Redis.from_url(link.via(redis_server.url))
    timer = ManualTimer()
    locks = SellerLocks(
        client, prefix=names["key_prefix"], lease=30, margin=6, timeout=0.05, timer=timer
    )
    started = timer.now()
    stopped: list[str] = []

    async def sync() -> None:
        async with locks.hold("A"):
            link.pause()  # the link goes silent: renewals get no answer
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                stopped.append(f"cancelled at {timer.now() - started:g}")
                raise

    try:
        with pytest.raises(LeaseLost, match="not renewed within 24s") as lost:
            await asyncio.wait_for(sync(), timeout=30)
    finally:
        link.resume()
        await client.aclose()
    # Renewed every 10 s; the first failure at 10, tried again every 2 s, given up at 24:
    # the lease minus the margin by this process's clock, before the key's 30 s are out.
    assert stopped == ["cancelled at 24"]
    assert timer == [10.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert lost.value.seller_id == "A"
    # Still there: nobody else could have taken the seller before the sync stopped.
    assert await redis.pttl(locks.lock_key("A")) > 0


async def test_renewals_keep_a_lease_for_many_times_its_length(
    redis: Redis, names: dict[str, str]
) -> None:
    timer = ManualTimer()
    locks = SellerLocks(redis, prefix=names["key_prefix"], lease=3, timer=timer)
    async with locks.hold("B"):
        await eventually("ten leases by the keeper's clock", _async(lambda: sum(timer) >= 30))
        assert await redis.get(locks.lock_key("B"))
    assert not await redis.exists(locks.lock_key("B"))


async def test_a_lock_redis_lost_is_taken_again_and_one_another_took_is_given_up(
    redis: Redis, names: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "spapi_services.fleet")
    timer = ManualTimer()
    locks = SellerLocks(redis, prefix=names["key_prefix"], lease=3, timer=timer)
    key = locks.lock_key("C")
    async with locks.hold("C"):
        mine = await redis.get(key)
        await redis.delete(key)  # as a restart without persistence would
        await eventually("the lock taken again", lambda: redis.exists(key))
        assert await redis.get(key) == mine
    assert "taken again" in caplog.text
    assert not await redis.exists(key)

    async def taken_over() -> None:
        async with locks.hold("C"):
            await redis.set(key, "someone else", px=60_000)
            await asyncio.sleep(3600)

    with pytest.raises(LeaseLost, match="another worker holds it"):
        await asyncio.wait_for(taken_over(), timeout=30)
    assert await redis.get(key) == b"someone else"


async def test_hold_lets_a_cancellation_through_even_one_landing_as_it_lets_go(
    redis: Redis, names: dict[str, str]
) -> None:
    locks = SellerLocks(redis, prefix=names["key_prefix"], lease=30)
    reached: list[str] = []

    async def sync() -> None:
        me = asyncio.current_task()
        assert me is not None
        async with locks.hold("D"):
            # Lands while hold() stops its keeper and lets the lock go.
            asyncio.get_running_loop().call_soon(me.cancel)
        reached.append("after the block")

    task = asyncio.create_task(sync())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reached == []
    for _ in range(100):  # the release goes on in the background
        if not await redis.exists(locks.lock_key("D")):
            break
        await asyncio.sleep(0.01)
    assert not await redis.exists(locks.lock_key("D"))

    # A cancellation from outside, in the block: a CancelledError, not a LeaseLost.
    async def blocked() -> None:
        async with locks.hold("D"):
            await asyncio.sleep(3600)

    task = asyncio.create_task(blocked())
    await eventually("the lock taken", lambda: redis.exists(locks.lock_key("D")))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_taking_a_lock_over_a_silent_link_fails_within_the_timeout(
    link: Proxy, redis_server: RedisServer, redis: Redis, names: dict[str, str]
) -> None:
    client = Redis.from_url(link.via(redis_server.url))
    locks = SellerLocks(client, prefix=names["key_prefix"], lease=3, timeout=0.1)
    try:
        assert await locks.running(["E"]) == (set(), set())  # connected, answering
        link.pause()
        with pytest.raises(RedisError, match=r"did not answer within 0\.1s"):
            await asyncio.wait_for(locks.hold("E").__aenter__(), timeout=10)
        with pytest.raises(RedisError):
            await asyncio.wait_for(locks.running(["E"]), timeout=10)
        with pytest.raises(RedisError):
            await asyncio.wait_for(locks.unmark_queued("E"), timeout=10)
    finally:
        link.resume()
        await client.aclose()
    # Nothing went through while the link was silent... or if the SET did, it is ours
    # and expires with its lease: another holder is never refused for longer.
    ttl = await redis.pttl(locks.lock_key("E"))
    assert ttl == -2 or 0 < ttl <= 3000


async def test_a_busy_seller_is_refused_at_once(redis: Redis, names: dict[str, str]) -> None:
    locks = SellerLocks(redis, prefix=names["key_prefix"], lease=3)
    async with locks.hold("F"):
        with pytest.raises(SellerBusy):
            async with locks.hold("F"):
                pass


def test_lock_options_are_checked_naming_them(redis_server: RedisServer) -> None:
    client = Redis.from_url(redis_server.url)
    with pytest.raises(ValueError, match="lease"):
        SellerLocks(client, lease=0)
    with pytest.raises(ValueError, match="margin must be shorter than the lease"):
        SellerLocks(client, lease=3, margin=3)
