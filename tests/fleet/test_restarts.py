"""Servers restarting under a running fleet.

* PostgreSQL restarted in the middle of a sync: the sink reconnects (within its bound),
  the sync goes on from what was stored, and every job is stored once, none lost; a
  session the server ends mid-statement is tried again on a new one, or, out of time,
  fails with the error that says so; the seller directory's reads wait for it too.
* Redis restarted without persistence under real worker processes: no worker dies,
  running syncs go on (their locks taken again), and the tasks lost with Redis are sent
  again by the schedule (a real ``fleet schedule`` process) until every seller is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from _servers import PostgresServer, RedisServer, running

from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.fleet import (
    DirectoryKey,
    Fleet,
    MemorySellerDirectory,
    PostgresSellerDirectory,
    Seller,
)
from spapi_services.sync._postgres import Reconnecting, connect_pool

from .conftest import HISTORY, eventually, world_reference
from .test_fleet_e2e import start_worker, stop

ALL = [m.marketplace_id for m in MARKETPLACES]


@pytest.fixture
async def world() -> AsyncIterator[ServicesEmulator]:
    async with ServicesEmulator(
        jobs=300, seed=9, sellers=4, enforce_limits=False, reference_time=world_reference()
    ) as emu:
        yield emu


async def stored(db: asyncpg.Pool, schema: str, seller: str) -> list[str]:
    rows = await db.fetch(
        f"SELECT service_job_id FROM {schema}.service_jobs WHERE seller_id = $1", seller
    )
    return [r[0] for r in rows]


async def test_a_postgresql_restart_mid_sync_loses_and_repeats_nothing(
    world: ServicesEmulator,
    postgres: PostgresServer,
    fleet_options: Callable[..., dict[str, Any]],
    names: dict[str, str],
) -> None:
    seller = world.sellers[0]
    fleet = Fleet(
        **fleet_options(
            directory=MemorySellerDirectory(
                [Seller(seller_id="S0", refresh_token=seller.refresh_token, marketplace_ids=ALL)]
            ),
            endpoint=world.url,
            token_url=world.token_url,
            client_id=world.credentials.client_id,
            client_secret=world.credentials.client_secret,
        )
    )
    db = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
    try:
        await fleet.status()
        world.faults.set("getServiceJobs", latency=0.1)
        run = asyncio.create_task(fleet.run_seller("S0"))
        await eventually("pages stored", lambda: stored(db, names["schema"], "S0"))
        await asyncio.to_thread(postgres.restart)  # the sync goes on meanwhile, and hits it
        assert 0 < len(await stored(db, names["schema"], "S0")) < len(seller.store.jobs)
        result = await asyncio.wait_for(run, 120)
        assert result.outcome == "ok", result
        ids = await stored(db, names["schema"], "S0")
        assert sorted(ids) == sorted(seller.store.jobs)  # every job, once
        # Every page counted once: none stored twice for a commit whose answer was lost.
        assert result.jobs == len(seller.store.jobs)
        (status,) = await fleet.status()
        assert (status.state, status.runs, status.jobs) == ("ok", 1, len(seller.store.jobs))
        assert await db.fetchval(f"SELECT count(*) FROM {names['schema']}.sync_runs") == 0
    finally:
        await fleet.aclose()
        await db.close()


async def test_a_session_the_server_ends_mid_statement_fails_saying_so_or_is_tried_again(
    postgres: PostgresServer,
) -> None:
    # asyncpg hands a connection the server dropped back to its pool at once, and every
    # method of the proxy then raises InterfaceError ("released back to the pool"): the
    # sink's own look at it must not replace the error that says what happened.
    pool = await connect_pool(postgres.dsn, min_size=0, max_size=2)
    ended = "SELECT pg_terminate_backend(pg_backend_pid())"  # as a restart ends it
    try:
        no_time = Reconnecting(pool, 0.0, what="the test")
        with pytest.raises(asyncpg.PostgresConnectionError, match="administrator command"):
            await no_time.run(lambda conn: conn.execute(ended))
        tries: list[int] = []

        async def work(conn: Any) -> int:
            tries.append(await conn.fetchval("SELECT pg_backend_pid()"))
            if len(tries) == 1:
                await conn.execute(ended)
            answer: int = await conn.fetchval("SELECT 7")
            return answer

        assert await Reconnecting(pool, 10.0, what="the test").run(work, transaction=True) == 7
        assert len(tries) == 2
        assert tries[0] != tries[1]  # again, on a new session
        assert await pool.fetchval("SELECT 1") == 1  # and the pool is whole
    finally:
        await pool.close()


async def test_the_seller_directory_reads_through_a_postgresql_restart(
    postgres: PostgresServer, names: dict[str, str]
) -> None:
    # A task that starts while the database restarts reads its seller first: that read
    # waits for the database (within reconnect_timeout) as the sync's own writes do,
    # instead of failing the task with a traceback.
    key = DirectoryKey.generate()
    directory = PostgresSellerDirectory(postgres.dsn, key=key, schema=names["schema"])
    seller = Seller(seller_id="S0", refresh_token="Atzr|s0", marketplace_ids=ALL[:1])
    try:
        await directory.put(seller)
        await asyncio.to_thread(postgres.stop)
        try:
            reads = asyncio.gather(directory.get("S0"), directory.seller_ids())
            await asyncio.sleep(0.3)  # the reads have found it away by now
            assert not reads.done()
        finally:
            await asyncio.to_thread(postgres.start)
        assert await asyncio.wait_for(reads, 30) == [seller, ["S0"]]
        short = PostgresSellerDirectory(
            postgres.dsn, key=key, schema=names["schema"], reconnect_timeout=0.2
        )
        with pytest.raises(ValueError, match="reconnect_timeout"):
            PostgresSellerDirectory(postgres.dsn, key=key, reconnect_timeout=-1)
        try:
            await asyncio.to_thread(postgres.stop)
            # Out of time: the error says what is wrong.
            with pytest.raises(ConnectionRefusedError):
                await short.seller_ids()
        finally:
            await asyncio.to_thread(postgres.start)
            await short.aclose()
    finally:
        await directory.aclose()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with running(RedisServer) as server:
        yield server


def start_scheduler(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "spapi_services.cli", "fleet", "schedule",
        "--every", "0.05", "--update-interval", "1", "--log-level", "WARNING",
    ]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


async def test_workers_outlive_a_redis_restart_and_the_schedule_sends_the_lost_work_again(
    world: ServicesEmulator,
    postgres: PostgresServer,
    own_redis: RedisServer,
    names: dict[str, str],
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "SPAPI_FLEET_REDIS_URL": own_redis.url,
        "SPAPI_FLEET_DATABASE_URL": postgres.dsn,
        "SPAPI_FLEET_DIRECTORY_KEY": DirectoryKey.generate(),
        "SPAPI_FLEET_HISTORY_DAYS": str(HISTORY.days),
        "SPAPI_FLEET_LEASE_SECONDS": "2.5",
        "SPAPI_FLEET_RECLAIM_INTERVAL_SECONDS": "0.5",
        "SPAPI_FLEET_ENDPOINT": world.url,
        "SPAPI_FLEET_TOKEN_URL": world.token_url,
        "SPAPI_FLEET_SCHEMA": names["schema"],
        "SPAPI_FLEET_KEY_PREFIX": names["key_prefix"],
        "SPAPI_FLEET_QUEUE": names["queue"],
        "SPAPI_FLEET_POOL_SIZE": "4",
        "SPAPI_CLIENT_ID": world.credentials.client_id,
        "SPAPI_CLIENT_SECRET": world.credentials.client_secret,
    }
    fleet = Fleet.from_env(env)
    db = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
    workers = [start_worker(env, tmp_path / f"worker{i}.log") for i in range(2)]
    scheduler: subprocess.Popen[bytes] | None = None
    try:
        ids = {}
        for seller in world.sellers:
            ids[f"S{seller.index}"] = seller
            await fleet.add_seller(f"S{seller.index}", seller.refresh_token, ALL)
        world.faults.set("getServiceJobs", latency=0.1)
        assert len(await fleet.enqueue_all()) == len(ids)

        async def midway() -> bool:
            return any(s.running for s in await fleet.status()) and bool(
                await db.fetchval(f"SELECT count(*) FROM {names['schema']}.service_jobs")
            )

        await eventually("syncs under way", midway)
        own_redis.restart()  # in memory: the queue, its tasks, locks and marks are gone
        await asyncio.sleep(1.0)
        assert [w.poll() for w in workers] == [None, None]  # every worker lives on

        scheduler = start_scheduler(env, tmp_path / "scheduler.log")

        async def converged() -> bool:
            statuses = await fleet.status()
            if not all(s.state == "ok" for s in statuses):
                return False
            for seller_id, seller in ids.items():
                if sorted(await stored(db, names["schema"], seller_id)) != sorted(
                    seller.store.jobs
                ):
                    return False
            return True

        await eventually("every seller synced after the restart", converged, within=90)
        assert [w.poll() for w in workers] == [None, None]
        for seller_id, seller in ids.items():
            jobs = await stored(db, names["schema"], seller_id)
            assert len(jobs) == len(set(jobs)) == len(seller.store.jobs)
    finally:
        if scheduler is not None:
            stop(scheduler)
        for worker in workers:
            stop(worker)
        await fleet.aclose()
        await db.close()
    logs = _read_logs(tmp_path)
    assert "Traceback" not in logs, logs[-3000:]


def _read_logs(folder: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in sorted(folder.glob("*.log")))


async def test_a_worker_paused_past_its_lease_wakes_to_find_itself_stopped_and_fenced(
    world: ServicesEmulator,
    postgres: PostgresServer,
    redis_server: RedisServer,
    names: dict[str, str],
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "SPAPI_FLEET_REDIS_URL": redis_server.url,
        "SPAPI_FLEET_DATABASE_URL": postgres.dsn,
        "SPAPI_FLEET_DIRECTORY_KEY": DirectoryKey.generate(),
        "SPAPI_FLEET_HISTORY_DAYS": str(HISTORY.days),
        "SPAPI_FLEET_LEASE_SECONDS": "2",
        "SPAPI_FLEET_RECLAIM_INTERVAL_SECONDS": "0.3",
        "SPAPI_FLEET_ENDPOINT": world.url,
        "SPAPI_FLEET_TOKEN_URL": world.token_url,
        "SPAPI_FLEET_SCHEMA": names["schema"],
        "SPAPI_FLEET_KEY_PREFIX": names["key_prefix"],
        "SPAPI_FLEET_QUEUE": names["queue"],
        "SPAPI_FLEET_POOL_SIZE": "4",
        "SPAPI_CLIENT_ID": world.credentials.client_id,
        "SPAPI_CLIENT_SECRET": world.credentials.client_secret,
    }
    fleet = Fleet.from_env(env)
    db = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
    seller = world.sellers[0]
    await fleet.add_seller("S0", seller.refresh_token, ALL)
    world.faults.set("getServiceJobs", latency=0.3)
    paused = start_worker(env, tmp_path / "paused.log")
    try:
        assert await fleet.enqueue("S0")
        await eventually("a sync under way", lambda: stored(db, names["schema"], "S0"))
        os.killpg(paused.pid, signal.SIGSTOP)  # frozen mid-sync, sockets open
        other = start_worker(env, tmp_path / "other.log")
        try:
            # Silent past its lease and the idle timeout: another worker takes the task.
            async def taken_over() -> bool:
                (status,) = await fleet.status()
                return (status.fencing_token or 0) >= 2

            await eventually("the task taken over", taken_over)
            os.killpg(paused.pid, signal.SIGCONT)  # it wakes, believing it holds the seller

            async def finished() -> bool:
                (status,) = await fleet.status()
                return status.state == "ok" and not status.running

            await eventually("the seller synced by the other worker", finished)
            await asyncio.sleep(1.0)  # whatever the woken worker still had to say
            jobs = await stored(db, names["schema"], "S0")
            assert sorted(jobs) == sorted(seller.store.jobs)  # every job, once
            assert paused.poll() is None  # alive, not killed by its pause
            (status,) = await fleet.status()
            assert status.fencing_token == 2
            assert status.runs == 1  # the woken sync recorded nothing
        finally:
            stop(other)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(paused.pid, signal.SIGCONT)
        stop(paused)
        await fleet.aclose()
        await db.close()
    woken = (tmp_path / "paused.log").read_text(errors="replace")
    assert "lost its sync lock" in woken or "fencing token 1" in woken, woken[-3000:]
    assert "Traceback" not in woken, woken[-3000:]
