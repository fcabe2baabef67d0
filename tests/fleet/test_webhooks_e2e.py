"""Webhooks end to end: taskiq worker processes deliver the outbox to a receiver over
real sockets, through a worker SIGKILLed mid-delivery and a receiver down for a while.

The emulator's sellers change (jobs moved, jobs created); the fleet syncs them into
PostgreSQL, whose outbox the workers' relays deliver.  Then the invariants, checked
against the outbox and the emulator: every change recorded reached the receiver
(none lost), each with its ``webhook-id``; a message that arrived twice arrived the same
byte for byte (so the receiver's de-duplication by id is right); every job's latest
state in the emulator is the latest the receiver got for it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from _servers import PostgresServer, RedisServer

from spapi_services.emulator import ServicesEmulator
from spapi_services.fleet import DirectoryKey, Fleet

from ._receiver import HookReceiver
from .conftest import eventually, world_reference
from .test_fleet_e2e import ALL, environment, start_worker, stop

#: Retries every fraction of a second, then every second: a receiver down for a few
#: seconds is caught up within a second of its return, and never dead-lettered.
DELAYS = "0,0.2,0.4,0.8,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1"


@pytest.fixture
async def world() -> AsyncIterator[ServicesEmulator]:
    async with ServicesEmulator(
        jobs=30, seed=21, sellers=2, enforce_limits=False, reference_time=world_reference()
    ) as emu:
        yield emu


def webhook_environment(
    emu: ServicesEmulator, postgres: PostgresServer, redis: RedisServer, names: dict[str, str]
) -> dict[str, str]:
    return {
        **environment(emu, postgres, redis, names),
        "SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
        "SPAPI_FLEET_WEBHOOK_DELAYS": DELAYS,
        "SPAPI_FLEET_WEBHOOK_TIMEOUT_SECONDS": "2",
        "SPAPI_FLEET_WEBHOOK_LEASE_SECONDS": "3",
        "SPAPI_FLEET_WEBHOOK_POLL_SECONDS": "0.1",
    }


def move_jobs(emu: ServicesEmulator, count: int) -> None:
    """``count`` open jobs of each seller moved on, and one job created each."""
    for seller in emu.sellers:
        store = seller.store
        open_jobs = [
            j for j in store.find_jobs() if j.status in ("NOT_SERVICED", "PENDING_SCHEDULE")
        ]
        for job in open_jobs[:count]:
            store.set_job_status(job.service_job_id, "CANCELLED")
        store.new_job()


async def all_delivered(db: asyncpg.Pool, schema: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        waiting = await db.fetchval(
            f"SELECT count(*) FROM {schema}.change_outbox o WHERE relayed_at IS NULL OR EXISTS"
            f" (SELECT 1 FROM {schema}.webhook_deliveries d WHERE d.outbox_id = o.id"
            " AND d.state <> 'delivered')"
        )
        return bool(waiting == 0)

    return check


async def test_every_change_arrives_through_a_killed_worker_and_a_receiver_down(
    world: ServicesEmulator,
    postgres: PostgresServer,
    redis_server: RedisServer,
    names: dict[str, str],
    tmp_path: Path,
) -> None:
    names = {**names, "directory_key": DirectoryKey.generate()}
    env = webhook_environment(world, postgres, redis_server, names)
    fleet = Fleet.from_env(env)
    db = await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2)
    receiver = HookReceiver()
    await receiver.start()
    workers = [start_worker(env, tmp_path / f"worker{i}.log") for i in range(2)]
    schema = fleet.schema
    try:
        for seller in world.sellers:
            await fleet.add_seller(f"S{seller.index}", seller.refresh_token, ALL)
        endpoint = await fleet.set_webhook(receiver.url, endpoint_id="e2e")
        receiver.secret = endpoint.secrets[0].export()
        delivered = await all_delivered(db, schema)

        # --- every job of the first syncs, delivered ---------------------------------------
        await fleet.enqueue_all()
        await eventually("the first syncs' changes recorded", lambda: _outbox_count(db, schema, 60))
        await eventually("the first changes delivered", delivered)

        # --- a worker killed while a delivery hangs --------------------------------------------
        receiver.script = ["hang"]
        move_jobs(world, 3)
        await fleet.enqueue_all()
        await eventually("a delivery under way", lambda: _hanging(receiver))
        stuck = receiver.hung[0]
        holder = await db.fetchval(
            f"SELECT leased_by FROM {schema}.webhook_deliveries WHERE outbox_id = $1",
            int(stuck.rsplit("_", 1)[1]),
        )
        victim = next(w for w in workers if w.pid == _group_of(int(holder.rsplit(":", 1)[1])))
        stop(victim, signal.SIGKILL)
        receiver.release.set()
        workers.append(start_worker(env, tmp_path / "worker-after.log"))
        await eventually("the stuck change delivered by another worker", delivered, within=45)
        assert receiver.copies()[stuck] >= 2

        # --- the receiver down for a while ------------------------------------------------------
        await receiver.stop()
        move_jobs(world, 2)
        await fleet.enqueue_all()
        await eventually("failed attempts while it is down", lambda: _failing(db, schema))
        await asyncio.sleep(2)  # a few more retries refused
        await receiver.start()
        await eventually("every seller synced", lambda: _synced(fleet), within=45)
        await eventually("every change delivered once it is back", delivered, within=45)
    finally:
        for worker in workers:
            stop(worker)
        await receiver.stop()
        await fleet.aclose()

    try:
        rows = await db.fetch(f"SELECT * FROM {schema}.change_outbox ORDER BY id")
        mirror = await db.fetchval(
            f"SELECT value FROM {schema}.mirror_meta WHERE name = 'mirror_id'"
        )
        failed = await db.fetchval(
            f"SELECT count(*) FROM {schema}.webhook_deliveries WHERE attempts > 1"
        )
    finally:
        await db.close()
    # None lost: every recorded change reached the receiver, with its id.
    expected = {f"msg_{mirror}_{row['id']}" for row in rows}
    assert receiver.ids() == expected
    assert all(a.verified for a in receiver.arrivals)
    # Duplicates (the killed worker's, the refused ones' retries) are the same message.
    bodies: dict[str, bytes] = {}
    for arrival in receiver.arrivals:
        assert bodies.setdefault(arrival.webhook_id, arrival.body) == arrival.body
    assert failed > 0  # the outage did cost retries
    # Each job's last change to arrive is its state in the emulator.
    latest: dict[tuple[str, str], Any] = {}
    for arrival in sorted(receiver.arrivals, key=lambda a: a.json()["data"]["seenAt"]):
        data = arrival.json()["data"]
        latest[(data["sellerId"], data["job"]["serviceJobId"])] = data["job"]
    for seller in world.sellers:
        for job_id, job in seller.store.jobs.items():
            assert latest[(f"S{seller.index}", job_id)]["serviceJobStatus"] == job.status


async def _outbox_count(db: asyncpg.Pool, schema: str, count: int) -> bool:
    found = await db.fetchval(f"SELECT count(*) FROM {schema}.change_outbox")
    return bool(found >= count)


async def _hanging(receiver: HookReceiver) -> bool:
    return bool(receiver.hung)


async def _synced(fleet: Fleet) -> bool:
    return all(s.state == "ok" and not s.running and not s.queued for s in await fleet.status())


async def _failing(db: asyncpg.Pool, schema: str) -> bool:
    found = await db.fetchval(
        f"SELECT count(*) FROM {schema}.webhook_deliveries WHERE state = 'pending'"
        " AND last_error IS NOT NULL"
    )
    return bool(found)


def _group_of(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None
