"""Cancelled calls leave the client whole: limiter, token, connections, paging.

A task can be cancelled anywhere: waiting for the rate limiter, waiting for the LWA token,
with its request on the wire, between two pages.  Each test cancels at one of those points
and then checks what must hold afterwards: ``CancelledError`` reaches the caller unwrapped,
a following call succeeds, the limiter's accounting is intact (a cancelled waiter takes no
capacity), and no connection is left checked out of the pool (``gc.collect()`` then turns
any unclosed resource into a ``ResourceWarning``, which the test configuration makes an
error).  ``asyncio.timeout`` around any call ends it with the caller's own
``TimeoutError``.  Waiting is counted on a fake loop clock, never measured.

The second half goes through every await on the path of a call, one at a time, with each
kind of usage plan (exact, adaptive, a reserving one in memory, Redis), and stops the call
exactly there three ways (``task.cancel()``, ``asyncio.timeout``, ``asyncio.wait_for``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from datetime import timedelta
from typing import Any

import attrs
import pytest
from _servers import RedisServer, running
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from spapi_services import (
    LwaCredentials,
    MemoryTokenCache,
    RateLimits,
    RawResponse,
    ReservingPlan,
    RetryPolicy,
    ServicesClient,
    SpApiError,
    TokenReservation,
    UsagePlan,
)
from spapi_services._queue import RequestQueue
from spapi_services.emulator import ServicesEmulator
from spapi_services.redis import RedisRateLimits

from ._scenarios import NOW, SCENARIOS, US
from .conftest import LoopClock, MakeClient, Wire, settle, turns

GET = "getServiceJobByServiceJobId"
LIST = "getServiceJobs"
LIST_PATH = "/service/v1/serviceJobs"


def _job(emu: ServicesEmulator) -> str:
    return next(iter(emu.store.jobs))


async def _settled(wire: Wire) -> None:
    """Every connection back in the pool or closed, and nothing left to collect."""
    await settle(lambda: wire.in_use == 0)
    gc.collect()


async def test_a_waiter_cancelled_at_the_limiter_takes_no_capacity(
    emu: ServicesEmulator, make_client: MakeClient, wire: Wire
) -> None:
    emu.limits.set(GET, rate=1.0, burst=1)  # the rate header then agrees with ours
    client = make_client(
        emu, session=wire.session, rate_limits=RateLimits({GET: (1.0, 1)}, headroom=0)
    )
    job = _job(emu)
    with LoopClock() as clock:
        await client.service_jobs.get(job)  # the bucket's one token is taken
        first, cancelled, last = (
            asyncio.create_task(client.service_jobs.get(job)) for _ in range(3)
        )
        await turns()
        assert not any(t.done() for t in (first, cancelled, last))  # all at the limiter
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled

        clock.advance(1.0)  # one refill: one request
        await settle(first.done)
        await turns()
        assert not last.done()
        clock.advance(1.0)  # the next refill goes to the last waiter, not to a ghost
        await settle(last.done)
        await first
        await last
    assert wire.attempts[f"/service/v1/serviceJobs/{job}"] == 3
    assert emu.count(GET) == 3
    await _settled(wire)


async def test_cancelled_while_another_task_exchanges_the_token(
    emu: ServicesEmulator, make_client: MakeClient, wire: Wire
) -> None:
    emu.faults.set("token", latency=0.5, count=1)  # the first exchange is slow
    client = make_client(emu, session=wire.session)
    job = _job(emu)
    exchanging = asyncio.create_task(client.service_jobs.get(job))
    queued = asyncio.create_task(client.service_jobs.get(job))
    await settle(lambda: wire.sent["/auth/o2/token"] == 1)
    exchanging.cancel()
    with pytest.raises(asyncio.CancelledError):
        await exchanging
    # The queued call was not cancelled with it: it exchanges the token itself.
    assert (await queued).service_job_id == job
    assert (await client.service_jobs.get(job)).service_job_id == job  # cached now
    assert wire.attempts["/auth/o2/token"] == 2
    assert emu.count(GET) == 2
    await _settled(wire)


async def test_cancelled_alone_while_exchanging_the_token(
    emu: ServicesEmulator, make_client: MakeClient, wire: Wire
) -> None:
    emu.faults.set("token", latency=0.5, count=1)
    client = make_client(emu, session=wire.session)
    call = asyncio.create_task(client.service_jobs.get(_job(emu)))
    await settle(lambda: wire.sent["/auth/o2/token"] == 1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await client.service_jobs.get(_job(emu))  # no failure was cached
    await _settled(wire)


@pytest.mark.parametrize("operation", [GET, "createReservation", "updateSchedule"])
async def test_cancelled_with_the_request_on_the_wire(
    operation: str, emu: ServicesEmulator, make_client: MakeClient, wire: Wire
) -> None:
    scenario = SCENARIOS[operation]
    client = make_client(emu, session=wire.session)
    await client.service_jobs.get(_job(emu))  # a warm connection, to be spoiled
    emu.faults.set(operation, latency=0.5)
    call = asyncio.create_task(scenario.call(client, scenario.prepare(emu)))
    await settle(lambda: sum(wire.sent.values()) == 2)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert wire.in_use == 0  # the half-used connection was closed, not pooled
    emu.faults.clear()
    await scenario.call(client, scenario.prepare(emu))
    await _settled(wire)


async def test_cancelled_between_pages_then_resumed(
    emu: ServicesEmulator, make_client: MakeClient, wire: Wire
) -> None:
    client = make_client(emu, session=wire.session)
    since = NOW - timedelta(days=3650)
    everything = [j.service_job_id async for j in client.service_jobs.list(created_after=since)]
    assert len(everything) > 10

    paginator = client.service_jobs.list(created_after=since, page_size=5)
    seen: list[str] = []

    async def read() -> None:
        async for job in paginator:
            seen.append(job.service_job_id)
            if len(seen) == 5:  # the first page is read: hold up the second
                emu.faults.set(LIST, latency=0.5, count=1)

    before = wire.sent[LIST_PATH]
    reading = asyncio.create_task(read())
    await settle(lambda: wire.sent[LIST_PATH] == before + 2)  # the second page is asked for
    reading.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reading
    assert seen == everything[:5]
    assert paginator.next_page_token is not None
    await settle(lambda: wire.in_use == 0)

    # The paginator says where it stopped: resuming there reads the rest, nothing twice.
    rest = client.service_jobs.list(
        created_after=since, page_size=5, page_token=paginator.next_page_token
    )
    assert seen + [j.service_job_id async for j in rest] == everything
    await _settled(wire)


async def test_breaking_out_of_a_page_holds_no_connection(
    emu: ServicesEmulator, make_client: MakeClient, wire: Wire
) -> None:
    client = make_client(emu, session=wire.session)
    paginator = client.service_jobs.list(created_after=NOW - timedelta(days=3650), page_size=5)
    async with contextlib.aclosing(paginator.jobs()) as jobs:
        async for _ in jobs:
            assert wire.in_use == 0  # the page was read whole before its first job
            break
    async for _ in paginator:  # and without aclosing: nothing is held across a yield
        break
    assert wire.in_use == 0
    await _settled(wire)


async def test_asyncio_timeout_around_every_operation(
    emu: ServicesEmulator, make_client: MakeClient, wire: Wire
) -> None:
    client = make_client(emu, session=wire.session)
    states = {op: scenario.prepare(emu) for op, scenario in SCENARIOS.items()}
    await client.service_jobs.get(_job(emu))
    emu.faults.set("*", latency=0.5)
    for operation, scenario in SCENARIOS.items():
        with pytest.raises(TimeoutError) as caught:
            async with asyncio.timeout(0.05):
                await scenario.call(client, states[operation])
        assert not isinstance(caught.value, SpApiError), operation  # the caller's, unwrapped
    assert sum(wire.sent.values()) >= len(SCENARIOS)  # each one was on the wire
    emu.faults.clear()
    assert (await client.appointments.slots_for_job(_job(emu), marketplace_id=US)) is not None
    await _settled(wire)


# --- every await of a call, cancelled exactly there -----------------------------------
#
# The pipeline is driven by fakes that stop at a chosen await: a sender (the token
# exchange, the request queue, the wire), a usage plan (asking, passing a rate on, a 429)
# and a timer (a wait for the plan, a back-off).  The loop's clock is a LoopClock: time
# moves only when the fake timer sleeps or the test says, so nothing is timed.  Each case
# brings one call to one await (for the waits on a lock, the token cache's, a lane or the
# queue, other calls hold what it waits for), cancels it there (task.cancel(), an
# asyncio.timeout or a wait_for around it), and then checks that the request queue has
# every place free, no lane or token lock is held, no task is left, and the next call
# goes out.

CANCEL_OP = "getServiceJobByServiceJobId"
CANCEL_API = "https://api.test"
CANCEL_TOKEN_URL = "https://auth.test/o2/token"
CANCEL_CREDS = LwaCredentials(
    "amzn1.application-oa2-client.test", "amzn1.oa2-cs.v1.SECRET", "Atzr|REFRESH"
)
QUEUE_SIZE = 2
#: Every plan under test: 20 a second, a burst of 2 (the fakes' sleeps cost nothing).
CANCEL_PLAN = {CANCEL_OP: (20.0, 2)}
USER_TIMEOUT = 10.0  # a caller's own timeout, well inside the call's deadline of 30 s


class Gate:
    """Where the fakes stop: a call reaching an armed label waits there until released."""

    def __init__(self) -> None:
        self._armed: dict[str, asyncio.Event] = {}
        self.waiting: Counter[str] = Counter()

    def arm(self, label: str) -> None:
        self._armed[label] = asyncio.Event()

    def release(self, label: str) -> None:
        self._armed.pop(label).set()

    def open(self) -> None:
        for label in list(self._armed):
            self.release(label)

    async def at(self, label: str) -> None:
        opener = self._armed.get(label)
        if opener is None:
            return  # not armed: no await at all, as the real part would have none
        self.waiting[label] += 1
        try:
            await opener.wait()
        finally:
            self.waiting[label] -= 1


class GatedApi:
    """The API and LWA behind the sender seam, and the request queue of its "pool"."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.queue = RequestQueue(QUEUE_SIZE)
        self.script: list[tuple[int, Any]] = []  # the next answers, then 200s
        self.rate = "20"  # x-amzn-RateLimit-Limit of every answer
        self.sent = 0

    async def request_queue(self) -> RequestQueue:
        await self.gate.at("request queue")
        return self.queue

    async def __call__(
        self, method: str, url: URL, headers: Mapping[str, str], body: bytes | None, _: float
    ) -> RawResponse:
        if str(url) == CANCEL_TOKEN_URL:
            await self.gate.at("exchange")
            return _raw(200, {"access_token": "Atza|token", "expires_in": 3600})
        await self.gate.at("send")
        self.sent += 1
        status, data = self.script.pop(0) if self.script else (200, None)
        if data is None:
            job = url.path.rsplit("/", 1)[-1]
            data = {"payload": {"serviceJobId": job, "serviceJobStatus": "NOT_SERVICED"}}
        return _raw(status, data, rate=self.rate)


def _raw(status: int, data: Any, rate: str | None = None) -> RawResponse:
    headers = CIMultiDict({"x-amzn-RequestId": "req"})
    if rate is not None:
        headers["x-amzn-RateLimit-Limit"] = rate
    return RawResponse(status, CIMultiDictProxy(headers), json.dumps(data).encode())


class GatedTimer:
    """The pipeline's timer on the LoopClock: a sleep stops at the gate, then moves time."""

    def __init__(self, gate: Gate, clock: LoopClock) -> None:
        self.gate = gate
        self.clock = clock

    def now(self) -> float:
        return self.clock.now

    async def sleep(self, seconds: float) -> None:
        await self.gate.at("sleep")
        self.clock.advance(seconds)
        await asyncio.sleep(0)


class GatedPlan:
    """A usage plan that stops at the gate before each question to the plan it wraps."""

    def __init__(self, inner: UsagePlan, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate
        self.rates_taken: list[float] = []

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        await self.gate.at("plan")
        return await self.inner.try_acquire(scope, operation_id)

    async def update_rate(self, scope: str, operation_id: str, rate: float) -> None:
        await self.gate.at("update rate")
        await self.inner.update_rate(scope, operation_id, rate)
        self.rates_taken.append(rate)

    async def throttled(self, scope: str, operation_id: str) -> None:
        await self.gate.at("throttled")
        await self.inner.throttled(scope, operation_id)


class GatedReservingPlan(GatedPlan):
    """The same for a reserving plan: a wrapper declares what the plan it wraps can do."""

    inner: ReservingPlan

    async def reserve(
        self, scope: str, operation_id: str, *, max_wait: float | None
    ) -> TokenReservation:
        await self.gate.at("plan")
        return await self.inner.reserve(scope, operation_id, max_wait=max_wait)


class MemoryReservingPlan:
    """A reserving plan in memory: the Redis plan's GCRA, on the loop's clock."""

    def __init__(self, rate: float, capacity: int) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tat: dict[tuple[str, str], float] = {}

    async def reserve(
        self, scope: str, operation_id: str, *, max_wait: float | None
    ) -> TokenReservation:
        now = asyncio.get_running_loop().time()
        interval = 1 / self.rate
        tat = max(self.tat.get((scope, operation_id), now), now)
        due = tat - now - (self.capacity - 1) * interval
        due = due if due > 1e-9 else 0.0  # not a rounding error's worth of sleep
        if max_wait is not None and due > max_wait:
            return TokenReservation(False, due)
        self.tat[scope, operation_id] = tat + interval
        return TokenReservation(True, due)

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        reserved, due = await self.reserve(scope, operation_id, max_wait=0.0)
        return 0.0 if reserved else due

    async def update_rate(self, scope: str, operation_id: str, rate: float) -> None:
        self.rate = rate

    async def throttled(self, scope: str, operation_id: str) -> None:
        now = asyncio.get_running_loop().time()
        key = (scope, operation_id)
        self.tat[key] = max(self.tat.get(key, now), now + self.capacity / self.rate)


@pytest.fixture(scope="module")
def cancel_redis() -> Iterator[RedisServer]:
    with running(RedisServer) as server:
        yield server


@attrs.define
class Scene:
    """One case's world: the fakes, the plan, the call's client and another seller's."""

    gate: Gate
    api: GatedApi
    clock: LoopClock
    plan: GatedPlan
    client: ServicesClient
    other: ServicesClient  # another seller on the same session: its own bucket, same queue
    blockers: list[asyncio.Task[Any]] = attrs.Factory(list)

    def call(self) -> Coroutine[Any, Any, Any]:
        return self.client.service_jobs.get("job-1")

    def block(self, client: ServicesClient, label: str, n: int = 1) -> None:
        self.gate.arm(label)
        self.blockers += [asyncio.create_task(client.service_jobs.get("held")) for _ in range(n)]

    async def held(self, label: str, n: int = 1) -> None:
        await settle(lambda: self.gate.waiting[label] == n)


async def _drain_bucket(scene: Scene) -> None:
    """Empty the call's bucket, so that its token is due one interval on."""
    await scene.plan.inner.throttled(scene.client.plan_scope, CANCEL_OP)


# Each stage: how a call is brought to one await, and whether that needs a fresh client
# (the awaits of a client's first call).  The call is started after ``setup``; ``reach``
# returns once it waits at the stage.


async def _nothing(scene: Scene) -> None:
    pass


async def _waits(scene: Scene, label: str) -> None:
    await scene.held(label)


async def _behind_others(scene: Scene) -> None:
    await turns()  # waiting on a lock the blockers hold: nothing to see but that it waits


async def _queue_after_sleep(scene: Scene) -> None:
    await scene.held("sleep")  # its token reserved, its place given back
    scene.block(scene.other, "send", QUEUE_SIZE)  # every place taken meanwhile
    await scene.held("send", QUEUE_SIZE)
    scene.gate.release("sleep")
    await turns()
    assert scene.api.queue.in_flight == QUEUE_SIZE  # it waits for a place again


@attrs.frozen
class Stage:
    name: str
    setup: Callable[[Scene], Awaitable[None]] = _nothing
    reach: Callable[[Scene], Awaitable[None]] = _behind_others
    fresh: bool = False
    plans: frozenset[str] = frozenset({"exact", "adaptive", "reserving", "redis"})


def _arm(label: str, *script: tuple[int, Any], rate: str | None = None) -> Any:
    async def setup(scene: Scene) -> None:
        scene.api.script[:] = script
        if rate is not None:
            scene.api.rate = rate
        scene.gate.arm(label)

    return setup


def _at(label: str) -> Any:
    return lambda scene: _waits(scene, label)


async def _another_exchanging(scene: Scene) -> None:
    scene.block(scene.client, "exchange")
    await scene.held("exchange")


async def _another_asking(scene: Scene) -> None:
    scene.block(scene.client, "plan")
    await scene.held("plan")


async def _queue_full(scene: Scene) -> None:
    scene.block(scene.other, "send", QUEUE_SIZE)
    await scene.held("send", QUEUE_SIZE)


async def _sleep_armed_empty(scene: Scene) -> None:
    await _drain_bucket(scene)
    scene.gate.arm("sleep")


_TOKEN_REFUSED = {"errors": [{"code": "Unauthorized", "message": "The access token expired"}]}

STAGES = [
    Stage("making the request queue", _arm("request queue"), _at("request queue"), fresh=True),
    Stage("exchanging the token", _arm("exchange"), _at("exchange"), fresh=True),
    Stage("behind another call's token exchange", _another_exchanging, fresh=True),
    Stage("in its operation's lane", _another_asking, plans=frozenset({"exact", "adaptive"})),
    Stage("in the request queue", _queue_full),
    Stage("asking the plan for its token", _arm("plan"), _at("plan")),
    Stage("sleeping until its token is due", _sleep_armed_empty, _at("sleep")),
    Stage(
        "in the request queue after its reserved token's sleep",
        _sleep_armed_empty,
        _queue_after_sleep,
        plans=frozenset({"reserving", "redis"}),
    ),
    Stage("on the wire", _arm("send"), _at("send")),
    Stage("passing a new rate to the plan", _arm("update rate", rate="7.5"), _at("update rate")),
    Stage("emptying the bucket after a 429", _arm("throttled", (429, {})), _at("throttled")),
    Stage("backing off before a retry", _arm("sleep", (503, {})), _at("sleep")),
    Stage(
        "exchanging a new token after a 403",
        _arm("exchange", (403, _TOKEN_REFUSED)),
        _at("exchange"),
    ),
]

WAYS = ["task.cancel", "asyncio.timeout", "asyncio.wait_for"]


def _cases() -> list[Any]:
    return [
        pytest.param(stage, plan, way, id=f"{stage.name}-{plan}-{way}")
        for stage in STAGES
        for plan in ("exact", "adaptive", "reserving", "redis")
        if plan in stage.plans
        for way in WAYS
    ]


def _plan(kind: str, gate: Gate, request: pytest.FixtureRequest) -> GatedPlan:
    if kind == "exact":
        return GatedPlan(RateLimits(CANCEL_PLAN, headroom=0, adaptive=False), gate)
    if kind == "adaptive":
        return GatedPlan(RateLimits(CANCEL_PLAN, headroom=0, slow_start=False), gate)
    if kind == "reserving":
        return GatedReservingPlan(MemoryReservingPlan(*CANCEL_PLAN[CANCEL_OP]), gate)
    server: RedisServer = request.getfixturevalue("cancel_redis")
    assert server.call("FLUSHALL") == b"+OK"
    return GatedReservingPlan(RedisRateLimits(server.url, overrides=CANCEL_PLAN, headroom=0), gate)


def _client(api: GatedApi, timer: GatedTimer, plan: UsagePlan, seller: str) -> ServicesClient:
    return ServicesClient(
        CANCEL_CREDS,
        endpoint=CANCEL_API,
        token_url=CANCEL_TOKEN_URL,
        sender=api,
        timer=timer,
        rate_limits=plan,
        retry=RetryPolicy(max_retries=3, base_delay=0.1),
        deadline=30.0,
        seller=seller,
    )


def _started(way: str, call: Callable[[], Awaitable[Any]]) -> asyncio.Task[Any]:
    """The call in a task of its own, bare or inside the caller's own timeout."""
    if way == "task.cancel":
        return asyncio.create_task(call())
    if way == "asyncio.wait_for":
        return asyncio.create_task(asyncio.wait_for(call(), USER_TIMEOUT))

    async def within() -> Any:
        async with asyncio.timeout(USER_TIMEOUT):
            return await call()

    return asyncio.create_task(within())


async def _stopped(way: str, task: asyncio.Task[Any], clock: LoopClock) -> None:
    """Stop the call ``way`` and check it ended as the caller expects."""
    if way == "task.cancel":
        task.cancel()
    else:
        clock.advance(USER_TIMEOUT + 1)  # the caller's timeout comes, not the call's deadline
    # A cancellation neither wrapped nor swallowed; the caller's own TimeoutError, never
    # one of ours (an ApiTimeoutError is a TimeoutError too: hence the exact type).
    expected = asyncio.CancelledError if way == "task.cancel" else TimeoutError
    with pytest.raises(expected) as ended:
        await task
    assert type(ended.value) is expected
    assert task.cancelled() == (way == "task.cancel")


async def _finished(task: asyncio.Task[Any], clock: LoopClock, seconds: float = 10.0) -> Any:
    """The task's result once done; the clock is moved on only if it is stuck."""
    started = time.monotonic()
    while not task.done():
        await turns(20)
        if time.monotonic() - started > 1.0:
            clock.advance(5.0)  # stuck: let its deadline say where
        assert time.monotonic() - started < seconds, "the call never ended"
    return task.result()


@pytest.mark.parametrize(("stage", "kind", "way"), _cases())
async def test_a_call_cancelled_at_any_await_leaves_nothing_behind(
    stage: Stage, kind: str, way: str, request: pytest.FixtureRequest
) -> None:
    gate = Gate()
    api = GatedApi(gate)
    plan = _plan(kind, gate, request)
    with LoopClock() as clock:
        timer = GatedTimer(gate, clock)
        scene = Scene(
            gate,
            api,
            clock,
            plan,
            client=_client(api, timer, plan, "A1SELLER"),
            other=_client(api, timer, plan, "A2SELLER"),
        )
        try:
            await _cancelled_then_next(scene, stage, way)
        finally:
            gate.open()
            for blocker in scene.blockers:
                blocker.cancel()
            await scene.client.aclose()
            await scene.other.aclose()
            if isinstance(plan.inner, RedisRateLimits):
                await plan.inner.aclose()


async def _cancelled_then_next(scene: Scene, stage: Stage, way: str) -> None:
    client, api, plan = scene.client, scene.api, scene.plan
    if not stage.fresh:
        await client.service_jobs.get("warm")  # its token, its queue, its rate
    await stage.setup(scene)
    task = _started(way, scene.call)
    await stage.reach(scene)
    assert not task.done(), f"the call did not stop {stage.name}"
    await _stopped(way, task, scene.clock)

    scene.gate.open()
    await asyncio.gather(*scene.blockers)  # the calls it waited behind still go
    _assert_nothing_held(client, api)
    sent = api.sent
    job = await _finished(asyncio.create_task(scene.call()), scene.clock)
    assert job.service_job_id == "job-1"
    assert api.sent == sent + 1
    _assert_nothing_held(client, api)
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current and not t.done()] == []
    if stage.name == "passing a new rate to the plan":
        assert plan.rates_taken[-1] == 7.5  # passed on again by the next answer
    if isinstance(plan.inner, RedisRateLimits):
        assert plan.inner.shared  # nothing cancelled marked Redis down


def _assert_nothing_held(client: ServicesClient, api: GatedApi) -> None:
    assert api.queue.in_flight == 0
    assert api.queue.has_room()
    transport = client._core.transport
    for operation, lane in transport._lanes.items():
        assert lane.users == 0, operation
        assert not lane.lock.locked(), operation
    cache = transport.tokens._cache
    assert isinstance(cache, MemoryTokenCache)
    assert not any(lock.locked() for lock in cache._locks.values())
