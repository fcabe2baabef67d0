"""The client-side usage plans, against a fake loop clock (no real waiting)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from spapi_services import LwaCredentials, RateLimits, RetryPolicy, ServicesClient
from spapi_services._ratelimit import Bucket
from spapi_services._routes import ROUTES

from ._helpers import API_PATTERN, ClientFactory, LoopClock, expect, lwa_ok

GET = "getServiceJobByServiceJobId"
ASSIGN = "assignAppointmentResources"
JOB = {"payload": {"serviceJobId": "job-1"}}


async def settle() -> None:
    """Let every task that can run, run (the fake clock does not move)."""
    for _ in range(300):
        await asyncio.sleep(0)


def spawn(*coros: Coroutine[Any, Any, Any]) -> list[asyncio.Task[Any]]:
    return [asyncio.create_task(c) for c in coros]


async def results(tasks: list[asyncio.Task[Any]]) -> list[Any]:
    """The tasks' results; they must be done already (a frozen clock would hang here)."""
    await settle()
    assert all(t.done() for t in tasks), "still waiting on the limiter"
    return [t.result() for t in tasks]


async def finish(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- the bucket on its own -----------------------------------------------------------


async def test_burst_at_once_then_steady_rate(loop_clock: LoopClock) -> None:
    bucket = Bucket("op", rate=5, burst=20, headroom=0)
    done: list[float] = []

    async def take() -> None:
        await bucket.acquire()
        done.append(loop_clock.now)

    tasks = spawn(*(take() for _ in range(23)))
    await settle()
    assert len(done) == 20  # the whole burst, at t=0
    loop_clock.now = 0.19
    await settle()
    assert len(done) == 20
    loop_clock.now = 0.2
    await settle()
    assert len(done) == 21
    loop_clock.now = 0.6
    await settle()
    assert len(done) == 23
    assert done[:20] == [0.0] * 20
    await finish(tasks)


async def test_headroom_holds_back_part_of_the_burst_but_not_of_the_rate(
    loop_clock: LoopClock,
) -> None:
    bucket = Bucket("op", rate=20, burst=40)  # Amazon's plan for getServiceJobByServiceJobId
    assert (bucket.burst, bucket.capacity) == (40, 38)
    done: list[float] = []

    async def take() -> None:
        await bucket.acquire()
        done.append(loop_clock.now)

    tasks = spawn(*(take() for _ in range(48)))
    await settle()
    assert len(done) == 38
    loop_clock.now = 0.5  # then 20 a second, as the plan refills
    await settle()
    assert len(done) == 48
    assert Bucket("op", rate=1, burst=2).capacity == 2  # too small a bucket to hold back
    await finish(tasks)


async def test_header_changes_the_rate_and_keeps_the_burst(loop_clock: LoopClock) -> None:
    bucket = Bucket("op", rate=5, burst=20, headroom=0)
    for _ in range(20):
        await bucket.acquire()
    bucket.follow_header(1.0)
    assert bucket.rate == pytest.approx(1.0)
    assert bucket.burst == 20

    waiter = spawn(bucket.acquire())
    await settle()
    loop_clock.now = 0.5  # 0.2 s would do at the old rate
    await settle()
    assert not waiter[0].done()
    loop_clock.now = 1.0
    await settle()
    assert waiter[0].done()


async def test_a_faster_header_wakes_a_waiter_sooner(loop_clock: LoopClock) -> None:
    bucket = Bucket("op", rate=1, burst=2)
    await bucket.acquire()
    await bucket.acquire()
    waiter = spawn(bucket.acquire())
    await settle()
    bucket.follow_header(10.0)  # the API says the plan is bigger than published
    loop_clock.now = 0.1
    await settle()
    assert waiter[0].done()


@pytest.mark.parametrize("rate", [0.0, -1.0, float("nan"), float("inf")])
async def test_header_nonsense_is_ignored(loop_clock: LoopClock, rate: float) -> None:
    bucket = Bucket("op", rate=5, burst=20)
    bucket.follow_header(rate)
    assert bucket.rate == pytest.approx(5.0)


async def test_drain_makes_the_next_wait_a_full_interval(loop_clock: LoopClock) -> None:
    bucket = Bucket("op", rate=5, burst=20)
    await bucket.acquire()
    bucket.drain()
    waiter = spawn(bucket.acquire())
    await settle()
    assert not waiter[0].done()
    loop_clock.now = 0.2
    await settle()
    assert waiter[0].done()


def test_bucket_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="rate"):
        Bucket("op", rate=0, burst=1)
    with pytest.raises(ValueError, match="burst"):
        Bucket("op", rate=1, burst=0)


# --- plans ---------------------------------------------------------------------------


def test_published_plans() -> None:
    limits = RateLimits()
    assert len(ROUTES) == 17
    assert limits.plan(GET) == (20, 40)
    assert limits.plan("getServiceJobs") == (10, 40)
    assert limits.plan("getAppointmentSlots") == (20, 40)
    assert limits.plan(ASSIGN) == (1, 2)
    others = set(ROUTES) - {GET, "getServiceJobs", "getAppointmentSlots", ASSIGN}
    assert len(others) == 13
    assert {limits.plan(op) for op in others} == {(5, 20)}


def test_overrides() -> None:
    limits = RateLimits({ASSIGN: (10, 5)})
    assert limits.plan(ASSIGN) == (10.0, 5)
    assert limits.plan(GET) == (20, 40)
    with pytest.raises(ValueError, match="getAppointmentSlotsByJobId"):
        RateLimits({"getAppointmentSlotsByJobId": (1, 1)})  # Amazon spells it with "mm"
    with pytest.raises(ValueError, match="burst"):
        RateLimits({ASSIGN: (1, 0)})
    with pytest.raises(ValueError, match="rate"):
        RateLimits({ASSIGN: (-1, 2)})
    with pytest.raises(ValueError, match="burst"):
        RateLimits({ASSIGN: (1, 2.5)})  # type: ignore[dict-item]


# --- through the client --------------------------------------------------------------


async def test_client_paces_an_operation(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    sent = expect(mock_api, "PUT", payload={}, repeat=True)
    # The published plans, exact: assign is 1/s, burst 2 (the default's slow start is
    # tested in test_slow_start.py).
    client = make_client(rate_limits=RateLimits(adaptive=False))
    tasks = spawn(*(client.appointments.assign_resources("j", "a", ["t"]) for _ in range(4)))
    await settle()
    assert len(sent) == 2
    loop_clock.now = 0.99
    await settle()
    assert len(sent) == 2
    loop_clock.now = 1.0
    await settle()
    assert len(sent) == 3
    loop_clock.now = 2.0
    await settle()
    assert len(sent) == 4
    await results(tasks)


async def test_operations_have_separate_buckets(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    puts = expect(mock_api, "PUT", payload={}, repeat=True)
    gets = expect(mock_api, "GET", payload=JOB, repeat=True)
    client = make_client(rate_limits=RateLimits(adaptive=False))
    tasks = spawn(
        *(client.appointments.assign_resources("j", "a", ["t"]) for _ in range(3)),
        *(client.service_jobs.get("j") for _ in range(40)),
    )
    await settle()
    assert len(puts) == 2
    assert len(gets) == 38  # the burst of 40, less the headroom
    await finish(tasks)


async def test_rate_limit_header_slows_the_bucket(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    expect(mock_api, "GET", payload=JOB, headers={"x-amzn-RateLimit-Limit": "0.5"}, repeat=True)
    limits = RateLimits()
    client = make_client(rate_limits=limits)
    await client.service_jobs.get("job-1")
    bucket = limits.bucket(GET, client.plan_scope)
    assert bucket.rate == pytest.approx(0.5)
    assert bucket.burst == 40


async def test_429_drains_the_bucket_before_the_retry(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    queue = [CallbackResult(status=429, payload={}), CallbackResult(payload=JOB)]
    attempts: list[float] = []

    def callback(url: Any, **kwargs: Any) -> CallbackResult:
        attempts.append(loop_clock.now)
        return queue.pop(0)

    mock_api.add(API_PATTERN, method="GET", callback=callback, repeat=True)
    limits = RateLimits({GET: (5, 20)}, adaptive=False)
    # No back-off of its own (base_delay 0), so what the retry waits for is the bucket.
    client = make_client(rate_limits=limits, retry=RetryPolicy(max_retries=1, base_delay=0))
    task = spawn(client.service_jobs.get("job-1"))[0]
    await settle()
    assert attempts == [0.0]  # the retry waits for the emptied bucket
    loop_clock.now = 0.19
    await settle()
    assert attempts == [0.0]
    loop_clock.now = 0.2
    await settle()
    assert attempts == [0.0, 0.2]
    (job,) = await results([task])
    assert job.service_job_id == "job-1"


async def test_rate_limits_false_disables_the_limiter(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    sent = expect(mock_api, "PUT", payload={}, repeat=True)
    client = make_client(rate_limits=False)
    tasks = spawn(*(client.appointments.assign_resources("j", "a", ["t"]) for _ in range(50)))
    await settle()
    assert len(sent) == 50
    await results(tasks)


async def test_rate_limits_override_through_the_client(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    sent = expect(mock_api, "PUT", payload={}, repeat=True)
    client = make_client(rate_limits=RateLimits({ASSIGN: (10, 5)}, adaptive=False))
    tasks = spawn(*(client.appointments.assign_resources("j", "a", ["t"]) for _ in range(7)))
    await settle()
    assert len(sent) == 5
    loop_clock.now = 0.1
    await settle()
    assert len(sent) == 6
    await finish(tasks)


async def test_one_rate_limits_shared_by_two_clients(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    sent = expect(mock_api, "PUT", payload={}, repeat=True)
    shared = RateLimits(adaptive=False)
    first = make_client(rate_limits=shared)
    second = make_client(rate_limits=shared)
    await first.appointments.assign_resources("j", "a", ["t"])
    await second.appointments.assign_resources("j", "a", ["t"])
    late = spawn(first.appointments.assign_resources("j", "a", ["t"]))
    await settle()
    assert len(sent) == 2  # the shared burst of 2 is spent
    loop_clock.now = 1.0
    await settle()
    assert len(sent) == 3
    await results(late)


async def test_separate_clients_have_separate_buckets(
    mock_api: aioresponses, make_client: ClientFactory, loop_clock: LoopClock
) -> None:
    lwa_ok(mock_api)
    sent = expect(mock_api, "PUT", payload={}, repeat=True)
    first = make_client(rate_limits=RateLimits(adaptive=False))
    second = make_client(rate_limits=RateLimits(adaptive=False))
    tasks = spawn(
        *(first.appointments.assign_resources("j", "a", ["t"]) for _ in range(2)),
        *(second.appointments.assign_resources("j", "a", ["t"]) for _ in range(2)),
    )
    await settle()
    assert len(sent) == 4
    await results(tasks)


def test_rate_limits_argument_is_checked() -> None:
    with pytest.raises(TypeError, match="rate_limits"):
        ServicesClient(
            access_token_provider=_token,
            rate_limits={"x": (1, 1)},  # type: ignore[arg-type]
        )


async def _token() -> str:
    return "t"


def test_the_plan_scope_is_the_application_and_the_seller_never_a_secret(
    creds: LwaCredentials,
) -> None:
    plain = ServicesClient(creds, rate_limits=False)
    named = ServicesClient(creds, seller="A2SELLER", rate_limits=False)
    provided = ServicesClient(access_token_provider=_token, rate_limits=False)
    assert plain.plan_scope.startswith(creds.client_id + "/")
    assert creds.refresh_token not in plain.plan_scope
    assert named.plan_scope == f"{creds.client_id}/seller:A2SELLER"
    assert provided.plan_scope == "app/access-token-provider"
    other = ServicesClient(LwaCredentials(creds.client_id, "s", "Atzr|another"), rate_limits=False)
    assert other.plan_scope != plain.plan_scope  # another seller, another budget


async def _token() -> str:
    return "Atza|x"
