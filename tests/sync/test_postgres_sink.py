"""PostgresSink against a real PostgreSQL: every job once per seller, crash-safe pages,
migrations that run once however many processes start together, and the mirror's upkeep.

Each test works in a schema of its own in one server started for the module.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from _servers import PostgresServer, running

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.sync import BuyerKey, PostgresSink, SyncReport, sync_jobs
from spapi_services.sync._postgres import MIRROR_MIGRATIONS, Migration, migrate, scheduled_start

from .conftest import ALL_MARKETPLACES, SINCE, US
from .test_sync import Boom, crash_after, ids_of

SELLER = "A1SELLER"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running(PostgresServer) as server:
        yield server


@pytest.fixture
async def pool(postgres: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(postgres.dsn, min_size=1, max_size=4) as p:
        yield p


@pytest.fixture
def schema() -> str:
    return f"t_{uuid.uuid4().hex[:12]}"


async def sync(
    emu: ServicesEmulator, client: ServicesClient, sink: PostgresSink, **options: Any
) -> SyncReport:
    return await sync_jobs(client, sink, since=SINCE, until=emu.clock.now(), **options)


async def mirrored(pool: asyncpg.Pool, schema: str, seller: str = SELLER) -> dict[str, Any]:
    rows = await pool.fetch(f"SELECT * FROM {schema}.service_jobs WHERE seller_id = $1", seller)
    return {row["service_job_id"]: row for row in rows}


# --- syncing ------------------------------------------------------------------------------


async def test_a_first_sync_stores_every_job_once_with_its_columns(
    emulator: ServicesEmulator, client: ServicesClient, pool: asyncpg.Pool, schema: str
) -> None:
    sink = PostgresSink(pool, seller_id=SELLER, schema=schema)
    report = await sync(emulator, client, sink, marketplace_ids=ALL_MARKETPLACES)

    rows = await mirrored(pool, schema)
    assert set(rows) == ids_of(emulator)
    assert report.jobs == len(rows) == 150
    for job_id, row in rows.items():
        record = emulator.store.jobs[job_id]
        job = json.loads(row["job"])
        assert job["serviceJobId"] == job_id
        assert row["status"] == job["serviceJobStatus"] == record.status
        assert row["marketplace_id"] == record.marketplace_id
        assert row["store_id"] == record.store_id
        assert row["create_time"] == record.created
        assert row["scheduled_start"] == scheduled_start(job)
        if record.appointments:
            active = record.active_appointment()
            assert row["scheduled_start"] == (
                active.start if active else max(a.start for a in record.appointments)
            )
        else:
            assert row["scheduled_start"] is None
    checkpoints = await pool.fetch(
        f"SELECT scope, synced_until FROM {schema}.sync_checkpoints WHERE seller_id = $1", SELLER
    )
    assert {r["scope"] for r in checkpoints} == set(ALL_MARKETPLACES)
    assert {r["synced_until"] for r in checkpoints} == {report.runs[0].end}
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.sync_windows") == 0
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.sync_runs") == 0


async def test_sellers_share_the_tables_and_never_see_each_others_rows(
    emulator: ServicesEmulator, client: ServicesClient, pool: asyncpg.Pool, schema: str
) -> None:
    first = PostgresSink(pool, seller_id="A1FIRST", schema=schema)
    second = PostgresSink(pool, seller_id="A2SECOND", schema=schema)
    await sync(emulator, client, first)
    # The second seller has no checkpoint yet: its first run fetches everything.
    report = await sync(emulator, client, second)
    assert report.runs[0].mode == "created"
    assert report.jobs == len(ids_of(emulator, US))

    total = await pool.fetchval(f"SELECT count(*) FROM {schema}.service_jobs")
    assert total == 2 * len(ids_of(emulator, US))
    async with first:
        seen = {job.service_job_id async for job in first.iter_jobs()}
    assert seen == ids_of(emulator, US)
    # A job pruned from one seller's mirror stays in the other's.
    removed = await first.prune(timedelta(0), statuses=["COMPLETED"])
    assert removed > 0
    assert len(await mirrored(pool, schema, "A2SECOND")) == len(ids_of(emulator, US))


@pytest.mark.emulator(jobs=500)
async def test_a_crash_between_pages_then_a_rerun_stores_every_job_exactly_once(
    emulator: ServicesEmulator, client: ServicesClient, pool: asyncpg.Pool, schema: str
) -> None:
    sink = PostgresSink(pool, seller_id=SELLER, schema=schema)
    with pytest.raises(Boom):
        await sync(emulator, client, sink, windows=4, on_progress=crash_after(5))
    partial = await mirrored(pool, schema)
    assert 0 < len(partial) < len(ids_of(emulator, US))
    # The stored pages and their windows' progress went in together.
    progress = await pool.fetchval(
        f"SELECT sum(jobs) FROM {schema}.sync_windows WHERE seller_id = $1", SELLER
    )
    assert progress == len(partial)

    report = await sync(emulator, client, PostgresSink(pool, seller_id=SELLER, schema=schema))
    assert report.resumed
    assert set(await mirrored(pool, schema)) == ids_of(emulator, US)
    # Only the pages not stored before were fetched again.
    assert report.jobs == len(ids_of(emulator, US)) - len(partial)
    assert await pool.fetchval(f"SELECT count(*) FROM {schema}.sync_windows") == 0


async def test_a_later_sync_fetches_only_what_changed(
    emulator: ServicesEmulator, client: ServicesClient, pool: asyncpg.Pool, schema: str
) -> None:
    await sync(emulator, client, PostgresSink(pool, seller_id=SELLER, schema=schema))
    before = await mirrored(pool, schema)
    changed = [
        j.service_job_id
        for j in emulator.store.find_jobs(marketplace_id=US)
        if j.status in ("PENDING_SCHEDULE", "HOLD")
    ][:3]
    for job_id in changed:
        emulator.store.set_job_status(job_id, "CANCELLED")

    report = await sync(emulator, client, PostgresSink(pool, seller_id=SELLER, schema=schema))
    after = await mirrored(pool, schema)
    assert report.runs[0].mode == "updated"
    assert report.jobs == 3
    touched = {j for j in after if after[j]["synced_at"] != before[j]["synced_at"]}
    assert touched == set(changed)
    assert {after[j]["status"] for j in changed} == {"CANCELLED"}


async def test_a_url_opens_and_closes_a_pool_of_the_sinks_own(
    emulator: ServicesEmulator, client: ServicesClient, postgres: PostgresServer, schema: str
) -> None:
    sink = PostgresSink(postgres.dsn, seller_id=SELLER, schema=schema)
    report = await sync(emulator, client, sink)
    assert report.jobs == len(ids_of(emulator, US))
    assert sink._pool is None  # closed with the sink
    job_id = next(iter(ids_of(emulator, US)))
    job = await sink.get(job_id)
    assert job is not None
    assert job.service_job_id == job_id
    assert await sink.get("no-such-job") is None


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"seller_id": ""}, ValueError, "seller_id"),
        ({"seller_id": SELLER, "schema": "Public; DROP"}, ValueError, "schema"),
        ({"seller_id": SELLER, "database": "sqlite:///x"}, ValueError, "database"),
        ({"seller_id": SELLER, "database": 42}, TypeError, "database"),
    ],
)
def test_bad_arguments_are_refused_naming_them(
    arguments: dict[str, Any], error: type[Exception], message: str
) -> None:
    options = {"database": "postgresql://nobody@127.0.0.1:1/none", **arguments}
    with pytest.raises(error, match=message):
        PostgresSink(**options)


# --- migrations ---------------------------------------------------------------------------


async def test_migrations_run_once_however_many_processes_start_together(
    postgres: PostgresServer, schema: str
) -> None:
    # A pool per "process": each has to look at the database for itself.
    pools = [await asyncpg.create_pool(postgres.dsn, min_size=1, max_size=1) for _ in range(6)]
    try:
        results = await asyncio.gather(
            *(migrate(p, schema, "mirror", MIRROR_MIGRATIONS) for p in pools)
        )
        versions = [m.version for m in MIRROR_MIGRATIONS]
        assert sorted(results) == [[], [], [], [], [], versions]
        # Again, on a new pool: nothing to do.
        async with asyncpg.create_pool(postgres.dsn, min_size=1, max_size=1) as again:
            assert await migrate(again, schema, "mirror", MIRROR_MIGRATIONS) == []
            rows = await again.fetch(f"SELECT component, version FROM {schema}.schema_migrations")
        assert sorted(tuple(r) for r in rows) == [("mirror", v) for v in versions]
    finally:
        for p in pools:
            await p.close()


async def test_a_later_migration_is_applied_to_a_database_made_before_it(
    postgres: PostgresServer, schema: str
) -> None:
    newest = MIRROR_MIGRATIONS[-1].version
    later = (
        *MIRROR_MIGRATIONS,
        Migration(newest + 1, "a note", "ALTER TABLE {schema}.service_jobs ADD note text"),
    )
    # A database made by the first release (mirror version 1 only) takes the rest.
    async with asyncpg.create_pool(postgres.dsn, min_size=1, max_size=1) as p:
        assert await migrate(p, schema, "mirror", MIRROR_MIGRATIONS[:1]) == [1]
    async with asyncpg.create_pool(postgres.dsn, min_size=1, max_size=1) as p:
        assert await migrate(p, schema, "mirror", later) == list(range(2, newest + 2))
        assert await p.fetchval(f"SELECT to_regclass('{schema}.sync_fences')") is not None
        columns = await p.fetch(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = $1 AND table_name = 'service_jobs'",
            schema,
        )
    assert "note" in {c[0] for c in columns}
    # An older release meeting the newer database refuses to write to it.
    async with asyncpg.create_pool(postgres.dsn, min_size=1, max_size=1) as p:
        with pytest.raises(RuntimeError, match="newer than this release"):
            await migrate(p, schema, "mirror", MIRROR_MIGRATIONS)


# --- the mirror's upkeep ------------------------------------------------------------------


async def test_encrypted_buyer_data_is_read_back_rotated_and_forgotten(
    emulator: ServicesEmulator, client: ServicesClient, pool: asyncpg.Pool, schema: str
) -> None:
    key, new_key = BuyerKey.generate(), BuyerKey.generate()
    sink = PostgresSink(pool, seller_id=SELLER, schema=schema, buyer_key=key)
    await sync(emulator, client, sink, buyer_data="encrypt")

    us_jobs = emulator.store.find_jobs(marketplace_id=US)
    names = {j.details["buyer"]["name"] for j in us_jobs}
    stored = [json.loads(row["job"]) for row in (await mirrored(pool, schema)).values()]
    assert all(job["buyer"]["name"].startswith("spapi:enc:v1:") for job in stored)
    assert {job["buyer"]["name"] for job in stored}.isdisjoint(names)
    some = us_jobs[0]
    job = await sink.get(some.service_job_id)
    assert job is not None
    assert job.buyer is not None
    assert job.buyer.name == some.details["buyer"]["name"]

    # Rotation: everything re-encrypted under the new key, readable with it alone.
    rotated = PostgresSink(pool, seller_id=SELLER, schema=schema, buyer_key=[new_key, key])
    report = await rotated.rewrite_buyer_data("encrypt")
    assert report.jobs == len(us_jobs)
    only_new = PostgresSink(pool, seller_id=SELLER, schema=schema, buyer_key=new_key)
    async with only_new:
        names_back = {j.buyer.name async for j in only_new.iter_jobs() if j.buyer}
    assert names_back == names

    # Forgetting a buyer erases their data from the row and from every later sync.
    buyer = some.details["buyer"]["buyerId"]
    assert await only_new.forget_buyer(buyer) >= 1
    forgotten = await only_new.get(some.service_job_id)
    assert forgotten is not None
    assert forgotten.buyer is not None
    assert (forgotten.buyer.buyer_id, forgotten.buyer.name, forgotten.buyer.phone) == (None,) * 3
    await sync(emulator, client, only_new, full=True)
    again = await only_new.get(some.service_job_id)
    assert again is not None
    assert again.buyer == forgotten.buyer
    digests = await pool.fetchval(f"SELECT count(*) FROM {schema}.erased_buyers")
    assert digests == 1


def test_importing_the_sync_package_does_not_import_asyncpg() -> None:
    code = (
        "import sys, spapi_services.sync as s; s.PostgresSink; sys.exit('asyncpg' in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
