"""Cancelled calls leave the client whole: limiter, token, connections, paging.

A task can be cancelled anywhere: waiting for the rate limiter, waiting for the LWA token,
with its request on the wire, between two pages.  Each test cancels at one of those points
and then checks what must hold afterwards: ``CancelledError`` reaches the caller unwrapped,
a following call succeeds, the limiter's accounting is intact (a cancelled waiter takes no
capacity), and no connection is left checked out of the pool (``gc.collect()`` then turns
any unclosed resource into a ``ResourceWarning``, which the test configuration makes an
error).  ``asyncio.timeout`` around any call ends it with the caller's own
``TimeoutError``.  Waiting is counted on a fake loop clock, never measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from datetime import timedelta

import pytest

from spapi_services import RateLimits, SpApiError
from spapi_services.emulator import ServicesEmulator

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
