"""The whole fleet: 20 sellers, three taskiq worker processes, one killed mid-run.

The emulator serves 20 sellers, each with a refresh token and a world of its own; the
workers are real ``taskiq worker`` processes (``spapi_services.fleet.env:broker``) on a
real Redis and PostgreSQL.  Once one worker holds a seller's sync with pages already
stored, it is killed with SIGKILL: its tasks must come back to the other two, resume
where they stopped, and every job of every seller end up in PostgreSQL once.  A second
round then fetches only what changed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from _servers import PostgresServer, RedisServer
from redis.asyncio import Redis

from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.fleet import DirectoryKey, Fleet, SellerStatus

from .conftest import HISTORY, world_reference

SELLERS = 20
WORKERS = 3
ALL = [m.marketplace_id for m in MARKETPLACES]
# Short, so a dead worker's sellers come back within seconds; long enough that a busy
# machine (two cores, three workers, the emulator) renews in time.
LEASE = 2.5


@pytest.fixture
async def world() -> AsyncIterator[ServicesEmulator]:
    async with ServicesEmulator(
        jobs=60, seed=11, sellers=SELLERS, enforce_limits=True, reference_time=world_reference()
    ) as emu:
        # Each page takes a while, so that a worker can be caught in the middle of a sync.
        emu.faults.set("getServiceJobs", latency=0.12)
        yield emu


def environment(
    emu: ServicesEmulator, postgres: PostgresServer, redis: RedisServer, names: dict[str, str]
) -> dict[str, str]:
    return {
        **os.environ,
        "SPAPI_FLEET_REDIS_URL": redis.url,
        "SPAPI_FLEET_DATABASE_URL": postgres.dsn,
        "SPAPI_FLEET_DIRECTORY_KEY": names["directory_key"],
        "SPAPI_FLEET_TOKEN_KEY": "a2V5LWZvci10aGUtZmxlZXQtZTJlLXRlc3QtMzJieXQ=",
        "SPAPI_FLEET_HISTORY_DAYS": str(HISTORY.days),
        "SPAPI_FLEET_LEASE_SECONDS": str(LEASE),
        "SPAPI_FLEET_RECLAIM_INTERVAL_SECONDS": "0.5",
        "SPAPI_FLEET_ENDPOINT": emu.url,
        "SPAPI_FLEET_TOKEN_URL": emu.token_url,
        "SPAPI_FLEET_SCHEMA": names["schema"],
        "SPAPI_FLEET_KEY_PREFIX": names["key_prefix"],
        "SPAPI_FLEET_QUEUE": names["queue"],
        "SPAPI_FLEET_POOL_SIZE": "4",
        "SPAPI_CLIENT_ID": emu.credentials.client_id,
        "SPAPI_CLIENT_SECRET": emu.credentials.client_secret,
    }


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "taskiq", "worker", "spapi_services.fleet.env:broker",
        "--workers", "1",
        "--max-async-tasks", "3",
        "--log-level", "WARNING",
        "--shutdown-timeout", "2",
    ]  # fmt: skip
    with log.open("wb") as out:
        # A session of its own: the worker's manager and its child die together.
        return subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen[bytes], how: signal.Signals = signal.SIGTERM) -> None:
    if process.poll() is None:
        with contextlib_suppress():
            os.killpg(process.pid, how)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class contextlib_suppress:
    """Suppress ProcessLookupError: the group may be gone already."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, *_: object) -> bool:
        return kind is ProcessLookupError


async def until(what: str, check: Callable[[], Awaitable[Any]], fleet: Fleet | None = None) -> Any:
    give_up = time.monotonic() + 45.0
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > give_up:
            unfinished = (
                []
                if fleet is None
                else [
                    (s.seller_id, s.state, s.running, s.queued, s.last_error)
                    for s in await fleet.status()
                    if s.state != "ok"
                ]
            )
            raise AssertionError(f"timed out waiting for {what}; not ok: {unfinished}")
        await asyncio.sleep(0.05)


def pid_of(status: SellerStatus) -> int:
    assert status.worker is not None
    return int(status.worker.rsplit(":", 1)[1])


async def test_twenty_sellers_on_three_workers_one_killed_midway(
    world: ServicesEmulator,
    postgres: PostgresServer,
    redis_server: RedisServer,
    names: dict[str, str],
    tmp_path: Path,
) -> None:
    names = {**names, "directory_key": DirectoryKey.generate()}
    env = environment(world, postgres, redis_server, names)
    started = datetime.now(UTC)
    fleet = Fleet.from_env(env)
    db = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
    redis = Redis.from_url(redis_server.url)
    workers = [start_worker(env, tmp_path / f"worker{i}.log") for i in range(WORKERS)]
    try:
        for seller in world.sellers:
            await fleet.add_seller(f"S{seller.index:02d}", seller.refresh_token, ALL)
        assert len(await fleet.enqueue_all()) == SELLERS

        # --- one worker dies in the middle of a sync ------------------------------------
        async def caught_midway() -> tuple[subprocess.Popen[bytes], set[str]] | None:
            """A worker with a sync that has stored pages, and the sellers it is syncing."""
            by_group: dict[int | None, set[str]] = {}
            midway: set[int | None] = set()
            for status in await fleet.status():
                if status.state != "running":
                    continue
                group = _group_of(pid_of(status))
                by_group.setdefault(group, set()).add(status.seller_id)
                stored = await db.fetchval(
                    f"SELECT count(*) FROM {fleet.schema}.service_jobs WHERE seller_id = $1",
                    status.seller_id,
                )
                if stored:
                    midway.add(group)
            for worker in workers:
                if worker.pid in midway:
                    return worker, by_group[worker.pid]
            return None

        victim, interrupted = await until("a worker caught mid-sync", caught_midway)
        stop(victim, signal.SIGKILL)
        survivors = [w for w in workers if w is not victim]

        # --- every seller synced, every task acknowledged -----------------------------------
        async def all_done() -> list[SellerStatus] | None:
            statuses = await fleet.status()
            if not all(s.state == "ok" for s in statuses):
                return None
            pending = await redis.xpending(fleet.broker.queue_name, "spapi-fleet")
            queued = await redis.xlen(fleet.broker.queue_name)
            return statuses if pending["pending"] == 0 and queued == 0 else None

        first = {s.seller_id: s for s in await until("every seller synced", all_done, fleet)}
        assert all(w.poll() is None for w in survivors)
        # The killed worker's sellers were taken over and finished by the others.
        for seller_id in interrupted:
            assert _group_of(pid_of(first[seller_id])) in {w.pid for w in survivors}
        for seller in world.sellers:
            seller_id = f"S{seller.index:02d}"
            rows = await db.fetch(
                f"SELECT service_job_id FROM {fleet.schema}.service_jobs WHERE seller_id = $1",
                seller_id,
            )
            ids = [r[0] for r in rows]
            assert len(ids) == len(set(ids)) == len(seller.store.jobs)  # every job, once
            assert set(ids) == set(seller.store.jobs)
            checkpoints = await db.fetch(
                f"SELECT scope, synced_until FROM {fleet.schema}.sync_checkpoints"
                " WHERE seller_id = $1",
                seller_id,
            )
            assert {c["scope"] for c in checkpoints} == set(ALL)
            for checkpoint in checkpoints:
                assert started <= checkpoint["synced_until"] <= first[seller_id].finished_at
        assert await db.fetchval(f"SELECT count(*) FROM {fleet.schema}.sync_runs") == 0

        # --- a second round fetches what changed, and only that ---------------------------------
        changed: dict[str, set[str]] = {}
        for seller in world.sellers[:5]:
            jobs = [j for j in seller.store.jobs.values() if j.status == "PENDING_SCHEDULE"][:2]
            for job in jobs:
                seller.store.set_job_status(job.service_job_id, "CANCELLED")
            changed[f"S{seller.index:02d}"] = {j.service_job_id for j in jobs}
        requests_before = world.count("getServiceJobs", 200)
        assert len(await fleet.enqueue_all()) == SELLERS

        async def second_round() -> list[SellerStatus] | None:
            statuses = await all_done()
            if statuses and all(s.runs == first[s.seller_id].runs + 1 for s in statuses):
                return statuses
            return None

        second = {s.seller_id: s for s in await until("the second round", second_round, fleet)}
        for seller_id, status in second.items():
            assert status.jobs == len(changed.get(seller_id, ())), seller_id
        # One request per marketplace and seller: each range fits in one page.
        assert world.count("getServiceJobs", 200) - requests_before == SELLERS * len(ALL)
        for seller_id, job_ids in changed.items():
            rows = await db.fetch(
                f"SELECT status FROM {fleet.schema}.service_jobs"
                " WHERE seller_id = $1 AND service_job_id = ANY($2)",
                seller_id,
                list(job_ids),
            )
            assert [r[0] for r in rows] == ["CANCELLED"] * len(job_ids)
        assert sum(s.throttled_total for s in second.values()) == world.count(status=429)
    finally:
        for worker in workers:
            stop(worker)
        await fleet.aclose()
        await redis.aclose()
        await db.close()
        for log in _logs(tmp_path):
            assert "Traceback" not in log, log[-3000:]


def _logs(folder: Path) -> list[str]:
    return [p.read_text(errors="replace") for p in sorted(folder.glob("worker*.log"))]


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
