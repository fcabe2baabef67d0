"""End to end: clients that share nothing but Redis (as processes do) against the emulator,
which meters the published usage plan and counts token exchanges."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from _emulators import NOW, StartEmulator, emulators
from _servers import RedisServer

from spapi_services import (
    RateLimitError,
    RateLimits,
    RetryPolicy,
    ServicesClient,
    UsagePlan,
)
from spapi_services.emulator import ServicesEmulator
from spapi_services.redis import RedisRateLimits, RedisTokenCache

from ._helpers import records
from .test_tokens import assert_no_secret_in

GET_JOB = "getServiceJobByServiceJobId"  # 20/s, burst 40
PROCESSES = 3


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    async with emulators(jobs=5, seed=3, at=NOW) as start:
        yield start


class Process:
    """What one process holds: its own plan, token cache and client, sharing only Redis."""

    def __init__(self, emu: ServicesEmulator, url: str, **options: object) -> None:
        self.plan = RedisRateLimits(url, **options)  # type: ignore[arg-type]
        self.tokens = RedisTokenCache(url, **options)  # type: ignore[arg-type]
        self.client = client_of(emu, self.plan, self.tokens)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.plan.aclose()
        await self.tokens.aclose()


def client_of(
    emu: ServicesEmulator,
    plan: UsagePlan,
    tokens: RedisTokenCache | None = None,
    retry: RetryPolicy | None = None,
) -> ServicesClient:
    return ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        rate_limits=plan,
        token_cache=tokens,
        retry=retry,
    )


async def test_processes_sharing_redis_draw_no_429_and_exchange_one_token(
    start_emulator: StartEmulator, redis_url: str, inspect: redis.asyncio.Redis
) -> None:
    emu = await start_emulator()
    job_id = next(iter(emu.store.jobs))
    calls = 20  # 60 in all, against a burst of 40 refilled at 20/s

    # Each process with buckets of its own sends three times the plan: Amazon refuses.
    alone = [client_of(emu, RateLimits(), retry=RetryPolicy(max_retries=0)) for _ in range(3)]
    try:
        results = await asyncio.gather(
            *(c.service_jobs.get(job_id) for c in alone for _ in range(calls)),
            return_exceptions=True,
        )
    finally:
        for client in alone:
            await client.aclose()
    assert any(isinstance(r, RateLimitError) for r in results)
    assert emu.count(GET_JOB, 429) > 0

    emu.reset()
    exchanges_before = emu.lwa_exchanges
    processes = [Process(emu, redis_url) for _ in range(PROCESSES)]
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(p.client.service_jobs.get(job_id) for p in processes for _ in range(calls)),
                return_exceptions=True,
            ),
            60,
        )
    finally:
        for process in processes:
            await process.aclose()
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert emu.count(GET_JOB, 429) == 0
    assert emu.count(GET_JOB, 200) == PROCESSES * calls
    assert emu.lwa_exchanges - exchanges_before == 1
    await assert_no_secret_in(inspect, emu.credentials.refresh_token, emu.credentials.client_secret)


async def test_redis_killed_mid_run_and_restarted_loses_no_call(
    start_emulator: StartEmulator,
    own_server: RedisServer,
    redis_logs: pytest.LogCaptureFixture,
) -> None:
    emu = await start_emulator()
    job_id = next(iter(emu.store.jobs))
    calls = 30  # per process at least, one at a time
    processes = [Process(emu, own_server.url, retry_interval=0.1) for _ in range(2)]
    done = [0] * len(processes)
    reached = {15: asyncio.Event(), 35: asyncio.Event()}  # calls done in all
    restarted = asyncio.Event()

    async def work(process: Process, index: int) -> None:
        # Until this process has made its calls and is back on Redis after the restart.
        while done[index] < calls or not (restarted.is_set() and process.plan.shared):
            await process.client.service_jobs.get(job_id)
            done[index] += 1
            for total, event in reached.items():
                if sum(done) >= total:
                    event.set()

    async def outage() -> None:
        await reached[15].wait()
        await asyncio.to_thread(own_server.kill)
        await reached[35].wait()
        await asyncio.to_thread(own_server.start)
        restarted.set()

    try:
        for process in processes:  # each has its token before the run
            await process.client.service_jobs.get(job_id)
        await asyncio.wait_for(
            asyncio.gather(outage(), *(work(p, i) for i, p in enumerate(processes))), 60
        )
        key = processes[0].plan.key(processes[0].client.plan_scope, GET_JOB)
        assert own_server.call("EXISTS", key) == b":1"
    finally:
        for process in processes:
            await process.aclose()
    assert min(done) >= calls
    assert emu.count(GET_JOB, 200) == sum(done) + len(processes)  # none lost
    # One line per process for the outage and one for the return, not one per call.
    warnings = records(redis_logs, logging.WARNING)
    assert len(warnings) == 2
    assert all("usage plans fall back" in w.getMessage() for w in warnings)
    assert len(records(redis_logs, logging.INFO)) == 2
