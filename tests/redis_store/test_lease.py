"""RedisRateLimits books slots for many calls in one round trip, and ahead of the calls to
come (a lease), against a real redis-server.  Two plan objects stand for two processes.

A slot is read as the loop's time of the call plus its wait; every check allows the
round trip's own time, and the scripts round waits up (never early).
"""

from __future__ import annotations

import asyncio

import pytest

from spapi_services.redis import RedisRateLimits

OP = "getServiceJobs"
SELLER = "amzn1.application-oa2-client.test/seller:A1SELLER"
RATE = 20.0
INTERVAL = 1 / RATE
PLAN = {OP: (RATE, 4)}  # no headroom below a burst of 10: 4 at once, then 20 a second
SLACK = 0.03  # a round trip on a busy machine, and the microseconds rounded up


async def due_times(plan: RedisRateLimits, n: int) -> list[float]:
    """``n`` calls reserving at once; when each one's slot is due, on the loop's clock."""
    loop = asyncio.get_running_loop()

    async def one() -> float:
        reserved, wait = await plan.reserve(SELLER, OP, max_wait=None)
        assert reserved
        return loop.time() + wait

    return list(await asyncio.gather(*(one() for _ in range(n))))


def assert_spaced(slots: list[float], burst: int, slack: float = SLACK) -> None:
    """The slots as Amazon's bucket would take them: any ``n`` of them span at least
    ``n - burst`` intervals (less ``slack``), so no slot was given twice.

    Each process reads its slots from the moment Redis's answer reached it, later than
    Redis's own time by the way back: two processes' slots may be up to the difference
    between those delays closer (``slack``); sending late is always allowed.
    """
    ordered = sorted(slots)
    for i, before in enumerate(ordered):
        for j in range(i + burst, len(ordered)):
            least = (j - i - burst + 1) * INTERVAL - slack
            assert ordered[j] - before >= least, (i, j, ordered)


async def test_calls_waiting_together_are_booked_in_one_round_trip(redis_url: str) -> None:
    async with RedisRateLimits(redis_url, overrides=PLAN, lease=0) as plan:
        slots = await due_times(plan, 12)
        # The first call books for itself; the eleven that came meanwhile wait in line and
        # are booked together by the next: two round trips, not twelve.
        assert plan.counts["round_trips"] == 2
        assert plan.counts["booked"] == 12
    start = min(slots)
    offsets = sorted(s - start for s in slots)
    assert offsets[:4] == pytest.approx([0.0] * 4, abs=SLACK)  # the burst
    for i, offset in enumerate(offsets[4:], start=1):
        assert offset == pytest.approx(i * INTERVAL, abs=SLACK)
    assert_spaced(slots, 4)


async def test_slots_are_handed_out_in_the_order_the_calls_asked(redis_url: str) -> None:
    async with RedisRateLimits(redis_url, overrides=PLAN, lease=0) as plan:
        order: list[int] = []
        loop = asyncio.get_running_loop()

        async def one(i: int) -> tuple[int, float]:
            await asyncio.sleep(0)
            order.append(i)
            _, wait = await plan.reserve(SELLER, OP, max_wait=None)
            return i, loop.time() + wait

        answers = await asyncio.gather(*(one(i) for i in range(10)))
    due = dict(answers)
    assert [due[i] for i in order] == sorted(due.values())


async def test_a_process_books_ahead_while_its_calls_keep_up_with_the_plan(
    redis_url: str,
) -> None:
    loop = asyncio.get_running_loop()
    async with RedisRateLimits(redis_url, overrides=PLAN, lease=8) as plan:
        slots, sent = [], []
        for _ in range(24):  # one call after another, each sleeping until its slot
            _, wait = await plan.reserve(SELLER, OP, max_wait=None)
            slots.append(loop.time() + wait)
            await asyncio.sleep(wait)
            sent.append(loop.time())
        counts = plan.counts
    # The burst's four calls book one slot each (they did not wait for them); then the
    # lease doubles (1, 2, 4, 8 ahead) while every booked slot is used in time: far fewer
    # round trips than calls, and the pace is still the plan's.
    assert counts["round_trips"] <= 10, counts
    assert counts["unused"] == 0
    assert_spaced(slots, 4)
    assert all(at >= slot for at, slot in zip(sent, slots, strict=True))  # never early


async def test_booking_ahead_never_hands_a_slot_to_two_processes(redis_url: str) -> None:
    first = RedisRateLimits(redis_url, overrides=PLAN, lease=8)
    second = RedisRateLimits(redis_url, overrides=PLAN, lease=8)
    loop = asyncio.get_running_loop()
    slots: list[float] = []

    async def process(plan: RedisRateLimits, calls: int) -> None:
        for _ in range(calls):
            _, wait = await plan.reserve(SELLER, OP, max_wait=None)
            slots.append(loop.time() + wait)
            await asyncio.sleep(wait)

    try:
        await asyncio.gather(process(first, 20), process(second, 20))
        assert first.counts["round_trips"] + second.counts["round_trips"] < 40
    finally:
        await first.aclose()
        await second.aclose()
    assert len(slots) == 40
    assert_spaced(slots, 4, SLACK)


async def test_a_booked_slot_no_call_took_in_time_is_given_up_not_sent_late(
    redis_url: str,
) -> None:
    loop = asyncio.get_running_loop()
    async with RedisRateLimits(redis_url, overrides=PLAN, lease=8) as plan:
        for _ in range(12):  # keeping up: the lease grows
            _, wait = await plan.reserve(SELLER, OP, max_wait=None)
            await asyncio.sleep(wait)
        await asyncio.sleep(0.6)  # the calls stop for longer than the lease reaches
        trips = plan.counts["round_trips"]
        before = loop.time()
        reserved, wait = await plan.reserve(SELLER, OP, max_wait=None)
        counts = plan.counts
    assert reserved
    # Every slot left in the lease was past its time: dropped (counted as capacity lost),
    # and the call booked a fresh one from Redis, due now, instead of sending a stale one.
    assert 1 <= counts["unused"] <= 8
    assert counts["round_trips"] == trips + 1
    assert wait == 0.0
    assert loop.time() - before < 0.5


async def test_a_slot_due_later_than_the_caller_can_wait_stays_for_the_next(
    redis_url: str,
) -> None:
    loop = asyncio.get_running_loop()
    async with RedisRateLimits(redis_url, overrides=PLAN, lease=0) as plan:
        await due_times(plan, 4)  # the burst spent
        slots = await due_times(plan, 3)  # booked together: 1, 2 and 3 intervals ahead
        hurried = await plan.reserve(SELLER, OP, max_wait=0.01)
        assert not hurried.reserved  # nothing due within 10 ms: nothing taken
        patient = await plan.reserve(SELLER, OP, max_wait=None)
    assert patient.reserved
    assert loop.time() + patient.wait > max(slots) + INTERVAL / 2


async def test_without_redis_nothing_is_booked_and_the_fallback_answers(
    redis_url: str,
) -> None:
    plan = RedisRateLimits("redis://127.0.0.1:1/0", overrides=PLAN, timeout=0.1)
    try:
        answers = await asyncio.gather(*(plan.reserve(SELLER, OP, max_wait=None) for _ in range(3)))
    finally:
        await plan.aclose()
    assert not plan.shared
    assert answers[0] == (True, 0.0)  # the in-process bucket's first token
    assert all(not reserved and wait > 0 for reserved, wait in answers[1:])  # ask again
    assert plan.counts["booked"] == 0


def test_the_lease_settings_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match="lease must be an integer >= 0"):
        RedisRateLimits("redis://127.0.0.1:1/0", lease=-1)
    with pytest.raises(ValueError, match="lease_horizon"):
        RedisRateLimits("redis://127.0.0.1:1/0", lease_horizon=0)
