"""Many calls, few connections: calls queue in order, never in aiohttp's pool.

aiohttp gives a connection that comes free to whichever request asks first.  Under
sustained load new requests keep overtaking the ones already waiting in its pool, so one
can wait until its timeout runs out without ever being sent (a thousand tasks over a
hundred connections showed waits of 30 s beside a median of 26 ms).  The SDK queues its
requests itself, first come first served, no more at a time than the pool holds: the
pool never has a waiter, and a call cancelled in the queue gives its place back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from spapi_services.emulator import ServicesEmulator

from .conftest import MakeClient, Wire, settle

GET = "getServiceJobByServiceJobId"


@pytest.fixture
async def pool() -> AsyncIterator[Wire]:
    watch = Wire(limit=5)
    yield watch
    await watch.session.close()


async def test_a_crowd_never_waits_in_the_pool(
    emu: ServicesEmulator, make_client: MakeClient, pool: Wire
) -> None:
    client = make_client(emu, session=pool.session)
    jobs = list(emu.store.jobs)
    emu.faults.set(GET, latency=0.01)

    async def keep_calling(n: int) -> int:
        done = 0
        for i in range(5):
            await client.service_jobs.get(jobs[(n + i) % len(jobs)])
            done += 1
        return done

    done = await asyncio.gather(*(keep_calling(n) for n in range(200)))
    assert sum(done) == 1000
    assert pool.queued == 0  # without the SDK's queue: most of the 1,000
    assert pool.connections_made <= 5


async def test_a_call_cancelled_in_the_queue_gives_its_place_back(
    emu: ServicesEmulator, make_client: MakeClient, pool: Wire
) -> None:
    client = make_client(emu, session=pool.session)
    job = next(iter(emu.store.jobs))
    await client.service_jobs.get(job)  # the token
    emu.faults.set(GET, latency=0.3, count=5)
    busy = [asyncio.create_task(client.service_jobs.get(job)) for _ in range(5)]
    await settle(lambda: pool.sent[f"/service/v1/serviceJobs/{job}"] == 6)
    waiting = [asyncio.create_task(client.service_jobs.get(job)) for _ in range(4)]
    await asyncio.sleep(0)
    waiting[1].cancel()
    results = await asyncio.gather(*busy, *waiting, return_exceptions=True)
    assert isinstance(results[6], asyncio.CancelledError)
    assert sum(1 for r in results if not isinstance(r, BaseException)) == 8
    # Every place is free again: five at once go straight through.
    await asyncio.gather(*(client.service_jobs.get(job) for _ in range(5)))
    assert pool.queued == 0
    assert pool.in_use == 0
    assert emu.count(GET) == 1 + 5 + 3 + 5


async def test_a_session_without_a_limit_has_no_queue(
    emu: ServicesEmulator, make_client: MakeClient
) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        client = make_client(emu, session=session)
        job = next(iter(emu.store.jobs))
        assert len(await asyncio.gather(*(client.service_jobs.get(job) for _ in range(50)))) == 50
