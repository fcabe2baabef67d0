"""PostgresSink, synced with offset page tokens while the world moves: no job missing,
none stale, each job once per seller (a real PostgreSQL, the tests' own SQL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
from _emulators import NOW

from spapi_services import RetryPolicy, ServicesClient
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.sync import PostgresSink, sync_jobs

from ._moving import Churn, Mirror, check_mirror
from .conftest import SINCE, US
from .test_offset_tokens import ACTIVITY
from .test_postgres_sink import pool, postgres, schema

__all__ = ["pool", "postgres", "schema"]  # the fixtures, shared with the sink's own tests

SELLER = "A1MOVING"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def moving(clock: FakeClock) -> AsyncIterator[ServicesEmulator]:
    async with ServicesEmulator(
        jobs=400,
        seed=3,
        clock=clock,
        enforce_limits=False,
        page_tokens="offset",
        activity=ACTIVITY,
    ) as emu:
        yield emu


async def mirror(pool: asyncpg.Pool, schema: str) -> Mirror:
    rows = await pool.fetch(
        f"SELECT service_job_id, job FROM {schema}.service_jobs WHERE seller_id = $1", SELLER
    )
    return {row["service_job_id"]: json.loads(row["job"]) for row in rows}


async def test_a_postgres_mirror_synced_with_offset_tokens_while_jobs_move_is_complete(
    moving: ServicesEmulator, clock: FakeClock, pool: asyncpg.Pool, schema: str
) -> None:
    churn = Churn(moving, clock, step=1.0)
    early = NOW - timedelta(days=60)
    sink = PostgresSink(pool, seller_id=SELLER, schema=schema)
    async with ServicesClient(
        moving.credentials,
        endpoint=moving.url,
        token_url=moving.token_url,
        marketplace_id=US,
        retry=RetryPolicy(max_retries=0),
        rate_limits=False,
    ) as client:
        with churn.running():
            await sync_jobs(client, sink, since=SINCE, until=early, windows=2)
            started = clock.now()
            report = await sync_jobs(client, sink, until=started, windows=2)
        assert report.runs[0].mode == "updated"
        missing, stale = check_mirror(
            moving,
            await mirror(pool, schema),
            marketplace=US,
            created=(SINCE, started),
            unchanged_since=started,
            present_created_before=early,
        )
        assert (missing, stale) == ([], [])
        assert sum(j.last_updated > started for j in moving.store.jobs.values()) > 20

        final = await sync_jobs(client, sink, until=clock.now())
    assert final.repeated == 0
    stored = await mirror(pool, schema)
    missing, stale = check_mirror(
        moving, stored, marketplace=US, created=(SINCE, clock.now()), unchanged_since=clock.now()
    )
    assert (missing, stale) == ([], [])
    assert set(stored) == {
        j.service_job_id for j in moving.store.jobs.values() if j.marketplace_id == US
    }
    windows = await pool.fetchval(f"SELECT count(*) FROM {schema}.sync_windows")
    assert windows == 0
