"""RedisRateLimits against a real redis-server: Amazon's bucket, shared by processes.

Two plan objects, each with its own connection, stand for two processes.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio
from _servers import RedisServer, free_port

from spapi_services import RateLimits, UsagePlan
from spapi_services.redis import RedisRateLimits

from ._helpers import Clock, records

OP = "getServiceJobs"
OTHER_OP = "getAppointmentSlots"
SELLER = "amzn1.application-oa2-client.test/seller:A1SELLER"
OTHER_SELLER = "amzn1.application-oa2-client.test/seller:A2SELLER"
#: Rate 5/s and burst 10: the default headroom holds 1 back, so 9 go out at once.
PLAN = {OP: (5.0, 10)}
INTERVAL = 1 / 5.0


def plans(url: str, n: int = 2, **options: object) -> list[RedisRateLimits]:
    return [RedisRateLimits(url, overrides=PLAN, **options) for _ in range(n)]  # type: ignore[arg-type]


async def close(*items: RedisRateLimits) -> None:
    for item in items:
        await item.aclose()


async def take(plan: RedisRateLimits, n: int, scope: str = SELLER, op: str = OP) -> list[float]:
    return [await plan.try_acquire(scope, op) for _ in range(n)]


async def test_it_is_a_usage_plan_with_the_in_process_plans_capacity(redis_url: str) -> None:
    async with RedisRateLimits(redis_url) as plan:
        assert isinstance(plan, UsagePlan)
        local = RateLimits()
        for op in (
            "getServiceJobByServiceJobId",
            "assignAppointmentResources",
            "cancelServiceJobByServiceJobId",
        ):
            assert plan.plan(op) == local.plan(op)
            assert plan.capacity(op) == local.bucket(op).capacity
    async with RedisRateLimits(redis_url, headroom=0) as plan:
        assert plan.capacity("getServiceJobByServiceJobId") == 40


async def test_a_full_bucket_lets_out_its_capacity_then_gives_the_wait_for_one_token(
    redis_url: str,
) -> None:
    (plan,) = plans(redis_url, 1)
    try:
        assert plan.capacity(OP) == 9
        waits = await take(plan, 14)
    finally:
        await close(plan)
    assert waits[:9] == [0.0] * 9
    refused = waits[9:]
    # One interval from the first token, less the little time the calls took; a refusal
    # takes nothing, so each wait is the same token's, a little nearer.
    assert all(INTERVAL - 0.05 < wait <= INTERVAL for wait in refused), refused
    assert refused == sorted(refused, reverse=True)


async def test_it_refills_at_the_rate_when_callers_sleep_the_waits_it_gives(
    redis_url: str,
) -> None:
    rate = 50.0
    plan = RedisRateLimits(redis_url, overrides={OP: (rate, 10)})
    loop = asyncio.get_running_loop()
    admitted, waits = 0, []
    try:
        started = loop.time()
        while (elapsed := loop.time() - started) < 0.3:
            wait = await plan.try_acquire(SELLER, OP)
            if wait == 0:
                admitted += 1
            else:
                waits.append(wait)
                await asyncio.sleep(wait)
    finally:
        await close(plan)
    assert 9 + int(elapsed * rate) - 1 <= admitted <= 9 + int(elapsed * rate) + 1
    assert waits
    assert all(0 < wait <= 1 / rate for wait in waits)


async def test_two_processes_draw_from_one_bucket(redis_url: str) -> None:
    first, second = plans(redis_url)
    try:
        assert await take(first, 5) == [0.0] * 5
        assert await take(second, 4) == [0.0] * 4
        assert await first.try_acquire(SELLER, OP) > 0
        assert await second.try_acquire(SELLER, OP) > 0
    finally:
        await close(first, second)


async def test_a_rate_reported_to_one_process_paces_the_others(redis_url: str) -> None:
    first, second = plans(redis_url)
    try:
        await first.update_rate(SELLER, OP, 1.0)
        assert await take(second, 9) == [0.0] * 9
        wait = await second.try_acquire(SELLER, OP)
    finally:
        await close(first, second)
    assert 0.9 < wait <= 1.0


async def test_a_new_rate_keeps_the_tokens_owed(redis_url: str) -> None:
    first, second = plans(redis_url)
    try:
        assert await take(first, 9) == [0.0] * 9  # 9 tokens owed at 5/s: 1.8 s of refill
        await first.update_rate(SELLER, OP, 0.5)  # 18 s of refill now
        wait = await second.try_acquire(SELLER, OP)
    finally:
        await close(first, second)
    # The next token is due when 1 of the 9 owed has refilled: 2 s at the new rate.
    assert 1.9 < wait <= 2.0


async def test_a_429_seen_by_one_process_empties_the_bucket_for_all(redis_url: str) -> None:
    first, second = plans(redis_url)
    try:
        await first.throttled(SELLER, OP)
        wait = await second.try_acquire(SELLER, OP)
    finally:
        await close(first, second)
    assert INTERVAL - 0.05 < wait <= INTERVAL


async def test_sellers_and_operations_have_buckets_of_their_own(
    redis_url: str, inspect: redis.asyncio.Redis
) -> None:
    async with RedisRateLimits(redis_url, overrides=PLAN, key_prefix="shop1", key_ttl=600) as plan:
        await plan.throttled(SELLER, OP)
        assert await plan.try_acquire(SELLER, OP) > 0
        assert await plan.try_acquire(OTHER_SELLER, OP) == 0
        assert await plan.try_acquire(SELLER, OTHER_OP) == 0
        keys = sorted(k.decode() for k in await inspect.keys("*"))
        assert keys == sorted(
            [plan.key(SELLER, OP), plan.key(OTHER_SELLER, OP), plan.key(SELLER, OTHER_OP)]
        )
        assert plan.key(SELLER, OP) == f"shop1:plan:{SELLER}:{OP}"
        for key in keys:
            assert 0 < await inspect.pttl(key) <= 600_000  # idle keys go away
        # The bucket is timed on Redis's clock, in microseconds.
        seconds, micros = await inspect.time()
        tat = float(await inspect.hget(plan.key(SELLER, OP), "tat"))
        assert abs(tat - (seconds * 1e6 + micros)) < 2e6


async def test_a_reported_rate_lost_with_an_expired_key_is_stored_again(
    redis_url: str, inspect: redis.asyncio.Redis
) -> None:
    first, second = plans(redis_url)
    try:
        await first.update_rate(SELLER, OP, 1.0)
        await inspect.delete(first.key(SELLER, OP))  # as if it had expired
        assert await first.try_acquire(SELLER, OP) == 0
        assert float(await inspect.hget(first.key(SELLER, OP), "rate")) == 1.0
        assert await take(second, 8) == [0.0] * 8
        assert 0.9 < await second.try_acquire(SELLER, OP) <= 1.0
    finally:
        await close(first, second)


async def test_a_key_stays_while_tokens_are_owed_beyond_its_idle_lifetime(
    redis_url: str, inspect: redis.asyncio.Redis
) -> None:
    async with RedisRateLimits(redis_url, overrides={OP: (0.01, 10)}, key_ttl=1) as plan:
        await plan.throttled(SELLER, OP)  # 9 tokens at 1 per 100 s
        assert await inspect.pttl(plan.key(SELLER, OP)) > 800_000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"key_prefix": ""}, "key_prefix"),
        ({"key_prefix": "a b"}, "key_prefix"),
        ({"timeout": 0}, "timeout must be a positive number"),
        ({"retry_interval": float("inf")}, "retry_interval"),
        ({"key_ttl": -1}, "key_ttl"),
        ({"headroom": -1}, "headroom must be an integer >= 0"),
        ({"overrides": {"getServiceJob": (1.0, 1)}}, "unknown operationId 'getServiceJob'"),
        ({"overrides": {OP: (0, 1)}}, "rate must be a positive number"),
    ],
)
def test_bad_settings_are_refused_by_name(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisRateLimits("redis://127.0.0.1:1/0", **options)  # type: ignore[arg-type]


def test_redis_must_be_a_url_or_a_client() -> None:
    with pytest.raises(TypeError, match=r"redis must be a redis:// URL or a redis\.asyncio"):
        RedisRateLimits(6379)  # type: ignore[arg-type]


async def test_the_password_of_the_url_is_never_shown(redis_logs: pytest.LogCaptureFixture) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/3"  # nobody listens there
    async with RedisRateLimits(url) as plan:
        assert await plan.try_acquire(SELLER, OP) == 0  # the process's own bucket
        assert repr(plan).startswith(f"RedisRateLimits(redis at 127.0.0.1:{url.split(':')[-1]}")
        assert "hunter2" not in repr(plan)
    (warning,) = records(redis_logs, logging.WARNING)
    assert "hunter2" not in warning.getMessage()
    assert "/3" in warning.getMessage()


async def test_redis_killed_and_restarted_costs_one_warning_and_no_call(
    own_server: RedisServer, clock: Clock, redis_logs: pytest.LogCaptureFixture
) -> None:
    plan = RedisRateLimits(own_server.url, overrides=PLAN, clock=clock)
    try:
        assert await plan.try_acquire(SELLER, OP) == 0
        assert plan.shared
        own_server.kill()
        # The process's own bucket, full, takes over: 9 at once, then waits.
        waits = await take(plan, 12)
        assert waits[:9] == [0.0] * 9
        assert all(0 < wait <= INTERVAL for wait in waits[9:])
        assert not plan.shared
        assert plan.fallback.adaptive  # each process finds its share of the plan
        assert "in-process until Redis answers" in repr(plan)
        clock.advance(5.1)  # time to try Redis again: still dead
        assert await plan.try_acquire(SELLER, OP) > 0
        assert len(records(redis_logs, logging.WARNING)) == 1
        assert not records(redis_logs, logging.INFO)

        own_server.start()
        assert await plan.try_acquire(SELLER, OP) > 0  # not tried before the interval
        assert not plan.shared
        clock.advance(5.1)
        assert await plan.try_acquire(SELLER, OP) == 0  # a fresh bucket in Redis
        assert plan.shared
        assert own_server.call("EXISTS", plan.key(SELLER, OP)) == b":1"
    finally:
        await plan.aclose()
    (warning,) = records(redis_logs, logging.WARNING)
    assert f"127.0.0.1:{own_server.port}" in warning.getMessage()
    assert "usage plans fall back to this process" in warning.getMessage()
    (back,) = records(redis_logs, logging.INFO)
    assert "answers again" in back.getMessage()


async def test_a_frozen_redis_is_left_within_the_timeout(
    own_server: RedisServer, redis_logs: pytest.LogCaptureFixture
) -> None:
    plan = RedisRateLimits(own_server.url, overrides=PLAN, timeout=0.25)
    loop = asyncio.get_running_loop()
    try:
        await plan.throttled(SELLER, OP)  # the shared bucket is empty...
        own_server.pause()
        try:
            started = loop.time()
            # ... but Redis does not answer: the process's own, full bucket serves.
            first = await asyncio.wait_for(plan.try_acquire(SELLER, OP), 5)
            took = loop.time() - started
            second = await asyncio.wait_for(plan.try_acquire(SELLER, OP), 5)
            took_then = loop.time() - started - took
        finally:
            own_server.resume()
    finally:
        await plan.aclose()
    assert first == 0
    assert second == 0
    assert 0.2 < took < 2.0  # the timeout, not the pause
    assert took_then < 0.2  # no second wait on Redis (0.25 s) during the outage
    assert len(records(redis_logs, logging.WARNING)) == 1
    assert "no answer within 0.25s" in records(redis_logs, logging.WARNING)[0].getMessage()


async def test_a_reservation_is_one_round_trip_and_waiters_are_served_in_order(
    redis_url: str,
) -> None:
    async with RedisRateLimits(redis_url, overrides={OP: (10.0, 2)}, headroom=0) as plan:
        at_once = [await plan.reserve(SELLER, OP, max_wait=None) for _ in range(2)]
        assert at_once == [(True, 0.0), (True, 0.0)]  # the burst
        later = [await plan.reserve(SELLER, OP, max_wait=None) for _ in range(3)]
        # Each reserved its own token, due one interval after the one before.
        assert all(r.reserved for r in later)
        waits = [r.wait for r in later]
        assert waits == sorted(waits)
        assert waits[0] == pytest.approx(0.1, abs=0.02)
        assert waits[2] == pytest.approx(0.3, abs=0.02)
        # Too far for the caller's deadline: nothing is reserved, and it says when.
        refused = await plan.reserve(SELLER, OP, max_wait=0.05)
        assert not refused.reserved
        assert refused.wait == pytest.approx(0.4, abs=0.02)
        again = await plan.reserve(SELLER, OP, max_wait=None)
        assert again.wait == pytest.approx(0.4, abs=0.02)  # the refused one took nothing
