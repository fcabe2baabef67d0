"""Adaptive usage plans (``RateLimits(adaptive=True)``), against a fake loop clock."""

from __future__ import annotations

import asyncio
import itertools
import math
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from spapi_services import RateLimits, RetryPolicy
from spapi_services._ratelimit import (
    CUT,
    FLOOR,
    ROUND_TRIP_ALLOWANCE,
    STEEPNESS,
    AdaptiveBucket,
    Bucket,
)

from ._helpers import API_PATTERN, ClientFactory, LoopClock, lwa_ok

GET = "getServiceJobByServiceJobId"
JOB = {"payload": {"serviceJobId": "job-1"}}
SCOPE = "app/seller"


async def settle() -> None:
    for _ in range(300):
        await asyncio.sleep(0)


def fresh_429(bucket: AdaptiveBucket) -> None:
    """A 429 to a request let out after the last cut."""
    bucket.throttled(sent_in=bucket.generation)


def take_all(bucket: Bucket) -> int:
    """Take every token free now; how many there were."""
    taken = 0
    while bucket.try_take() == 0:
        taken += 1
    return taken


# --- the cut ---------------------------------------------------------------------------


async def test_a_429_cuts_the_rate_and_empties_the_bucket(loop_clock: LoopClock) -> None:
    bucket = AdaptiveBucket("op", rate=20, burst=40)
    assert bucket.current_rate() == 20
    assert bucket.try_take() == 0
    fresh_429(bucket)
    assert bucket.generation == 1
    assert bucket.current_rate() == pytest.approx(20 * CUT)
    # Emptied: the next token is one refill interval away, at the lowered rate.
    assert bucket.try_take() == pytest.approx(1 / (20 * CUT))


async def test_a_burst_of_429s_is_one_cut(loop_clock: LoopClock) -> None:
    bucket = AdaptiveBucket("op", rate=20, burst=40)
    sent_in = bucket.generation
    assert take_all(bucket) == 38
    for _ in range(38):  # every request of the burst throttled
        bucket.throttled(sent_in=sent_in)
    assert bucket.generation == 1
    assert bucket.current_rate() == pytest.approx(20 * CUT)
    # A request let out after the cut that draws a 429 is news: a second cut.
    loop_clock.now = 1.0
    fresh_429(bucket)
    assert bucket.generation == 2
    assert bucket.rate < 20 * CUT


async def test_through_the_plan_each_task_s_429_is_matched_to_its_token(
    loop_clock: LoopClock,
) -> None:
    limits = RateLimits({GET: (10, 10)}, headroom=0, slow_start=False)
    answered = asyncio.Event()

    async def request() -> None:
        assert await limits.try_acquire(SCOPE, GET) == 0
        await answered.wait()
        await limits.throttled(SCOPE, GET)

    burst = [asyncio.create_task(request()) for _ in range(10)]
    await settle()
    answered.set()
    await asyncio.gather(*burst)
    bucket = limits.bucket(GET, SCOPE)
    assert isinstance(bucket, AdaptiveBucket)
    assert (bucket.generation, bucket.rate) == (1, pytest.approx(10 * CUT))

    loop_clock.now = 0.5  # a request let out after the cut is throttled too
    climbed = bucket.current_rate()
    assert 10 * CUT < climbed < 10
    await asyncio.create_task(request())
    assert (bucket.generation, bucket.rate) == (2, pytest.approx(climbed * CUT))


async def test_other_scopes_keep_their_rate(loop_clock: LoopClock) -> None:
    limits = RateLimits(slow_start=False)

    async def request(scope: str) -> None:
        assert await limits.try_acquire(scope, GET) == 0
        await limits.throttled(scope, GET)

    await asyncio.create_task(request("app/one"))
    assert limits.bucket(GET, "app/one").rate == pytest.approx(20 * CUT)
    assert limits.bucket(GET, "app/two").rate == 20


async def test_without_its_generation_a_429_soon_after_a_cut_is_the_same_burst(
    loop_clock: LoopClock,
) -> None:
    bucket = AdaptiveBucket("op", rate=20, burst=40)
    bucket.throttled()
    assert bucket.generation == 1
    same_burst = 1 / bucket.rate + ROUND_TRIP_ALLOWANCE
    loop_clock.now = same_burst - 0.01
    bucket.throttled()
    assert bucket.generation == 1
    loop_clock.now = same_burst + 0.01
    bucket.throttled()
    assert bucket.generation == 2


async def test_cuts_stop_at_the_floor(loop_clock: LoopClock) -> None:
    bucket = AdaptiveBucket("op", rate=20, burst=40)
    for _ in range(30):
        fresh_429(bucket)
    assert bucket.generation == 30
    assert bucket.rate == pytest.approx(20 * FLOOR)
    assert bucket.try_take() == pytest.approx(1 / (20 * FLOOR))  # slow, but it refills
    loop_clock.now = 1 / (20 * FLOOR)
    assert bucket.try_take() == 0


async def test_the_burst_shrinks_with_the_rate(loop_clock: LoopClock) -> None:
    bucket = AdaptiveBucket("op", rate=20, burst=40)
    for _ in range(3):
        fresh_429(bucket)  # down to 6.86 a second, on its way back to 9.8
    # Idle long enough to refill: the bucket lets out its share of the burst, no more.
    loop_clock.now = 2.0
    rate = bucket.current_rate()
    assert rate < 10
    assert take_all(bucket) == math.floor(38 * rate / 20)


# --- the climb back ---------------------------------------------------------------------


async def test_the_rate_climbs_back_along_cubic_to_the_ceiling(loop_clock: LoopClock) -> None:
    bucket = AdaptiveBucket("op", rate=20, burst=40)
    fresh_429(bucket)  # 20 -> 14
    fresh_429(bucket)  # 14 -> 9.8, at t = 0: the curve now aims at a plateau below 14
    w_max, start = 20 * CUT * (1 + CUT) / 2, 20 * CUT * CUT
    c = STEEPNESS * 20
    k = math.cbrt((w_max - start) / c)

    def curve(t: float) -> float:
        return min(20.0, w_max + c * (t - k) ** 3)

    times = sorted([i * 0.25 for i in range(41)] + [k, k + 0.5])  # ten seconds
    rates = []
    for t in times:
        loop_clock.now = t
        rates.append(bucket.current_rate())
    assert rates[0] == pytest.approx(start)
    for t, rate in zip(times, rates, strict=True):
        assert rate == pytest.approx(curve(t)), t
    assert all(a <= b for a, b in itertools.pairwise(rates))  # never falls back
    assert max(rates) == 20  # reaches the ceiling and never passes it
    # Quick at first, flat near the old rate, then probing faster past it.
    before_k = [r for t, r in zip(times, rates, strict=True) if t < k]
    steps = [b - a for a, b in itertools.pairwise(before_k)]
    assert all(a > b for a, b in itertools.pairwise(steps))
    assert rates[times.index(k)] == pytest.approx(w_max)
    assert rates[times.index(k + 0.5)] - w_max < 0.1  # the plateau
    assert times[rates.index(20)] >= k + math.cbrt((20 - w_max) / c)
    loop_clock.now = 100.0
    assert bucket.current_rate() == 20


async def test_a_cut_below_the_last_plateau_aims_lower(loop_clock: LoopClock) -> None:
    # Cut at the ceiling, the climb aims back at it; cut again on the way up, the rate
    # was wanted by others: the next plateau is halfway between the two rates.
    first, second = AdaptiveBucket("a", rate=20, burst=40), AdaptiveBucket("b", rate=20, burst=40)
    fresh_429(first)
    fresh_429(second)
    loop_clock.now = 1.0
    fresh_429(second)
    cut_from = second.rate / CUT
    c = STEEPNESS * 20
    plateau = cut_from * (1 + CUT) / 2
    k = math.cbrt((plateau - second.rate) / c)
    loop_clock.now = 1.0 + k
    assert second.current_rate() == pytest.approx(plateau)
    assert plateau < cut_from
    # The bucket cut once climbs back towards the rate it was cut from, the ceiling.
    assert first.current_rate() == pytest.approx(
        min(20, 20 + c * (1.0 + k - math.cbrt(6 / c)) ** 3)
    )


async def test_the_curve_has_the_same_shape_in_time_for_every_plan(
    loop_clock: LoopClock,
) -> None:
    fast, slow = AdaptiveBucket("a", rate=20, burst=40), AdaptiveBucket("b", rate=1, burst=2)
    fresh_429(fast)
    fresh_429(slow)
    for t in (0.5, 1.0, 2.0, 2.4):
        loop_clock.now = t
        assert fast.current_rate() / 20 == pytest.approx(slow.current_rate() / 1)
        assert fast.current_rate() < 20


async def test_the_waiting_time_follows_the_climb(loop_clock: LoopClock) -> None:
    bucket = AdaptiveBucket("op", rate=20, burst=40, headroom=0)
    fresh_429(bucket)
    loop_clock.now = 10.0  # back at the plan's rate and refilled
    assert bucket.current_rate() == 20
    assert take_all(bucket) == 40
    assert bucket.try_take() == pytest.approx(1 / 20)


# --- the ceiling --------------------------------------------------------------------------


async def test_the_header_moves_the_ceiling_not_the_cut_rate(loop_clock: LoopClock) -> None:
    bucket = AdaptiveBucket("op", rate=20, burst=40)
    fresh_429(bucket)
    bucket.follow_header(20.0)  # the API confirms the plan: the cut stands
    assert bucket.rate == pytest.approx(14)
    bucket.follow_header(10.0)  # a smaller plan than published: below the cut rate
    assert (bucket.ceiling, bucket.current_rate()) == (10.0, 10.0)
    loop_clock.now = 30.0
    assert bucket.current_rate() == 10.0

    bucket.follow_header(40.0)  # a larger plan: the rate climbs to it, not past it
    loop_clock.now = 60.0
    assert bucket.current_rate() == 40.0
    assert take_all(bucket) == 38  # the burst is the published one, less the headroom


async def test_the_header_at_the_ceiling_moves_the_rate(loop_clock: LoopClock) -> None:
    bucket = AdaptiveBucket("op", rate=5, burst=20, headroom=0)
    bucket.follow_header(2.0)
    assert bucket.rate == pytest.approx(2.0)
    for nonsense in (0.0, -1.0, float("nan"), float("inf")):
        bucket.follow_header(nonsense)
    assert bucket.ceiling == 2.0
    # A cut from the new ceiling climbs back to it (not to a plateau below it).
    fresh_429(bucket)
    assert bucket.rate == pytest.approx(2.0 * CUT)
    loop_clock.now = math.cbrt(2.0 * (1 - CUT) / (STEEPNESS * 2.0))
    assert bucket.current_rate() == pytest.approx(2.0)


# --- the exact plan stays exact -----------------------------------------------------------


async def test_the_exact_plan_never_changes_its_rate_on_429s(loop_clock: LoopClock) -> None:
    limits = RateLimits(adaptive=False)
    assert not limits.adaptive
    bucket = limits.bucket(GET, SCOPE)
    assert type(bucket) is Bucket

    async def request() -> None:
        assert await limits.try_acquire(SCOPE, GET) == 0
        await limits.throttled(SCOPE, GET)

    for second in range(5):
        loop_clock.now = float(second)
        await asyncio.create_task(request())
    assert (bucket.rate, bucket.generation) == (20, 0)
    # Only emptied: the next token one interval of the full rate after the last 429.
    assert bucket.try_take() == pytest.approx(1 / 20)


def test_adaptive_is_checked_and_the_default() -> None:
    with pytest.raises(TypeError, match="adaptive"):
        RateLimits(adaptive="yes")  # type: ignore[arg-type]
    assert RateLimits().adaptive
    assert "adaptive" in repr(RateLimits())
    assert "adaptive" not in repr(RateLimits(adaptive=False))


# --- through the client -------------------------------------------------------------------


async def test_a_client_s_burst_of_429s_makes_one_cut_and_every_call_succeeds(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    answers = [CallbackResult(status=429, payload={"errors": []})] * 5
    sent: list[float] = []

    async def callback(url: Any, **kwargs: Any) -> CallbackResult:
        sent.append(loop_clock.now)
        for _ in range(20):  # the whole burst is in flight before the first answer
            await asyncio.sleep(0)
        if answers:
            return answers.pop()
        return CallbackResult(payload=JOB, headers={"x-amzn-RateLimit-Limit": "5.0"})

    mock_api.add(API_PATTERN, method="GET", callback=callback, repeat=True)
    limits = RateLimits({GET: (5, 5)}, headroom=0, slow_start=False)
    client = make_client(rate_limits=limits, retry=RetryPolicy(base_delay=0))
    calls = [asyncio.create_task(client.service_jobs.get("job-1")) for _ in range(5)]
    await settle()
    bucket = limits.bucket(GET, client.plan_scope)
    assert isinstance(bucket, AdaptiveBucket)
    assert len(sent) == 5
    assert (bucket.generation, bucket.rate) == (1, pytest.approx(5 * CUT))
    for step in range(1, 41):
        loop_clock.now = step * 0.1
        await settle()
    jobs = [call.result() for call in calls]
    assert [job.service_job_id for job in jobs] == ["job-1"] * 5
    assert len(sent) == 10
    # The retries went out at the lowered rate, and the header did not undo the cut.
    assert bucket.generation == 1
    assert sent[5] - sent[4] >= 1 / (5 * CUT) - 1e-9
