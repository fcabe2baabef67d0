"""The fleet's core in one process: a seller's sync into PostgreSQL and its status, the
per-seller lock, refused credentials, the directory's sealed tokens and the schedule."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from _servers import PostgresServer, RedisServer
from redis.asyncio import Redis
from taskiq.exceptions import ScheduledTaskCancelledError

from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.fleet import (
    DirectoryKey,
    DirectoryKeyError,
    Fleet,
    LeaseLost,
    MemorySellerDirectory,
    PostgresSellerDirectory,
    Seller,
    SellerBusy,
    SellerLocks,
)

from .conftest import HISTORY

ALL = [m.marketplace_id for m in MARKETPLACES]
KEY = DirectoryKey.generate()


def sellers_of(emu: ServicesEmulator) -> list[Seller]:
    return [
        Seller(seller_id=f"S{s.index}", refresh_token=s.refresh_token, marketplace_ids=ALL)
        for s in emu.sellers
    ]


@pytest.fixture
async def fleet(
    emulator: ServicesEmulator, fleet_options: Callable[..., dict[str, Any]]
) -> AsyncIterator[Fleet]:
    async with Fleet(**fleet_options(directory=MemorySellerDirectory(sellers_of(emulator)))) as f:
        yield f


@pytest.fixture
async def db(postgres: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2) as pool:
        yield pool


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()


async def mirrored(db: asyncpg.Pool, fleet: Fleet, seller_id: str) -> set[str]:
    rows = await db.fetch(
        f"SELECT service_job_id FROM {fleet.schema}.service_jobs WHERE seller_id = $1", seller_id
    )
    return {r[0] for r in rows}


# --- a seller's sync and its status -------------------------------------------------------


async def test_a_seller_is_synced_into_its_rows_and_its_status_says_so(
    fleet: Fleet, emulator: ServicesEmulator, db: asyncpg.Pool
) -> None:
    run = await fleet.run_seller("S1")
    assert run.outcome == "ok"
    assert run.jobs == len(emulator.sellers[1].store.jobs) == 40
    assert await mirrored(db, fleet, "S1") == set(emulator.sellers[1].store.jobs)
    assert await mirrored(db, fleet, "S0") == set()

    again = await fleet.run_seller("S1")
    assert (again.outcome, again.jobs) == ("ok", 0)  # nothing changed since

    statuses = {s.seller_id: s for s in await fleet.status()}
    assert set(statuses) == {"S0", "S1", "S2"}
    assert statuses["S0"].state == "new"
    done = statuses["S1"]
    assert (done.state, done.runs, done.jobs, done.jobs_total) == ("ok", 2, 0, 40)
    assert done.throttled == 0
    assert done.last_success_at is not None
    assert done.lag is not None
    assert done.lag.total_seconds() < 600
    assert not done.running


async def test_a_sync_stopped_midway_is_marked_interrupted_and_resumed(
    fleet: Fleet, emulator: ServicesEmulator, db: asyncpg.Pool, redis: Redis
) -> None:
    await fleet.status()  # the tables exist from here on
    emulator.faults.set("getServiceJobs", latency=0.05)
    task = asyncio.create_task(fleet.run_seller("S0"))
    for _ in range(1000):  # until its first page is stored
        if await mirrored(db, fleet, "S0"):
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (status,) = [s for s in await fleet.status() if s.seller_id == "S0"]
    assert status.state == "interrupted"
    assert not status.running  # the lock went with it
    partial = await mirrored(db, fleet, "S0")
    assert partial < set(emulator.sellers[0].store.jobs)

    run = await fleet.run_seller("S0")
    assert run.outcome == "ok"
    assert run.jobs == len(emulator.sellers[0].store.jobs) - len(partial)
    assert await mirrored(db, fleet, "S0") == set(emulator.sellers[0].store.jobs)


async def test_a_duplicate_task_skips_a_seller_that_is_running(
    fleet: Fleet, emulator: ServicesEmulator, redis: Redis
) -> None:
    locks = SellerLocks(redis, prefix=fleet.key_prefix, lease=5)
    async with locks.hold("S2"):
        run = await fleet.run_seller("S2")
        assert run.outcome == "busy"
        (status,) = [s for s in await fleet.status() if s.seller_id == "S2"]
        assert status.running
        assert status.state == "new"
    assert emulator.count("getServiceJobs") == 0
    assert (await fleet.run_seller("S2")).outcome == "ok"


async def test_a_lock_is_renewed_while_held_and_released_by_its_owner_only(
    redis: Redis, names: dict[str, str]
) -> None:
    locks = SellerLocks(redis, prefix=names["key_prefix"], lease=0.6)
    key = locks.lock_key("A")
    async with locks.hold("A"):
        await asyncio.sleep(1.5)  # well past the lease: only renewal keeps it
        assert await redis.exists(key)
        with pytest.raises(SellerBusy):
            async with locks.hold("A"):
                pass
    assert not await redis.exists(key)

    # A lock taken over by someone else: the holder's block is stopped, and the other's
    # lock is left alone.
    async def taken_over() -> None:
        async with locks.hold("B"):
            await redis.set(locks.lock_key("B"), "someone else", px=60_000)
            await asyncio.sleep(5)

    with pytest.raises(LeaseLost):
        await taken_over()
    assert await redis.get(locks.lock_key("B")) == b"someone else"


# --- refused credentials ------------------------------------------------------------------


async def test_a_refused_seller_is_marked_skipped_and_fixed_by_a_new_token(
    emulator: ServicesEmulator, fleet_options: Callable[..., dict[str, Any]], db: asyncpg.Pool
) -> None:
    bad = "Atzr|revoked-" + "x" * 40
    directory = MemorySellerDirectory(sellers_of(emulator))
    await directory.put(Seller(seller_id="S1", refresh_token=bad, marketplace_ids=ALL))
    async with Fleet(**fleet_options(directory=directory)) as fleet:
        runs = await asyncio.gather(fleet.run_seller("S0"), fleet.run_seller("S1"))
        assert [r.outcome for r in runs] == ["ok", "refused"]  # one failing, one synced
        status = {s.seller_id: s for s in await fleet.status()}["S1"]
        assert status.state == "refused"
        assert status.last_error is not None
        assert "invalid_grant" in status.last_error
        assert bad not in status.last_error
        stored = await db.fetchval(
            f"SELECT string_agg(t::text, ' ') FROM {fleet.schema}.fleet_status t"
        )
        assert bad not in stored

        exchanges = emulator.lwa_exchanges
        assert (await fleet.run_seller("S1")).outcome == "skipped"
        assert emulator.lwa_exchanges == exchanges  # not asked again
        assert await fleet.due_seller_ids() == ["S0", "S2"]
        assert set(await fleet.enqueue_all()) == {"S0", "S2"}

        # A new token clears the mark.
        await directory.put(sellers_of(emulator)[1])
        assert "S1" in await fleet.due_seller_ids()
        assert (await fleet.run_seller("S1")).outcome == "ok"
        assert await mirrored(db, fleet, "S1") == set(emulator.sellers[1].store.jobs)


# --- the directory --------------------------------------------------------------------------


async def test_the_directory_keeps_refresh_tokens_sealed_at_rest(
    postgres: PostgresServer, db: asyncpg.Pool, names: dict[str, str]
) -> None:
    token = "Atzr|" + "secret-refresh-token-" * 5
    directory = PostgresSellerDirectory(postgres.dsn, key=KEY, schema=names["schema"])
    try:
        await directory.put(Seller(seller_id="A1", refresh_token=token, marketplace_ids=ALL[:2]))
        await directory.put(
            Seller(seller_id="A2", refresh_token=token, marketplace_ids=ALL[:1], region="eu")
        )
        table = await db.fetchval(
            f"SELECT string_agg(t::text, ' ') FROM {names['schema']}.fleet_sellers t"
        )
        assert token not in table
        assert "secret-refresh-token" not in table
        seller = await directory.get("A1")
        assert seller is not None
        assert seller.refresh_token == token
        assert seller.marketplace_ids == tuple(ALL[:2])
        assert token not in repr(seller)
        assert await directory.seller_ids() == ["A1", "A2"]
        assert (await directory.get("A2")).region.name == "EU"  # type: ignore[union-attr]

        # A sealed token moved to another seller's row does not open.
        await db.execute(
            f"UPDATE {names['schema']}.fleet_sellers SET refresh_token ="
            " (SELECT refresh_token FROM {0}.fleet_sellers WHERE seller_id = 'A1')"
            " WHERE seller_id = 'A2'".format(names["schema"])
        )
        with pytest.raises(DirectoryKeyError, match="A2") as moved:
            await directory.get("A2")
        assert token not in str(moved.value)
        await directory.put(Seller(seller_id="A2", refresh_token=token, marketplace_ids=ALL[:1]))
    finally:
        await directory.aclose()

    # Another key cannot read it; a ring with the old key second reads and reseals it.
    new = DirectoryKey.generate()
    stranger = PostgresSellerDirectory(postgres.dsn, key=new, schema=names["schema"])
    rotated = PostgresSellerDirectory(postgres.dsn, key=f"{new},{KEY}", schema=names["schema"])
    try:
        with pytest.raises(DirectoryKeyError, match="does not hold") as refused:
            await stranger.get("A1")
        assert token not in str(refused.value)
        assert await rotated.reseal() == 2
        assert (await stranger.get("A1")).refresh_token == token  # type: ignore[union-attr]
    finally:
        await stranger.aclose()
        await rotated.aclose()


@pytest.mark.parametrize(
    ("key", "message"),
    [("c2hvcnQ", "32 bytes"), ("!!!", "base64"), (b"x" * 31, "32 bytes"), ("", "at least one")],
)
def test_bad_directory_keys_are_refused_naming_the_rule(key: Any, message: str) -> None:
    with pytest.raises(DirectoryKeyError, match=message):
        DirectoryKey(key)


# --- the schedule -------------------------------------------------------------------------


async def test_the_schedule_sends_each_seller_and_skips_those_running_or_queued(
    fleet: Fleet, redis: Redis
) -> None:
    source = fleet.scheduler.sources[0]
    schedules = await source.get_schedules()
    assert [s.args for s in schedules] == [["S0"], ["S1"], ["S2"]]
    assert {s.interval for s in schedules} == {15 * 60}
    assert {s.task_name for s in schedules} == {fleet.sync_seller.task_name}

    locks = SellerLocks(redis, prefix=fleet.key_prefix, lease=5)
    queue = fleet.broker.queue_name
    async with locks.hold("S0"):
        sent = []
        for schedule in schedules:
            before = await redis.xlen(queue)
            await fleet.scheduler.on_ready(source, schedule)
            sent.append(await redis.xlen(queue) - before)
        assert sent == [0, 1, 1]  # S0 is running
        # The next round finds S1 and S2 still queued: nothing is sent twice.
        for schedule in schedules:
            with pytest.raises(ScheduledTaskCancelledError):
                await source.pre_send(schedule)
    assert await redis.xlen(queue) == 2
    await fleet.broker.shutdown()


async def test_a_fleet_without_secrets_reads_status_but_refuses_to_sync_naming_them(
    fleet_options: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SPAPI_CLIENT_ID", raising=False)
    monkeypatch.delenv("SPAPI_CLIENT_SECRET", raising=False)
    keyed = Fleet(**fleet_options(directory_key=KEY))
    try:
        await keyed.add_seller("S1", "Atzr|token", ALL[:1])
    finally:
        await keyed.aclose()
    # Neither the directory key nor the app's credentials: the status still reads.
    bare = Fleet(**fleet_options(client_id=None, client_secret=None))
    try:
        assert [s.seller_id for s in await bare.status()] == ["S1"]
        with pytest.raises(ValueError, match="client_id, client_secret"):
            await bare.run_seller("S1")
        with pytest.raises(ValueError, match="client_id, client_secret"):
            bare.run_worker()
    finally:
        await bare.aclose()
    # The app's credentials but no key: adding or syncing a seller names the key.
    keyless = Fleet(**fleet_options())
    try:
        with pytest.raises(ValueError, match="directory_key"):
            await keyless.add_seller("S2", "Atzr|token", ALL[:1])
        with pytest.raises(ValueError, match="directory_key"):
            await keyless.run_seller("S1")
        with pytest.raises(ValueError, match="directory_key"):
            keyless.run_scheduler()
    finally:
        await keyless.aclose()


def test_fleet_options_are_checked_naming_them(
    fleet_options: Callable[..., dict[str, Any]],
) -> None:
    with pytest.raises(ValueError, match="redis_url"):
        Fleet(**fleet_options(redis_url="http://x", directory=MemorySellerDirectory()))
    with pytest.raises(ValueError, match="history"):
        Fleet(**fleet_options(history=HISTORY * 0, directory=MemorySellerDirectory()))
    with pytest.raises(ValueError, match=r"redis_timeout.*third of the lease"):
        Fleet(**fleet_options(lease=3, redis_timeout=1, directory=MemorySellerDirectory()))
    with pytest.raises(ValueError, match="SPAPI_FLEET_DATABASE_URL"):
        Fleet.from_env({"SPAPI_FLEET_REDIS_URL": "redis://127.0.0.1:1/0"})
    with pytest.raises(ValueError, match="SPAPI_FLEET_LEASE_SECONDS"):
        Fleet.from_env(
            {
                "SPAPI_FLEET_REDIS_URL": "redis://127.0.0.1:1/0",
                "SPAPI_FLEET_DATABASE_URL": "postgresql://x@127.0.0.1:1/x",
                "SPAPI_FLEET_LEASE_SECONDS": "soon",
            }
        )


def test_importing_the_sdk_imports_no_fleet_dependency() -> None:
    code = (
        "import sys, spapi_services, spapi_services.sync, spapi_services.emulator;"
        " loaded = [m for m in ('taskiq', 'taskiq_redis', 'asyncpg', 'redis') if m in sys.modules];"
        " sys.exit(str(loaded) if loaded else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
