"""The default plan's slow start and its switch to sharing, against a fake loop clock.

A bucket found full (new, or idle long enough) lets an eighth of its burst out at once,
then twice as much with every round of answers, never slower than the plan refills; a
429 during the ramp cuts the rate to the share of the plan the bucket had got.  The
last tests run whole "processes" (plans, with their callers) against a model of
Amazon's bucket, to show what the default does for a process alone and for several.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from spapi_services import LearningPlan, RateLimits
from spapi_services._ratelimit import CUT, DEAF_AFTER, SLOW_START, AdaptiveBucket, Bucket

from ._helpers import API_PATTERN, ClientFactory, LoopClock, lwa_ok

GET = "getServiceJobByServiceJobId"
#: The clock's doubling time for a burst of 40 at 20/s: 4 tokens first (e·ln 2·4/20).
STEP = math.e * math.log(2) * 4 / 20
SCOPE = "app/seller"
JOB = {"payload": {"serviceJobId": "job-1"}}


async def settle(turns: int = 300) -> None:
    for _ in range(turns):
        await asyncio.sleep(0)


def take_all(bucket: Bucket) -> int:
    taken = 0
    while bucket.try_take() == 0:
        taken += 1
    return taken


def ramping_bucket(kind: type[Bucket] = AdaptiveBucket) -> Bucket:
    """getServiceJobByServiceJobId's plan: 20/s, a burst of 40 (38 with the headroom)."""
    return kind("op", rate=20, burst=40, slow_start=True)


# --- the ramp ---------------------------------------------------------------------------


async def test_a_cold_bucket_lets_an_eighth_of_its_burst_out_at_once(
    loop_clock: LoopClock,
) -> None:
    bucket = ramping_bucket()
    assert take_all(bucket) == math.floor(38 * SLOW_START) == 4
    assert bucket.ramping
    wait = bucket.try_take()
    assert 0 < wait <= STEP  # held back, until the clock or the answers allow more
    # Without the slow start, the whole burst at once (the exact bucket of old).
    assert take_all(Bucket("op", rate=20, burst=40)) == 38


async def test_what_goes_out_doubles_with_each_round_of_answers(loop_clock: LoopClock) -> None:
    bucket = ramping_bucket()
    total = [take_all(bucket)]
    while bucket.ramping and len(total) < 10:
        loop_clock.now += STEP  # a round trip as long as the clock's doubling
        for _ in range(total[-1] - (total[-2] if len(total) > 1 else 0)):
            bucket.answered()
        total.append(total[-1] + take_all(bucket))
    # 4 at once, then two more per answer: 8 in all, 16, 32; then the bucket's own limit.
    assert total[:4] == [4, 8, 16, 32]
    assert not bucket.ramping
    assert bucket.try_take() > 0


async def test_answers_alone_do_not_outrun_the_clock(loop_clock: LoopClock) -> None:
    bucket = ramping_bucket()
    assert take_all(bucket) == 4
    for _ in range(4):  # every request answered at once
        bucket.answered()
    # Nothing in flight: one more may go (a caller alone, one request at a time) ...
    assert take_all(bucket) == 1
    bucket.answered()
    assert take_all(bucket) == 1
    # ... but two in flight at once only as the clock allows: 4 by now, 8 a step later.
    assert take_all(bucket) == 0
    loop_clock.now = STEP
    assert take_all(bucket) == 2


async def test_the_clock_alone_does_not_outrun_the_answers(loop_clock: LoopClock) -> None:
    bucket = ramping_bucket()
    assert take_all(bucket) == 4
    loop_clock.now = 0.9  # long round trips: no answer yet
    assert take_all(bucket) == 0
    bucket.answered()
    assert take_all(bucket) == 2


async def test_without_news_of_answers_the_ramp_goes_by_the_clock(
    loop_clock: LoopClock,
) -> None:
    bucket = ramping_bucket()
    assert take_all(bucket) == 4
    loop_clock.now = DEAF_AFTER  # a second without any answer: nobody passes them on
    assert take_all(bucket) == math.floor(4 * 2 ** (DEAF_AFTER / STEP)) - 4


@pytest.mark.parametrize(("rate", "burst"), [(20, 40), (10, 40), (5, 20), (1, 2)])
async def test_a_lone_process_never_lets_the_plan_fill_up_while_it_ramps(
    loop_clock: LoopClock, rate: float, burst: int
) -> None:
    """Answers come back within the ramp's pace: at every moment as many tokens have gone
    out as the plan refilled, less the token a count of whole ones may be behind (Amazon's
    bucket, full at the start, never fills up again: at most that one token is lost)."""
    bucket = AdaptiveBucket("op", rate=rate, burst=burst, slow_start=True)
    sent = heard = 0
    tick = 0.01
    for step in range(1, 801):  # eight seconds
        sent += take_all(bucket)
        for _ in range(sent - heard):
            bucket.answered()
        heard = sent
        assert sent > rate * loop_clock.now - 1, (loop_clock.now, sent)
        loop_clock.now = step * tick
    assert not bucket.ramping


async def test_an_idle_bucket_ramps_again_and_a_busy_one_does_not(loop_clock: LoopClock) -> None:
    bucket = ramping_bucket()
    loop_clock.now = 0.0
    taken = take_all(bucket)
    for _ in range(10):
        loop_clock.now += 0.3
        for _ in range(taken):
            bucket.answered()
        taken = take_all(bucket)
    assert not bucket.ramping
    assert bucket.try_take() > 0  # busy: empty, not ramping
    loop_clock.now += 2.0  # idle long enough to fill up again
    assert take_all(bucket) == 4
    assert bucket.ramping


# --- the switch to sharing -----------------------------------------------------------------


async def test_a_429_in_the_ramp_cuts_the_rate_to_the_share_it_had(loop_clock: LoopClock) -> None:
    limits = RateLimits({GET: (20, 40)})
    assert limits.adaptive
    assert limits.slow_start
    bucket = limits.bucket(GET, SCOPE)
    assert isinstance(bucket, AdaptiveBucket)

    async def request() -> float:
        return await limits.try_acquire(SCOPE, GET)

    assert [await asyncio.create_task(request()) for _ in range(4)] == [0.0] * 4
    limits.answered(SCOPE, GET)
    limits.answered(SCOPE, GET)
    loop_clock.now = 0.5

    async def refused() -> None:
        # The 6th token of the ramp, let out at 0.5 s, draws a 429: the plan let 5 through
        # of the 38 + 10 a full bucket would have allowed by then.
        assert await limits.try_acquire(SCOPE, GET) == 0
        await limits.throttled(SCOPE, GET)

    assert await request() == 0  # the 5th
    await asyncio.create_task(refused())
    share = 5 / (38 + 20 * 0.5)
    assert bucket.generation == 1
    assert bucket.rate == pytest.approx(20 * share * CUT)
    assert not bucket.ramping


async def test_a_429_after_the_ramp_cuts_as_the_adaptive_plan_does(loop_clock: LoopClock) -> None:
    limits = RateLimits({GET: (20, 40)})
    bucket = limits.bucket(GET, SCOPE)
    taken = take_all(bucket)
    while bucket.ramping:
        loop_clock.now += STEP
        for _ in range(taken):
            limits.answered(SCOPE, GET)
        taken = take_all(bucket)
    loop_clock.now += 1 / 20  # one token refilled: busy, not idle (no new ramp)

    async def refused() -> None:
        assert await limits.try_acquire(SCOPE, GET) == 0
        await limits.throttled(SCOPE, GET)

    await asyncio.create_task(refused())
    assert not bucket.ramping
    assert bucket.rate == pytest.approx(20 * CUT)


async def test_the_exact_plan_is_one_argument_away(loop_clock: LoopClock) -> None:
    limits = RateLimits(adaptive=False)
    assert not limits.slow_start
    bucket = limits.bucket(GET, SCOPE)
    assert type(bucket) is Bucket
    assert take_all(bucket) == 38  # the whole burst at once
    assert "exact" in repr(limits)
    assert "slow start" in repr(RateLimits())
    assert RateLimits(slow_start=False).adaptive
    with pytest.raises(TypeError, match="slow_start"):
        RateLimits(slow_start="no")  # type: ignore[arg-type]


def test_the_default_plan_hears_of_answers() -> None:
    assert isinstance(RateLimits(), LearningPlan)


# --- through the client ----------------------------------------------------------------------


async def test_the_client_tells_the_plan_of_each_answer(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    answer = asyncio.Event()  # answers are held (the requests in flight) until set
    sent: list[float] = []

    async def callback(url: Any, **kwargs: Any) -> CallbackResult:
        sent.append(loop_clock.now)
        await answer.wait()
        return CallbackResult(payload=JOB)

    mock_api.add(API_PATTERN, method="GET", callback=callback, repeat=True)
    limits = RateLimits({GET: (20, 40)})
    client = make_client(rate_limits=limits)
    calls = [asyncio.create_task(client.service_jobs.get("job-1")) for _ in range(38)]
    await settle()
    assert len(sent) == 4  # the first step of the ramp, in flight
    bucket = limits.bucket(GET, client.plan_scope)
    assert bucket._ramp is not None
    assert bucket._ramp.answered == 0
    answer.set()
    await settle()
    assert bucket._ramp.answered == 4  # the four answers reached the plan
    # The request next in line asks again within a refill interval: with nothing in
    # flight, it goes (answered at once too, the next goes, one at a time).
    loop_clock.now += 1 / 20
    await settle()
    assert len(sent) > 4
    answer.clear()
    for _ in range(10):
        loop_clock.now += STEP
        await settle()
        answer.set()
        await settle()
        answer.clear()
    answer.set()
    await asyncio.gather(*calls)
    assert len(sent) == 38


# --- processes sharing a plan, against a model of Amazon's bucket -----------------------------


class Amazon:
    """The server's bucket for one operation (the emulator's rule), on the fake clock."""

    def __init__(self, clock: LoopClock, rate: float = 20.0, burst: int = 40) -> None:
        self.clock, self.rate, self.burst = clock, rate, burst
        self.tokens, self.stamp = float(burst), 0.0
        self.throttled = 0

    def allow(self) -> bool:
        now = self.clock.now
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.throttled += 1
        return False


async def _token(plan: RateLimits) -> None:
    """Ask the plan for a token, sleeping the waits it gives (as the client's lane does)."""
    while True:
        wait = await plan.try_acquire(SCOPE, GET)
        if wait <= 0:
            return
        await asyncio.sleep(wait)


async def process(
    plan: RateLimits, amazon: Amazon, calls: int, done: list[float], rtt: float
) -> None:
    """``calls`` requests at once through ``plan``, each retried after its 429s."""
    lane = asyncio.Lock()  # one request of the operation asks the plan at a time

    async def call() -> None:
        while True:
            async with lane:
                await _token(plan)
            ok = amazon.allow()
            await asyncio.sleep(rtt)
            if ok:
                plan.answered(SCOPE, GET)
                done.append(amazon.clock.now)
                return
            await plan.throttled(SCOPE, GET)
            await asyncio.sleep(0.5)  # the client's back-off

    await asyncio.gather(*(call() for _ in range(calls)))


async def run(clock: LoopClock, plans: list[RateLimits], calls: int) -> tuple[int, float]:
    """Every process fired at once; the 429s drawn and when the last call was done."""
    amazon = Amazon(clock)
    done: list[float] = []
    tasks = [asyncio.create_task(process(p, amazon, calls, done, rtt=0.03)) for p in plans]
    while not all(t.done() for t in tasks):
        clock.now = round(clock.now + 0.005, 6)
        await settle(15)
        assert clock.now < 60, "the processes never finished"
    return amazon.throttled, max(done)


async def test_a_process_alone_pays_nothing_for_the_slow_start(loop_clock: LoopClock) -> None:
    throttled, took = await run(loop_clock, [RateLimits()], 80)
    loop_clock.now = 0.0
    exact_throttled, exact_took = await run(loop_clock, [RateLimits(adaptive=False)], 80)
    assert throttled == exact_throttled == 0
    # As fast as the exact bucket with its whole burst at once, within two refill
    # intervals (the token the ramp may lose to a full bucket, and the lane's polling).
    assert took <= exact_took + 2 / 20


async def test_cold_processes_sharing_a_plan_draw_a_fraction_of_the_429s(
    loop_clock: LoopClock,
) -> None:
    # bench_processes's case: 440 calls split among 4 cold processes.
    exact, _ = await run(loop_clock, [RateLimits(adaptive=False) for _ in range(4)], 110)
    loop_clock.now = 0.0
    graceful, took = await run(loop_clock, [RateLimits() for _ in range(4)], 110)
    # Four exact buckets fire four bursts of 38 at a bucket of 40 and keep 20/s each.
    assert exact >= 100
    assert graceful <= exact / 4
    assert took <= 1.3 * (4 * 110 - 40) / 20
