"""RedisRateLimits against a real redis-server: Amazon's bucket, shared by processes.

Two plan objects, each with its own connection, stand for two processes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from typing import Any, NamedTuple

import pytest
import redis.asyncio
from _servers import RedisServer, free_port
from _timers import RecordingTimer
from multidict import CIMultiDict, CIMultiDictProxy

from spapi_services import (
    LwaCredentials,
    RateLimits,
    RawResponse,
    ReservingPlan,
    ServicesClient,
    TokenReservation,
    UsagePlan,
)
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
    options.setdefault("headroom", 1)  # the in-process plan's: 9 of 10 at once
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
        # Redis holds a fifth of a burst back (the slots' requests reach Amazon later
        # than Redis booked them), at least what the in-process bucket holds back.
        assert plan.capacity("getServiceJobByServiceJobId") == 32  # 40 less 8
        assert plan.capacity("cancelServiceJobByServiceJobId") == 16  # 20 less 4
        assert plan.capacity("assignAppointmentResources") == 2
        assert local.bucket("getServiceJobByServiceJobId").capacity == 38
    async with RedisRateLimits(redis_url, headroom=0) as plan:
        assert plan.capacity("getServiceJobByServiceJobId") == 40
    async with RedisRateLimits(redis_url, headroom=2) as plan:
        assert plan.capacity("getServiceJobByServiceJobId") == 38


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
    plan = RedisRateLimits(redis_url, overrides={OP: (rate, 10)}, headroom=1)
    loop = asyncio.get_running_loop()
    answers: list[float] = []
    try:
        started = loop.time()
        while (elapsed := loop.time() - started) < 0.3:
            wait = await plan.try_acquire(SELLER, OP)
            answers.append(wait)
            if wait:
                await asyncio.sleep(wait)
    finally:
        await close(plan)
    admitted = answers.count(0)
    assert answers[:9] == [0.0] * 9  # the bucket's capacity at once
    # Never faster than the rate (however long the loop's sleeps overshoot on a busy
    # machine, which only makes it slower) ...
    assert admitted <= 9 + int(elapsed * rate) + 1
    waits = [wait for wait in answers if wait]
    assert waits
    assert all(0 < wait <= 1 / rate for wait in waits)
    # ... and a caller that slept the wait it was given is let through: never two waits
    # in a row (but for a sleep that ended a hair early, on another clock than Redis's).
    for before, after in itertools.pairwise(answers[9:]):
        assert not (before > 1e-3 and after > 1e-3), answers


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
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        assert await take(first, 9) == [0.0] * 9  # 9 tokens owed at 5/s: 1.8 s of refill
        await first.update_rate(SELLER, OP, 0.5)  # 18 s of refill now
        took = loop.time() - started
        wait = await second.try_acquire(SELLER, OP)
    finally:
        await close(first, second)
    # The next token is due when 1 of the 9 owed has refilled: 2 s at the new rate, less
    # ten times what had refilled at the old rate before the change (the calls' time).
    assert 2.0 - 10 * took - 0.01 < wait <= 2.0


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
    async with RedisRateLimits(
        redis_url, overrides=PLAN, headroom=1, key_prefix="shop1", key_ttl=600
    ) as plan:
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
    async with RedisRateLimits(
        redis_url, overrides={OP: (0.01, 10)}, headroom=1, key_ttl=1
    ) as plan:
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
    plan = RedisRateLimits(own_server.url, overrides=PLAN, headroom=1, clock=clock)
    try:
        assert await plan.try_acquire(SELLER, OP) == 0
        assert plan.shared
        own_server.kill()
        # The process's own bucket, full, takes over: as every process falls back at once,
        # it starts slowly (one token of its 9, then more as answers come back).
        waits = await take(plan, 3)
        assert waits[0] == 0.0
        assert all(0 < wait <= INTERVAL for wait in waits[1:])
        assert not plan.shared
        assert plan.fallback.adaptive  # each process finds its share of the plan
        assert plan.fallback.slow_start
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
    plan = RedisRateLimits(own_server.url, overrides=PLAN, headroom=1, timeout=0.25)
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
    assert 0 <= second <= INTERVAL  # the fallback's slow start, not Redis, decides
    assert 0.2 < took < 2.0  # the timeout, not the pause
    assert took_then < 0.2  # no second wait on Redis (0.25 s) during the outage
    assert len(records(redis_logs, logging.WARNING)) == 1
    assert "no answer within 0.25s" in records(redis_logs, logging.WARNING)[0].getMessage()


async def test_a_reservation_is_one_round_trip_and_waiters_are_served_in_order(
    redis_url: str,
) -> None:
    loop = asyncio.get_running_loop()
    async with RedisRateLimits(redis_url, overrides={OP: (10.0, 2)}, headroom=0) as plan:
        started = loop.time()
        at_once = [await plan.reserve(SELLER, OP, max_wait=None) for _ in range(2)]
        assert at_once == [(True, 0.0), (True, 0.0)]  # the burst
        later = []
        for _ in range(3):
            reservation = await plan.reserve(SELLER, OP, max_wait=None)
            assert reservation.reserved
            later.append(loop.time() + reservation.wait)
        # Each reserved its own token, due one interval after the one before: never
        # sooner, and no later than a slow machine makes the answers.
        for i, due in enumerate(later, start=1):
            assert 0.1 * i - 0.005 <= due - started <= 0.1 * i + 0.1, (i, later)
        assert later == sorted(later)
        # Too far for the caller's deadline: nothing is reserved, and it says when.
        refused = await plan.reserve(SELLER, OP, max_wait=0.05)
        assert not refused.reserved
        assert loop.time() + refused.wait - started >= 0.4 - 0.005
        again = await plan.reserve(SELLER, OP, max_wait=None)
        # The refused one took nothing: the next token is the same one.
        assert loop.time() + again.wait - started == pytest.approx(
            loop.time() + refused.wait - started, abs=0.1
        )
        assert 0.4 - 0.005 <= loop.time() + again.wait - started <= 0.5


# --- no slot promised twice -----------------------------------------------------------
#
# A reservation promises its caller a slot; the caller sleeps until then and sends without
# asking again.  Nothing may later hand that slot to someone else: not a 429 (the drain),
# not a new rate.  A slot is read as the loop's time of the call plus its wait: the script
# runs somewhere between the call's start and its end, so each slot is known within that
# round trip, and the checks allow exactly that much.

EPSILON = 1e-3  # the scripts round waits up to whole microseconds


class Slot(NamedTuple):
    """When a reserved token is due, on the loop's clock: between ``low`` and ``high``."""

    low: float
    high: float


async def promise(plan: RedisRateLimits, n: int) -> list[Slot]:
    """Reserve ``n`` tokens, one after another; their slots."""
    loop = asyncio.get_running_loop()
    slots = []
    for _ in range(n):
        before = loop.time()
        reserved, wait = await plan.reserve(SELLER, OP, max_wait=None)
        assert reserved
        slots.append(Slot(before + wait, loop.time() + wait))
    return slots


def apart(first: Slot, then: Slot) -> tuple[float, float]:
    """The least and the most ``then`` can be after ``first``."""
    return then.low - first.high, then.high - first.low


def assert_apart(first: Slot, then: Slot, seconds: float) -> None:
    least, most = apart(first, then)
    assert least - EPSILON <= seconds <= most + EPSILON, (least, most, seconds)


async def test_a_429_never_hands_out_a_slot_already_promised(redis_url: str) -> None:
    # 1 a second, 2 at once: two go now, the next three are promised 1, 2 and 3 s on.
    async with RedisRateLimits(redis_url, overrides={OP: (1.0, 2)}, headroom=0) as plan:
        promised = await promise(plan, 5)
        for before, after in itertools.pairwise(promised[2:]):  # the burst's go at once
            assert_apart(before, after, 1.0)
        await plan.throttled(SELLER, OP)  # a 429 (to some other process's request)
        after = await promise(plan, 2)
    # The bucket was already emptier than a drain makes it: the next slots follow the
    # promised ones, one interval apart (before the fix the drain moved it back, and the
    # first came 1 s after the 429: on the first promised slot).
    assert_apart(promised[-1], after[0], 1.0)
    assert_apart(after[0], after[1], 1.0)


async def test_a_429_still_empties_a_bucket_with_nothing_promised(redis_url: str) -> None:
    async with RedisRateLimits(redis_url, overrides={OP: (1.0, 2)}, headroom=0) as plan:
        loop = asyncio.get_running_loop()
        assert (await plan.reserve(SELLER, OP, max_wait=None)).wait == 0  # one of two
        drained_at = loop.time()
        await plan.throttled(SELLER, OP)
        drained = Slot(drained_at, loop.time())
        (after,) = await promise(plan, 1)
    assert_apart(drained, after, 1.0)  # a full interval, not the burst's second token


async def test_a_rate_rise_never_pulls_a_new_slot_before_the_promised_ones(
    redis_url: str,
) -> None:
    async with RedisRateLimits(redis_url, overrides={OP: (1.0, 2)}, headroom=0) as plan:
        promised = await promise(plan, 6)  # two now, then 1, 2, 3 and 4 s on
        await plan.update_rate(SELLER, OP, 4.0)  # four times the rate: 0.25 s apart
        after = await promise(plan, 3)
    # Shrinking the 6 s owed to 1.5 s would have put new slots 1.25, 1.5, 1.75 and 2 s on:
    # on and between the promised ones, which still go 1, 2, 3 and 4 s on.  The bucket
    # counts as empty from the last promised slot and refills at the new rate from there.
    assert_apart(promised[-1], after[0], 0.25)
    assert_apart(after[0], after[1], 0.25)
    assert_apart(after[1], after[2], 0.25)


async def test_a_rate_fall_keeps_the_tokens_owed_after_the_promised_ones(
    redis_url: str,
) -> None:
    loop = asyncio.get_running_loop()
    async with RedisRateLimits(redis_url, overrides={OP: (4.0, 2)}, headroom=0) as plan:
        promised = await promise(plan, 6)  # two now, then 0.25, 0.5, 0.75 and 1 s on
        changed_at = loop.time()
        await plan.update_rate(SELLER, OP, 1.0)
        changed = Slot(changed_at, loop.time())
        (after,) = await promise(plan, 1)
    # What is owed when the rate changes (the promised tokens, and the bucket refilled
    # behind them: 1.5 s less the time since, at 4/s) takes four times as long at 1/s; the
    # next slot is then one interval short of that: well after the last promised one.
    last = promised[-1]
    least_owed = 4 * (last.low + 0.5 - changed.high)
    most_owed = 4 * (last.high + 0.5 - changed.low)
    assert changed.low + least_owed - 1.0 - EPSILON <= after.high
    assert after.low <= changed.high + most_owed - 1.0 + EPSILON
    assert apart(last, after)[0] > 1.0


async def test_a_rate_rise_with_nothing_promised_refills_sooner(redis_url: str) -> None:
    first, second = plans(redis_url)
    try:
        assert await take(first, 9) == [0.0] * 9  # 9 tokens owed at 5/s: 1.8 s of refill
        await first.update_rate(SELLER, OP, 10.0)  # 0.9 s at the new rate
        wait = await second.try_acquire(SELLER, OP)
    finally:
        await close(first, second)
    # Nothing was promised (all nine went at once): the owed refill shrinks as before, and
    # the next token is due when one of the nine has come back at the new rate.
    assert 0 < wait <= 0.1


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_no_sequence_of_429s_and_rates_hands_out_a_promised_slot(
    redis_url: str, seed: int
) -> None:
    """Reservations, 429s and rate changes at random: every slot promised comes at least
    one interval (at the rate of the moment) after the one promised before it."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    async with RedisRateLimits(redis_url, overrides={OP: (2.0, 3)}, headroom=0) as plan:
        last: Slot | None = None
        rate = 2.0
        for _ in range(40):
            action = rng.choices(["reserve", "drain", "rate"], weights=[6, 1, 1])[0]
            if action == "drain":
                await plan.throttled(SELLER, OP)
            elif action == "rate":
                rate = rng.choice([0.5, 1.0, 2.0, 4.0, 8.0])
                await plan.update_rate(SELLER, OP, rate)
            else:
                before = loop.time()
                reserved, wait = await plan.reserve(SELLER, OP, max_wait=None)
                assert reserved
                if wait > 0:  # a promise
                    slot = Slot(before + wait, loop.time() + wait)
                    if last is not None:
                        assert apart(last, slot)[1] >= 1 / rate - EPSILON
                    last = slot


# --- a capability declared, and kept by a wrapper ---------------------------------------


class CountedPlan(RedisRateLimits):
    """The Redis plan, counting the questions the client asks it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked: list[str] = []

    async def reserve(
        self, scope: str, operation_id: str, *, max_wait: float | None
    ) -> TokenReservation:
        self.asked.append("reserve")
        return await super().reserve(scope, operation_id, max_wait=max_wait)

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        self.asked.append("try_acquire")
        return await super().try_acquire(scope, operation_id)


async def test_the_fleets_counting_plan_still_reserves_in_one_round_trip(
    redis_url: str,
) -> None:
    fleet = pytest.importorskip("spapi_services.fleet._fleet")
    get_job = "getServiceJobByServiceJobId"
    statuses = iter([200, 429, 200, 200])

    async def sender(method: str, url: Any, headers: Any, body: Any, _: float) -> RawResponse:
        if "token" in str(url):
            data: dict[str, Any] = {"access_token": "Atza|t", "expires_in": 3600}
            return RawResponse(200, CIMultiDictProxy(CIMultiDict()), json.dumps(data).encode())
        status = next(statuses)
        data = {"payload": {"serviceJobId": "job-1"}} if status == 200 else {}
        return RawResponse(status, CIMultiDictProxy(CIMultiDict()), json.dumps(data).encode())

    async with CountedPlan(redis_url, overrides={get_job: (1.0, 1)}, headroom=0) as inner:
        plan = fleet._CountingPlan(inner)
        assert isinstance(plan, ReservingPlan)  # declared, as the plan it wraps is
        timer = RecordingTimer()
        async with ServicesClient(
            LwaCredentials("amzn1.application-oa2-client.x", "secret-x", "Atzr|x"),
            endpoint="https://api.test",
            token_url="https://auth.test/token",
            sender=sender,
            rate_limits=plan,
            timer=timer,
        ) as client:
            for _ in range(3):
                await client.service_jobs.get("job-1")
    # One reservation per attempt (four: the 429 was retried), never a poll; each waited
    # for its own slot.
    assert inner.asked == ["reserve"] * 4
    assert plan.throttled_count == 1
    assert len([wait for wait in timer if wait > 0.5]) >= 3
