"""PostgresSink's outbox: each change recorded with its row, in the page's transaction.

Against a real PostgreSQL: the outbox holds exactly the changes on_change was given, a
notification of their ids arrives on commit, a transaction repeated after its commit's
answer was lost records nothing twice (and still reports its changes), a fenced-out
write records nothing, and a mirror from before the outbox is judged by its stored rows.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest
from _servers import PostgresServer, running

from spapi_services import FencedOut, ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.feed import ChangeKind
from spapi_services.sync import PostgresSink, outbox_channel
from spapi_services.sync._postgres import MIRROR_MIGRATIONS, migrate

from .conftest import SINCE, US
from .test_on_change import Collected, move_some
from .test_sync import ids_of, sync

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
    return f"o_{uuid.uuid4().hex[:12]}"


async def outbox(pool: asyncpg.Pool, schema: str) -> list[asyncpg.Record]:
    return await pool.fetch(f"SELECT * FROM {schema}.change_outbox ORDER BY id")


class Listener:
    """A LISTEN connection keeping every notification's payload."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    def __call__(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.payloads.append(json.loads(payload))

    def ids(self) -> list[int]:
        return [i for p in self.payloads for i in p["ids"]]


async def test_every_change_is_in_the_outbox_with_its_row_and_notified_on_commit(
    emulator: ServicesEmulator,
    client: ServicesClient,
    pool: asyncpg.Pool,
    postgres: PostgresServer,
    schema: str,
) -> None:
    sink = PostgresSink(pool, seller_id=SELLER, schema=schema)
    async with sink:  # the schema exists before anyone listens
        pass
    listener = Listener()
    conn = await asyncpg.connect(postgres.dsn)
    try:
        await conn.add_listener(outbox_channel(schema), listener)
        seen = Collected()
        report = await sync(emulator, client, sink, since=SINCE, on_change=seen)
        rows = await outbox(pool, schema)
        assert len(rows) == report.changes == len(seen.changes) == len(ids_of(emulator, US))
        stored = {
            r["service_job_id"]: r["content_hash"]
            for r in await pool.fetch(f"SELECT * FROM {schema}.service_jobs")
        }
        for row, change in zip(rows, seen.changes, strict=True):
            assert row["seller_id"] == SELLER
            assert row["kind"] == "created" == change.kind
            assert row["service_job_id"] == change.service_job_id
            assert row["content_hash"] == change.content_hash == stored[row["service_job_id"]]
            assert json.loads(row["job"])["serviceJobId"] == row["service_job_id"]
            assert row["relayed_at"] is None

        moved, new = move_some(emulator)
        await sync(emulator, client, sink)
        later = (await outbox(pool, schema))[len(rows) :]
        assert {r["service_job_id"]: r["kind"] for r in later} == {
            **dict.fromkeys(moved, "updated"),
            new: "created",
        }
        await asyncio.sleep(0.2)  # notifications come on the listening connection's turn
        assert sorted(listener.ids()) == [r["id"] for r in await outbox(pool, schema)]
        assert {p["sellerId"] for p in listener.payloads} == {SELLER}
    finally:
        await conn.close()
    assert outbox_channel("spapi") == "spapi_changes"


def lose_each_first_answer(sink: PostgresSink) -> list[int]:
    """Make every transaction of the sink commit, then fail as if its answer was lost:
    each is run again, as ``Reconnecting`` does after a dropped connection."""
    db = sink._db()
    original = db.retry
    repeats: list[int] = []

    async def retry(attempt: Callable[[], Awaitable[Any]]) -> Any:
        calls = 0

        async def answer_lost_once() -> Any:
            nonlocal calls
            calls += 1
            answer = await attempt()
            if calls == 1:
                repeats.append(1)
                raise ConnectionResetError("the commit's answer was lost")
            return answer

        return await original(answer_lost_once)

    db.retry = retry  # type: ignore[method-assign]
    return repeats


async def test_a_transaction_repeated_after_a_lost_answer_records_nothing_twice(
    emulator: ServicesEmulator, client: ServicesClient, pool: asyncpg.Pool, schema: str
) -> None:
    sink = PostgresSink(pool, seller_id=SELLER, schema=schema)
    seen = Collected()
    async with sink:
        repeats = lose_each_first_answer(sink)
        report = await sync(emulator, client, sink, since=SINCE, windows=3, on_change=seen)
    assert len(repeats) > 3  # begin, each page, finish
    rows = await outbox(pool, schema)
    assert len(rows) == len({r["service_job_id"] for r in rows}) == len(ids_of(emulator, US))
    # Each change handed over once, with what the first (committed) attempt recorded.
    assert sorted(c.service_job_id for c in seen.changes) == sorted(
        r["service_job_id"] for r in rows
    )
    assert report.changes == len(rows)


async def test_a_fenced_out_write_records_no_change(
    emulator: ServicesEmulator, client: ServicesClient, pool: asyncpg.Pool, schema: str
) -> None:
    await sync(emulator, client, PostgresSink(pool, seller_id=SELLER, schema=schema), since=SINCE)
    before = await outbox(pool, schema)
    stale = PostgresSink(pool, seller_id=SELLER, schema=schema)
    await stale.take_fencing_token()
    await PostgresSink(pool, seller_id=SELLER, schema=schema).take_fencing_token()
    move_some(emulator)
    with pytest.raises(FencedOut):
        await sync(emulator, client, stale)
    assert await outbox(pool, schema) == before


async def test_without_outbox_changes_are_reported_but_not_recorded(
    emulator: ServicesEmulator, client: ServicesClient, pool: asyncpg.Pool, schema: str
) -> None:
    sink = PostgresSink(pool, seller_id=SELLER, schema=schema, outbox=False)
    report = await sync(emulator, client, sink, since=SINCE)
    assert report.changes == len(ids_of(emulator, US))
    assert await outbox(pool, schema) == []


async def test_a_mirror_from_before_the_outbox_is_judged_by_its_stored_rows(
    emulator: ServicesEmulator, client: ServicesClient, pool: asyncpg.Pool, schema: str
) -> None:
    async def columns() -> set[str]:
        rows = await pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = $1"
            " AND table_name = 'service_jobs'",
            schema,
        )
        return {row[0] for row in rows}

    await migrate(pool, schema, "mirror", MIRROR_MIGRATIONS[:2])
    assert "content_hash" not in await columns()
    await sync(emulator, client, PostgresSink(pool, seller_id=SELLER, schema=schema), since=SINCE)
    assert "content_hash" in await columns()
    # As rows written before the upgrade are: no hash kept.
    await pool.execute(f"UPDATE {schema}.service_jobs SET content_hash = NULL")
    await pool.execute(f"DELETE FROM {schema}.change_outbox")

    moved, new = move_some(emulator)
    seen = Collected()
    sink = PostgresSink(pool, seller_id=SELLER, schema=schema)
    await sync(emulator, client, sink, on_change=seen)
    assert {c.service_job_id: c.kind for c in seen.changes} == {
        **dict.fromkeys(moved, ChangeKind.UPDATED),
        new: ChangeKind.CREATED,
    }
    assert len(await outbox(pool, schema)) == 4
