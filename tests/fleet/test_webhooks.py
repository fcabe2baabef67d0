"""The fleet's webhooks in one process: endpoints with sealed secrets, the relay delivering
the outbox over real sockets, retries, dead letters, 410, redelivery, a relay that dies.

The receivers check every signature with the Standard Webhooks reference library.  The
retry schedule is cut to tenths of a second so that a test takes seconds; what is
asserted is what reached the receiver and what the tables say, never how long it took.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from _servers import PostgresServer

from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.fleet import DirectoryKey, Fleet, MemorySellerDirectory, Seller
from spapi_services.fleet._page import render_page, status_json
from spapi_services.webhooks import LOOPBACK_NETWORKS, RetrySchedule

from ._receiver import HookReceiver
from .conftest import eventually

ALL = [m.marketplace_id for m in MARKETPLACES]
KEY = DirectoryKey(DirectoryKey.generate())
FAST = RetrySchedule(delays=(0, 0.1, 0.1), jitter=0, slow_down=0.1)


def sellers_of(emu: ServicesEmulator) -> list[Seller]:
    return [
        Seller(seller_id=f"S{s.index}", refresh_token=s.refresh_token, marketplace_ids=ALL)
        for s in emu.sellers
    ]


@pytest.fixture
def make_fleet(
    emulator: ServicesEmulator, fleet_options: Callable[..., dict[str, Any]]
) -> Callable[..., Fleet]:
    def make(**overrides: Any) -> Fleet:
        options = {
            "directory": MemorySellerDirectory(sellers_of(emulator)),
            "directory_key": KEY,
            "webhook_allow_networks": LOOPBACK_NETWORKS,
            "webhook_schedule": FAST,
            "webhook_timeout": 2.0,
            "webhook_lease": 3.0,
            "webhook_poll_interval": 0.05,
            **overrides,
        }
        return Fleet(**fleet_options(**options))

    return make


@pytest.fixture
async def fleet(make_fleet: Callable[..., Fleet]) -> AsyncIterator[Fleet]:
    async with make_fleet() as f:
        yield f


@pytest.fixture
async def db(postgres: PostgresServer) -> AsyncIterator[asyncpg.Pool]:
    async with asyncpg.create_pool(postgres.dsn, min_size=1, max_size=2) as pool:
        yield pool


@contextlib.asynccontextmanager
async def receiving(secret: str = "") -> AsyncIterator[HookReceiver]:
    receiver = HookReceiver(secret=secret)
    await receiver.start()
    try:
        yield receiver
    finally:
        await receiver.stop()


@contextlib.asynccontextmanager
async def relaying(fleet: Fleet) -> AsyncIterator[None]:
    task = asyncio.create_task(fleet.relay_webhooks())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def endpoint_to(fleet: Fleet, receiver: HookReceiver, **options: Any) -> str:
    endpoint = await fleet.set_webhook(receiver.url, **options)
    receiver.secret = endpoint.secrets[0].export()
    return endpoint.id


async def outbox(db: asyncpg.Pool, fleet: Fleet, seller: str | None = None) -> list[Any]:
    return await db.fetch(
        f"SELECT * FROM {fleet.schema}.change_outbox WHERE $1::text IS NULL OR seller_id = $1"
        " ORDER BY id",
        seller,
    )


async def ids_of(db: asyncpg.Pool, fleet: Fleet, seller: str | None = None) -> set[str]:
    mirror = await db.fetchval(
        f"SELECT value FROM {fleet.schema}.mirror_meta WHERE name = 'mirror_id'"
    )
    return {f"msg_{mirror}_{row['id']}" for row in await outbox(db, fleet, seller)}


async def status_of(fleet: Fleet, endpoint_id: str) -> Any:
    (found,) = [w for w in await fleet.webhooks() if w.endpoint_id == endpoint_id]
    return found


# --- endpoints ------------------------------------------------------------------------------


async def test_an_endpoint_is_stored_with_its_secret_sealed_and_checked_first(
    fleet: Fleet, make_fleet: Callable[..., Fleet], db: asyncpg.Pool
) -> None:
    endpoint = await fleet.set_webhook(
        "http://127.0.0.1:9/hooks?token=abc", endpoint_id="crm", seller_id="S1"
    )
    secret = endpoint.secrets[0].export()
    row = await db.fetchrow(f"SELECT * FROM {fleet.schema}.webhook_endpoints")
    assert row["endpoint_id"] == "crm"
    raw = base64.b64decode(secret.removeprefix("whsec_"))
    assert secret not in row["secret"]
    assert secret.removeprefix("whsec_") not in row["secret"]
    assert raw not in row["secret"].encode()
    assert row["secret"].startswith("v1:")
    # The directory key opens it; moved to another endpoint's row, it does not open.
    assert KEY.open_secret("crm", row["secret"]) == secret
    with pytest.raises(ValueError, match="does not open"):
        KEY.open_secret("other", row["secret"])

    (shown,) = await fleet.webhooks()
    assert (shown.endpoint_id, shown.seller_id, shown.enabled) == ("crm", "S1", True)
    assert shown.url == "http://127.0.0.1:9/hooks"  # no query: it may carry a token
    assert "abc" not in json.dumps(shown.as_json())

    assert await fleet.remove_webhook("crm")
    assert not await fleet.remove_webhook("crm")
    assert await fleet.webhooks() == []

    guarded = make_fleet(webhook_allow_networks=())
    with pytest.raises(ValueError, match=r"url: 127\.0\.0\.1 is loopback.*ALLOW_NETWORKS"):
        await guarded.set_webhook("http://127.0.0.1:8001/hooks")
    with pytest.raises(ValueError, match=r"url: 10\.0\.0\.5 is private"):
        await guarded.set_webhook("http://10.0.0.5/hooks")
    with pytest.raises(ValueError, match=r"buyer_data: 'hash' needs the fleet's buyer key"):
        await fleet.set_webhook("http://127.0.0.1:9/", buyer_data="hash")
    with pytest.raises(ValueError, match=r"endpoint_id: must be 1 to 64"):
        await fleet.set_webhook("http://127.0.0.1:9/", endpoint_id="no spaces")
    with pytest.raises(ValueError, match=r"url: must start with https://"):
        await fleet.set_webhook("ftp://127.0.0.1/")
    assert await fleet.webhooks() == []


# --- delivering -------------------------------------------------------------------------------


async def test_each_change_reaches_each_endpoint_that_takes_it_signed_with_a_stable_id(
    fleet: Fleet, db: asyncpg.Pool
) -> None:
    async with receiving() as everyone, receiving() as one_seller:
        all_id = await endpoint_to(fleet, everyone)
        one_id = await endpoint_to(fleet, one_seller, seller_id="S1", buyer_data="drop")
        async with relaying(fleet):
            for seller in ("S0", "S1"):
                run = await fleet.run_seller(seller)
                assert run.outcome == "ok"
                assert run.changes == run.jobs == 40
            await eventually("80 recorded", lambda: _delivered_count(fleet, all_id, 80))
            await eventually("40 recorded", lambda: _delivered_count(fleet, one_id, 40))

        assert everyone.ids() == await ids_of(db, fleet)
        assert one_seller.ids() == await ids_of(db, fleet, "S1")
        assert all(a.verified for a in everyone.arrivals + one_seller.arrivals)
        rows = {f"msg_{r['id']}": r for r in await outbox(db, fleet)}
        for arrival in everyone.arrivals:
            event = arrival.json()
            row = rows["msg_" + arrival.webhook_id.rsplit("_", 1)[1]]
            assert event["type"] == f"service_job.{row['kind']}"
            assert event["data"]["sellerId"] == row["seller_id"]
            assert event["data"]["contentHash"] == row["content_hash"]
            assert event["data"]["job"] == json.loads(row["job"])
        with_buyer = [a for a in everyone.arrivals if "buyer" in a.json()["data"]["job"]]
        assert with_buyer
        for arrival in one_seller.arrivals:  # the buyer's personal data dropped
            buyer = arrival.json()["data"]["job"].get("buyer", {})
            assert not {"name", "phone", "buyerId"} & set(buyer)

    done = {w.endpoint_id: w for w in await fleet.webhooks()}
    assert (done[all_id].delivered, done[all_id].pending, done[all_id].dead) == (80, 0, 0)
    assert (done[one_id].delivered, done[one_id].pending) == (40, 0)
    assert done[all_id].last_delivered_at is not None
    assert await fleet.outbox_backlog() == 0


async def test_a_failing_receiver_is_retried_then_dead_lettered_and_redelivered_with_its_id(
    fleet: Fleet, db: asyncpg.Pool
) -> None:
    async with receiving() as receiver:
        endpoint_id = await endpoint_to(fleet, receiver, seller_id="S2")
        receiver.script = [500] * (40 * FAST.attempts)
        async with relaying(fleet):
            await fleet.run_seller("S2")
            dead = await eventually(
                "every delivery dead-lettered",
                lambda: _dead_count(fleet, endpoint_id, 40),
            )
            assert dead.last_status == 500
            assert dead.last_error == "HTTP 500"
            assert dead.last_error_at is not None
            assert dead.delivered == 0
            assert receiver.copies() == dict.fromkeys(await ids_of(db, fleet, "S2"), 3)
            first = receiver.ids()

            assert await fleet.redeliver(dead=True) == 40
            await eventually(
                "the dead letters delivered",
                lambda: _delivered_count(fleet, endpoint_id, 40),
            )
        assert receiver.ids() == first  # the same webhook-ids
        assert set(receiver.copies().values()) == {4}


async def _dead_count(fleet: Fleet, endpoint_id: str, count: int) -> Any:
    found = await status_of(fleet, endpoint_id)
    return found if found.dead == count else None


async def _settled(fleet: Fleet, endpoint_id: str, count: int) -> Any:
    found = await status_of(fleet, endpoint_id)
    return found if found.pending == 0 and found.dead + found.delivered == count else None


async def _delivered_count(fleet: Fleet, endpoint_id: str, count: int) -> Any:
    found = await status_of(fleet, endpoint_id)
    return found if found.delivered == count else None


async def test_410_disables_the_endpoint_until_its_letters_are_sent_again(
    fleet: Fleet, db: asyncpg.Pool
) -> None:
    async with receiving() as receiver:
        endpoint_id = await endpoint_to(fleet, receiver, seller_id="S0")
        receiver.script = [410]
        async with relaying(fleet):
            await fleet.run_seller("S0")
            gone = await eventually(
                "the endpoint disabled", lambda: _settled(fleet, endpoint_id, 40)
            )
            assert not gone.enabled
            assert gone.disabled_reason == "HTTP 410 Gone"
            # The attempts under way when it said so may have been delivered; the rest,
            # waiting or coming later, are dead letters.
            assert gone.dead >= 40 - 4
            assert len(receiver.arrivals) <= 4
            assert await fleet.redeliver(endpoint_id=endpoint_id, dead=True) == gone.dead
            back = await eventually(
                "the letters delivered", lambda: _delivered_count(fleet, endpoint_id, 40)
            )
            assert back.enabled
        assert receiver.ids() == await ids_of(db, fleet, "S0")


async def test_a_slow_down_answer_holds_the_endpoint_back_as_retry_after_says(
    fleet: Fleet, db: asyncpg.Pool
) -> None:
    async with receiving() as receiver:
        endpoint_id = await endpoint_to(fleet, receiver, seller_id="S0")
        receiver.script = [429]
        async with relaying(fleet):
            await fleet.run_seller("S0")
            await eventually(
                "every change delivered", lambda: _delivered_count(fleet, endpoint_id, 40)
            )
        assert receiver.ids() == await ids_of(db, fleet, "S0")
        retried = [w for w, n in receiver.copies().items() if n > 1]
        assert len(retried) == 1  # the one answered 429, tried again with its id


async def test_a_delivery_whose_relay_died_is_taken_over_with_the_same_id(
    fleet: Fleet, make_fleet: Callable[..., Fleet], db: asyncpg.Pool
) -> None:
    async with receiving() as receiver:
        endpoint_id = await endpoint_to(fleet, receiver, seller_id="S1")
        receiver.script = ["hang"]
        await fleet.run_seller("S1")
        async with relaying(fleet):
            await receiver.wait_for(1)
            stuck = receiver.arrivals[0].webhook_id
        # The relay is gone mid-delivery, its answer never recorded: the row is still
        # pending under a lease that has not run out.
        receiver.release.set()
        row = await db.fetchrow(
            f"SELECT state, leased_by, lease_until > now() AS leased"
            f" FROM {fleet.schema}.webhook_deliveries WHERE outbox_id = $1",
            int(stuck.rsplit("_", 1)[1]),
        )
        assert (row["state"], row["leased"]) == ("pending", True)
        assert row["leased_by"]

        async with make_fleet() as other, relaying(other):
            await eventually(
                "every change delivered", lambda: _delivered_count(other, endpoint_id, 40)
            )
        assert receiver.ids() == await ids_of(db, fleet, "S1")
        copies = receiver.copies()
        assert copies[stuck] == 2
        twice = [a.body for a in receiver.arrivals if a.webhook_id == stuck]
        assert twice[0] == twice[1]  # the same message, byte for byte


async def test_a_range_is_sent_again_to_an_endpoint_set_after_it_and_by_webhook_id(
    fleet: Fleet, db: asyncpg.Pool
) -> None:
    async with receiving() as first, receiving() as later:
        await endpoint_to(fleet, first, seller_id="S2")
        start = datetime.now(UTC) - timedelta(seconds=1)
        async with relaying(fleet):
            await fleet.run_seller("S2")
            await first.wait_for(40)
            later_id = await endpoint_to(fleet, later)
            assert await fleet.redeliver(endpoint_id=later_id, since=start, seller_id="S2") == 40
            await later.wait_for(40)
            assert later.ids() == first.ids()

            one = sorted(first.ids())[0]
            assert await fleet.redeliver(message_ids=[one]) == 2  # both endpoints take it
            await eventually("the repeat", lambda: _arrived(first, one, 2))
            await eventually("the repeat", lambda: _arrived(later, one, 2))
        with pytest.raises(ValueError, match=r"message_ids\[0\]: 'msg_x' is not a webhook-id"):
            await fleet.redeliver(message_ids=["msg_x"])
        with pytest.raises(ValueError, match=r"was sent by another mirror"):
            await fleet.redeliver(message_ids=["msg_0123456789_1"])
        with pytest.raises(ValueError, match=r"say what to send again"):
            await fleet.redeliver(endpoint_id=later_id)
        with pytest.raises(ValueError, match=r"endpoint_id: no webhook endpoint 'nope'"):
            await fleet.redeliver(endpoint_id="nope", dead=True)


async def _arrived(receiver: HookReceiver, webhook_id: str, times: int) -> bool:
    return receiver.copies()[webhook_id] >= times


async def test_the_status_shows_each_endpoint_and_the_backlog(fleet: Fleet) -> None:
    async with receiving() as receiver:
        endpoint_id = await endpoint_to(fleet, receiver, seller_id="S0")
        await fleet.run_seller("S0")  # no relay runs: the changes wait
        assert await fleet.outbox_backlog() == 40
        webhooks = await fleet.webhooks()
        statuses = await fleet.status()
        data = status_json(statuses, webhooks=webhooks, backlog=40)
        assert data["webhooks"]["backlog"] == 40
        (shown,) = data["webhooks"]["endpoints"]
        assert shown["endpointId"] == endpoint_id
        assert shown["url"] == receiver.url
        page = render_page(statuses, [], webhooks=webhooks, backlog=40)
        assert f'data-endpoint="{endpoint_id}"' in page
        assert "40 changes waiting" in page


def test_the_webhook_settings_are_read_from_the_environment() -> None:
    from spapi_services.fleet._env import options_from_env

    base = {"SPAPI_FLEET_REDIS_URL": "redis://h/0", "SPAPI_FLEET_DATABASE_URL": "postgresql://h/d"}
    options = options_from_env(
        {
            **base,
            "SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8, 10.20.0.0/16",
            "SPAPI_FLEET_WEBHOOK_DELAYS": "0,5,60",
            "SPAPI_FLEET_WEBHOOK_TIMEOUT_SECONDS": "4",
            "SPAPI_FLEET_OUTBOX_RETENTION_DAYS": "2",
            "SPAPI_FLEET_RELAY_WEBHOOKS": "0",
        }
    )
    assert options["webhook_allow_networks"] == ["127.0.0.0/8", "10.20.0.0/16"]
    assert options["webhook_schedule"].delays == (0.0, 5.0, 60.0)
    assert options["webhook_timeout"] == 4.0
    assert options["outbox_retention"] == timedelta(days=2)
    assert options["relay_webhooks"] is False
    fleet = Fleet(**options)
    assert fleet.webhook_lease == 19.0  # the timeout and 15 s
    assert not fleet.relay_webhooks_enabled
    for name, text, says in [
        ("SPAPI_FLEET_WEBHOOK_DELAYS", "0,soon", "give the seconds before each attempt"),
        ("SPAPI_FLEET_RELAY_WEBHOOKS", "maybe", "must be 1 or 0"),
        ("SPAPI_FLEET_WEBHOOK_ALLOW_NETWORKS", "not-a-net", "allow_networks"),
    ]:
        with pytest.raises(ValueError, match=says):
            Fleet(**options_from_env({**base, name: text}))
    with pytest.raises(ValueError, match="webhook_lease: must be longer than webhook_timeout"):
        Fleet(**options_from_env(base), webhook_timeout=10, webhook_lease=5)
