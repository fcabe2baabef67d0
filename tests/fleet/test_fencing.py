"""Fencing: a sync that lost its seller (paused, or cut off from Redis, past its lease)
can no longer write anything of it, and the sync that took over keeps every row and
its checkpoint.

The issue's scenario 1 is reproduced whole: a worker whose link to Redis goes silent
(a proxy that stops forwarding, sockets open) loses its lease by the monotonic clock and
is cancelled; another worker takes the seller; and the stranded worker's writes, had it
gone on, are refused by PostgreSQL.
"""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from _proxy import Proxy
from _servers import PostgresServer, RedisServer
from redis.asyncio import Redis

from spapi_services import FencedOut, ServicesClient
from spapi_services import sync as sync_package
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.fleet import Fleet, MemorySellerDirectory, Seller, SellerRun
from spapi_services.fleet._status import StatusBook
from spapi_services.models.jobs import ServiceJob
from spapi_services.sync import Mode, PostgresSink, SyncPlan, sync_jobs
from spapi_services.sync._postgres import MIRROR_MIGRATIONS, connect_pool, migrate
from spapi_services.sync._sink import job_record

from .conftest import HISTORY, eventually, world_reference

US = "ATVPDKIKX0DER"
ALL = [m.marketplace_id for m in MARKETPLACES]


@pytest.fixture
async def pool(postgres: PostgresServer, names: dict[str, str]) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(postgres.dsn, min_size=1, max_size=4) as p:
        await migrate(p, names["schema"], "mirror", MIRROR_MIGRATIONS)
        yield p


def credentials_of(emu: ServicesEmulator, index: int) -> Any:
    from spapi_services import LwaCredentials

    return LwaCredentials(
        emu.credentials.client_id, emu.credentials.client_secret, emu.sellers[index].refresh_token
    )


def stale(job: ServiceJob) -> ServiceJob:
    """The job as an older sync would have seen it (another status)."""
    from spapi_services import _serde

    record = {**job_record(job), "serviceJobStatus": "NOT_SERVICED"}
    return _serde.structure(record, ServiceJob)


async def rows(pool: asyncpg.Pool, schema: str, seller: str) -> dict[str, str]:
    found = await pool.fetch(
        f"SELECT service_job_id, status FROM {schema}.service_jobs WHERE seller_id = $1", seller
    )
    return {r[0]: r[1] for r in found}


async def checkpoint(pool: asyncpg.Pool, schema: str, seller: str) -> datetime | None:
    value: datetime | None = await pool.fetchval(
        f"SELECT synced_until FROM {schema}.sync_checkpoints WHERE seller_id = $1 AND scope = $2",
        seller,
        US,
    )
    return value


# --- the sink -----------------------------------------------------------------------------


async def test_a_stale_sink_is_refused_and_the_newer_syncs_rows_and_checkpoint_stand(
    emulator: ServicesEmulator, pool: asyncpg.Pool, names: dict[str, str]
) -> None:
    schema, seller = names["schema"], "S0"
    async with ServicesClient(
        credentials_of(emulator, 0),
        endpoint=emulator.url,
        token_url=emulator.token_url,
        marketplace_id=US,
    ) as client:
        # The first holder starts a run and stores its first page...
        first = PostgresSink(pool, seller_id=seller, schema=schema)
        assert await first.take_fencing_token() == 1
        end = datetime.now(UTC)
        plan = SyncPlan.new(scope=US, mode=Mode.CREATED, start=end - HISTORY, end=end, windows=1)
        page = await client.service_jobs.list_page(
            marketplace_id=US,
            page_size=20,
            created_after=plan.start,
            created_before=plan.end,
        )
        async with first:
            await first.begin(plan)
            window = plan.windows[0]
            assert await first.write_page(plan, window, page.jobs or (), page.next_page_token)
            window.pages, window.jobs = 1, len(page.jobs or ())

        # ...then is paused; another takes the seller over and syncs it whole.
        second = PostgresSink(pool, seller_id=seller, schema=schema)
        assert await second.take_fencing_token() == 2
        report = await sync_jobs(client, second, marketplace_ids=[US])
        assert report.resumed  # it finished the first holder's run from its checkpoint
        mirrored = await rows(pool, schema, seller)
        assert len(mirrored) == len([j for j in emulator.sellers[0].store.jobs.values()
                                     if j.marketplace_id == US])  # fmt: skip
        done = await checkpoint(pool, schema, seller)
        assert done is not None

        # The first wakes up and writes what it fetched before its pause: refused.
        async with first:
            with pytest.raises(FencedOut) as refused:
                await first.write_page(plan, window, [stale(j) for j in page.jobs or ()], None)
            with pytest.raises(FencedOut):
                await first.finish(plan)
            with pytest.raises(FencedOut):
                await first.begin(plan)
    assert (refused.value.seller_id, refused.value.token, refused.value.current_token) == (
        seller,
        1,
        2,
    )
    assert "token 1" in str(refused.value)
    assert "token 2" in str(refused.value)
    # Nothing of the refused transactions landed: rows, checkpoint and runs are the second's.
    assert await rows(pool, schema, seller) == mirrored
    assert await checkpoint(pool, schema, seller) == done
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.sync_runs") == 0


async def test_a_token_cannot_be_issued_between_a_fenced_check_and_its_commit(
    emulator: ServicesEmulator, pool: asyncpg.Pool, names: dict[str, str], postgres: PostgresServer
) -> None:
    schema, seller = names["schema"], "S1"
    sink = PostgresSink(pool, seller_id=seller, schema=schema)
    await sink.take_fencing_token()
    end = datetime.now(UTC)
    plan = SyncPlan.new(scope=US, mode=Mode.CREATED, start=end - HISTORY, end=end, windows=1)
    async with sink:
        await sink.begin(plan)
    # A fenced write's transaction is open (its check done, not committed)...
    conn = await asyncpg.connect(postgres.dsn)
    other = await asyncpg.connect(postgres.dsn)
    try:
        transaction = conn.transaction()
        await transaction.start()
        status = await conn.execute(sink._progress, seller, 1, US, 0, "t", False, 1, 0, None)
        assert status == "UPDATE 1"
        # ...so a new holder's token waits for it, instead of slipping in before the commit.
        bump = asyncio.create_task(other.fetchval(
            f"INSERT INTO {schema}.sync_fences AS f (seller_id, token) VALUES ($1, 1)"
            " ON CONFLICT (seller_id) DO UPDATE SET token = f.token + 1 RETURNING token",
            seller,
        ))  # fmt: skip
        done, _ = await asyncio.wait([bump], timeout=0.5)
        assert not done
        await transaction.commit()
        assert await bump == 2
    finally:
        await conn.close()
        await other.close()
    async with sink:
        with pytest.raises(FencedOut):
            await sink.write_page(plan, plan.windows[0], [], None)


def test_fenced_out_says_who_and_which_tokens_and_survives_pickling() -> None:
    error = FencedOut("A1SELLER", 4, 7)
    assert error.seller_id == "A1SELLER"
    assert (error.token, error.current_token) == (4, 7)
    again = pickle.loads(pickle.dumps(error))
    assert (again.seller_id, again.token, again.current_token, str(again)) == (
        "A1SELLER",
        4,
        7,
        str(error),
    )
    assert sync_package.FencedOut is FencedOut
    assert not isinstance(error, sync_package.BuyerKeyError)


def test_bad_fencing_options_are_refused_naming_them() -> None:
    with pytest.raises(TypeError, match="fencing_token"):
        PostgresSink("postgresql://x@127.0.0.1/x", seller_id="S", fencing_token="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reconnect_timeout"):
        PostgresSink("postgresql://x@127.0.0.1/x", seller_id="S", reconnect_timeout=-1)


async def test_status_writes_of_a_run_taken_over_are_refused(
    postgres: PostgresServer, names: dict[str, str]
) -> None:
    pool = await connect_pool(postgres.dsn, max_size=2)
    try:
        from spapi_services.fleet._schema import migrate_all

        await migrate_all(pool, names["schema"])
        book = StatusBook(pool, names["schema"])
        old = await book.started("S7", "host:1")
        new = await book.started("S7", "host:2")
        assert new == old + 1
        assert not await book.succeeded("S7", old, jobs=5, requests=1, throttled=0)
        assert not await book.failed("S7", old, "boom")
        assert not await book.interrupted("S7", old)
        (status,) = await book.read(["S7"])
        assert (status.state, status.worker, status.fencing_token, status.runs) == (
            "running",
            "host:2",
            new,
            0,
        )
        assert await book.succeeded("S7", new, jobs=5, requests=1, throttled=0)
        (status,) = await book.read(["S7"])
        assert (status.state, status.jobs, status.runs) == ("ok", 5, 1)
    finally:
        await pool.close()


# --- the scenario 1, whole -----------------------------------------------------------


@pytest.fixture
async def silent_link(redis_server: RedisServer) -> AsyncIterator[Proxy]:
    async with Proxy(redis_server.port) as proxy:
        yield proxy


@pytest.fixture
async def slow_world() -> AsyncIterator[ServicesEmulator]:
    """One seller with enough pages that a sync is still running when its link goes."""
    async with ServicesEmulator(
        jobs=300, seed=8, sellers=1, enforce_limits=False, reference_time=world_reference()
    ) as emu:
        yield emu


async def test_a_worker_whose_redis_link_goes_silent_is_stopped_and_fenced_out(
    slow_world: ServicesEmulator,
    fleet_options: Callable[..., dict[str, Any]],
    silent_link: Proxy,
    redis_server: RedisServer,
    postgres: PostgresServer,
    names: dict[str, str],
) -> None:
    emulator = slow_world
    sellers = [
        Seller(seller_id=f"S{s.index}", refresh_token=s.refresh_token, marketplace_ids=ALL)
        for s in emulator.sellers
    ]
    schema, lease = names["schema"], 1.5
    world = {
        "directory": MemorySellerDirectory(sellers),
        "lease": lease,
        "endpoint": emulator.url,
        "token_url": emulator.token_url,
        "client_id": emulator.credentials.client_id,
        "client_secret": emulator.credentials.client_secret,
    }
    stranded = Fleet(**fleet_options(**world, redis_url=silent_link.via(redis_server.url)))
    other = Fleet(**fleet_options(**world))
    db = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
    redis = Redis.from_url(redis_server.url)
    try:
        await other.status()  # the tables exist from here on
        emulator.faults.set("getServiceJobs", latency=0.25)
        run = asyncio.create_task(stranded.run_seller("S0"))
        while not await rows(db, schema, "S0"):  # its first pages are stored
            assert not run.done(), run.result()
            await asyncio.sleep(0.02)

        # Its link to Redis goes silent: no answer, no reset.  It cannot renew, and gives
        # the seller up by its own clock, its sync cancelled.
        silent_link.pause()
        lost = await asyncio.wait_for(run, timeout=30)
        assert lost.outcome == "lost"
        assert lost.fencing_token == 1
        assert "not renewed" in (lost.error or "")

        # Another worker takes the seller once the lock has expired, and syncs it whole.
        emulator.faults.set("getServiceJobs", latency=0)

        async def taken_over() -> SellerRun | None:
            run = await other.run_seller("S0")
            return None if run.outcome == "busy" else run

        taken = await eventually("the lock free for another worker", taken_over)
        assert (taken.outcome, taken.fencing_token) == ("ok", 2)
        mirrored = await rows(db, schema, "S0")
        assert set(mirrored) == set(emulator.sellers[0].store.jobs)
        done = await checkpoint(db, schema, "S0")

        # Had the stranded sync gone on, everything it could still write is refused.
        stale_sink = PostgresSink(db, seller_id="S0", schema=schema, fencing_token=1)
        end = datetime.now(UTC) - timedelta(hours=1)
        plan = SyncPlan.new(scope=US, mode=Mode.CREATED, start=end - HISTORY, end=end, windows=1)
        async with stale_sink:
            with pytest.raises(FencedOut):
                await stale_sink.begin(plan)
            with pytest.raises(FencedOut):
                await stale_sink.finish(plan)
        book = StatusBook(db, schema)
        assert not await book.failed("S0", 1, "an old error")
        assert await rows(db, schema, "S0") == mirrored
        assert await checkpoint(db, schema, "S0") == done
        (status,) = [s for s in await other.status() if s.seller_id == "S0"]
        assert (status.state, status.fencing_token, status.runs) == ("ok", 2, 1)
        assert status.last_error != "an old error"
    finally:
        silent_link.resume()
        await stranded.aclose()
        await other.aclose()
        await db.close()
        await redis.aclose()


async def test_a_sync_overtaken_without_knowing_it_stops_fenced_and_records_nothing(
    slow_world: ServicesEmulator,
    fleet_options: Callable[..., dict[str, Any]],
    postgres: PostgresServer,
    names: dict[str, str],
) -> None:
    """Two holders at once (a failover granting the lock twice, a pause the keeper did
    not see yet): the older sync's next write is refused, and it stops, writing nothing
    more, not even its status."""
    seller = slow_world.sellers[0]
    fleet = Fleet(
        **fleet_options(
            directory=MemorySellerDirectory(
                [Seller(seller_id="S0", refresh_token=seller.refresh_token, marketplace_ids=ALL)]
            ),
            endpoint=slow_world.url,
            token_url=slow_world.token_url,
            client_id=slow_world.credentials.client_id,
            client_secret=slow_world.credentials.client_secret,
        )
    )
    db = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
    try:
        await fleet.status()
        slow_world.faults.set("getServiceJobs", latency=0.1)
        run = asyncio.create_task(fleet.run_seller("S0"))
        await eventually("pages stored", lambda: rows(db, names["schema"], "S0"))
        newer = await StatusBook(db, names["schema"]).started("S0", "elsewhere:1")
        before = await rows(db, names["schema"], "S0")
        result = await asyncio.wait_for(run, 60)
        assert (result.outcome, result.fencing_token) == ("fenced", newer - 1)
        assert f"token {newer} was issued since" in (result.error or "")
        assert await rows(db, names["schema"], "S0") == before  # nothing after the takeover
        (status,) = await fleet.status()
        assert (status.state, status.worker, status.fencing_token) == (
            "running",
            "elsewhere:1",
            newer,
        )
    finally:
        await fleet.aclose()
        await db.close()


async def test_fenced_out_comes_out_of_sync_jobs_as_it_is(
    emulator: ServicesEmulator, pool: asyncpg.Pool, names: dict[str, str]
) -> None:
    stale_sink = PostgresSink(pool, seller_id="S2", schema=names["schema"], fencing_token=1)
    await PostgresSink(pool, seller_id="S2", schema=names["schema"]).take_fencing_token()
    await PostgresSink(pool, seller_id="S2", schema=names["schema"]).take_fencing_token()
    async with ServicesClient(
        credentials_of(emulator, 2),
        endpoint=emulator.url,
        token_url=emulator.token_url,
        marketplace_id=US,
    ) as client:
        with pytest.raises(FencedOut) as refused:
            await sync_jobs(client, stale_sink, since=datetime.now(UTC) - HISTORY)
    assert (refused.value.token, refused.value.current_token) == (1, 2)
    assert await rows(pool, names["schema"], "S2") == {}
