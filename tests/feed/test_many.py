"""Many feeds in one process: one client's bucket shared by all its feeds, and several
sellers' feeds merged into one iterator.  These run on real time (the buckets do), each
bounded to about a second."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from _emulators import emulators

from spapi_services import AuthenticationError, LwaCredentials, ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.feed import JobChange, JobFeed, SellerChange, merge_changes

from .conftest import US

LIST = "getServiceJobs"


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[ServicesEmulator]:
    async with emulators(jobs=20, seed=5, sellers=3) as start:
        yield await start()


def touch_one(emu: ServicesEmulator, seller: int, status: str = "HOLD") -> str:
    store = emu.sellers[seller].store
    job = store.find_jobs(marketplace_id=US)[0]
    store.set_job_status(job.service_job_id, status)
    return job.service_job_id


def others() -> set[asyncio.Task[Any]]:
    return {
        task
        for task in asyncio.all_tasks() - {asyncio.current_task()}  # type: ignore[operator]
        if not task.get_coro().__qualname__.startswith(  # type: ignore[union-attr]
            ("RequestHandler.", "BaseSelectorEventLoop._accept_connection")
        )
    }


async def drain(feed: JobFeed, seconds: float) -> list[JobChange]:
    seen: list[JobChange] = []
    try:
        async with asyncio.timeout(seconds):
            async for change in feed:
                seen.append(change)
    except TimeoutError:
        pass
    return seen


async def test_many_feeds_of_one_client_share_its_bucket(emu: ServicesEmulator) -> None:
    # The published plan (10 a second, burst 40) in the client: 20 feeds polling ten
    # times a second ask for 200 requests a second; the client's one bucket lets out its
    # burst (a cold bucket's slow start spreads it: the 20 first polls within about 1.7 s
    # at 10/s), then its rate, and none is refused.  (The emulator's bucket holds 60, not
    # 40: it shares this test's event loop, which can bunch requests the client spaced
    # out; feeds with buckets of their own would let out 20 × 38 at once.)
    emu.limits.set(LIST, rate=10, burst=60)
    since = datetime.now(UTC) - timedelta(seconds=1)
    job = touch_one(emu, 0)
    async with ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
    ) as client:
        await client.service_jobs.get(job)  # the token, before the clock starts
        feeds = [client.service_jobs.changes(since=since, interval=0.1) for _ in range(20)]
        began = asyncio.get_running_loop().time()
        results = await asyncio.gather(*(drain(feed, 2.5) for feed in feeds))
        elapsed = asyncio.get_running_loop().time() - began

    assert emu.count(LIST, 429) == 0
    sent = emu.count(LIST, 200)
    assert sent <= 38 + 10 * elapsed + 1  # the bucket's burst (less headroom), its rate
    # A poll answered as the deadline cancelled it is sent but not counted by its feed.
    counted = sum(feed.requests for feed in feeds)
    assert counted <= sent <= counted + len(feeds)
    assert all([c.job.service_job_id for c in seen] == [job] for seen in results)


@pytest_asyncio.fixture
async def clients(emu: ServicesEmulator) -> AsyncIterator[dict[str, ServicesClient]]:
    async with aiohttp.ClientSession() as session:
        made = {
            f"seller-{i}": ServicesClient(
                seller.credentials,
                endpoint=emu.url,
                token_url=emu.token_url,
                marketplace_id=US,
                session=session,
            )
            for i, seller in enumerate(emu.sellers)
        }
        yield made
        for client in made.values():
            await client.aclose()


def feeds_of(clients: dict[str, ServicesClient], since: datetime) -> dict[str, JobFeed]:
    return {s: c.service_jobs.changes(since=since, interval=0.1) for s, c in clients.items()}


async def test_merged_feeds_tag_each_change_with_its_seller(
    emu: ServicesEmulator, clients: dict[str, ServicesClient]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    touched = {f"seller-{i}": touch_one(emu, i) for i in range(3)}
    feeds = feeds_of(clients, since)

    got: dict[str, str] = {}
    async with asyncio.timeout(10), merge_changes(feeds) as merged:
        async for item in merged:
            assert isinstance(item, SellerChange)
            assert item.seller not in got  # each once
            got[item.seller] = item.change.job.service_job_id or ""
            if len(got) == 3:
                break
    assert got == touched
    assert others() == set()
    assert merged.sellers == ()


async def test_a_failing_seller_is_dropped_with_on_error(
    emu: ServicesEmulator, clients: dict[str, ServicesClient]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    touched = touch_one(emu, 1)
    creds = emu.credentials
    async with ServicesClient(
        LwaCredentials(creds.client_id, creds.client_secret, "Atzr|revoked"),
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
    ) as refused:
        feeds = {**feeds_of(clients, since), "revoked": refused.service_jobs.changes()}
        failures: list[tuple[str, BaseException]] = []
        async with (
            asyncio.timeout(10),
            merge_changes(feeds, on_error=lambda s, e: failures.append((s, e))) as merged,
        ):
            item = await anext(merged)
        assert (item.seller, item.change.job.service_job_id) == ("seller-1", touched)
        assert [(s, type(e)) for s, e in failures] == [("revoked", AuthenticationError)]
    assert others() == set()


async def test_without_on_error_a_failure_ends_the_merge_and_closes_every_feed(
    emu: ServicesEmulator, clients: dict[str, ServicesClient]
) -> None:
    creds = emu.credentials
    async with ServicesClient(
        LwaCredentials(creds.client_id, creds.client_secret, "Atzr|revoked"),
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
    ) as refused:
        feeds = {**feeds_of(clients, datetime.now(UTC)), "revoked": refused.service_jobs.changes()}
        merged = merge_changes(feeds)
        with pytest.raises(AuthenticationError) as raised:
            async with asyncio.timeout(10):
                await anext(merged)
    assert "seller 'revoked'" in "".join(raised.value.__notes__)
    assert others() == set()


async def test_cancelling_the_merged_iterator_closes_every_feed(
    clients: dict[str, ServicesClient],
) -> None:
    merged = merge_changes(feeds_of(clients, datetime.now(UTC)))
    consumer = asyncio.create_task(anext(merged))
    await asyncio.sleep(0.3)  # the feeds are polling, with nothing to yield
    assert len(others()) == 1 + 3  # the consumer, and one step per feed
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert others() == set()


async def test_a_merged_iterator_dropped_after_break_stops_its_feeds(
    emu: ServicesEmulator, clients: dict[str, ServicesClient]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    touch_one(emu, 0)
    async with asyncio.timeout(10):
        async for _item in merge_changes(feeds_of(clients, since)):
            break
    gc.collect()
    await asyncio.sleep(0)  # the cancelled steps finish
    await asyncio.sleep(0)
    assert others() == set()


def test_merge_refuses_what_is_not_a_mapping_of_feeds() -> None:
    with pytest.raises(TypeError, match="feeds: expected a mapping"):
        merge_changes([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"feeds\['a'\]: expected an async iterator"):
        merge_changes({"a": [1]})  # type: ignore[dict-item]
