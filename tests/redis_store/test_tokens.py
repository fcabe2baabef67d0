"""RedisTokenCache against a real redis-server: one token exchange for every process.

Cache objects with connections of their own stand for processes; one test runs the
owner of an exchange in a real process and kills it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import pytest
import redis.asyncio
from _servers import RedisServer

from spapi_services import AccessToken, AuthenticationError, LwaCredentials, TokenCache
from spapi_services._auth import token_key
from spapi_services.redis import RedisTokenCache

from ._helpers import Clock, records

CREDENTIALS = LwaCredentials(
    "amzn1.application-oa2-client.test", "client-secret-never-stored", "Atzr|refresh-never-stored"
)
KEY = token_key(CREDENTIALS)
ENCRYPTION_KEY = bytes(range(32))


class Exchanges:
    """An LWA stand-in: counts exchanges and hands out numbered tokens."""

    def __init__(self, seconds: float = 0.0, expires_in: float = 3540.0) -> None:
        self.count = 0
        self.seconds = seconds
        self.expires_in = expires_in

    async def __call__(self) -> AccessToken:
        self.count += 1
        token = f"Atza|access-{self.count}"
        await asyncio.sleep(self.seconds)
        return AccessToken(token, self.expires_in)


async def close(*caches: RedisTokenCache) -> None:
    for cache in caches:
        await cache.aclose()


async def test_it_is_a_token_cache(redis_url: str) -> None:
    async with RedisTokenCache(redis_url) as cache:
        assert isinstance(cache, TokenCache)


async def test_one_exchange_serves_every_process_and_task(redis_url: str) -> None:
    exchange = Exchanges(seconds=0.1)
    caches = [RedisTokenCache(redis_url) for _ in range(4)]
    try:
        got = await asyncio.gather(
            *(cache.get_or_exchange(KEY, exchange) for cache in caches for _ in range(5))
        )
        async with RedisTokenCache(redis_url) as late:
            later = await late.get_or_exchange(KEY, exchange)
    finally:
        await close(*caches)
    assert exchange.count == 1
    assert {token.value for token in got} == {"Atza|access-1"}
    assert later.value == "Atza|access-1"
    assert 3530 < later.expires_in <= 3540


async def test_the_token_is_kept_as_long_as_it_may_be_used_and_no_secret_is_stored(
    redis_url: str, inspect: redis.asyncio.Redis
) -> None:
    async with RedisTokenCache(redis_url, key_prefix="shop1") as cache:
        await cache.get_or_exchange(KEY, Exchanges(expires_in=1800))
        name = cache.key(KEY)
    assert name == f"shop1:token:{{{KEY}}}"
    assert [k.decode() for k in await inspect.keys("*")] == [name]  # the lock is gone
    assert 1_790_000 < await inspect.pttl(name) <= 1_800_000
    assert await inspect.get(name) == b"p1:Atza|access-1"
    assert repr(cache).startswith("RedisTokenCache(redis at 127.0.0.1:")
    await assert_no_secret_in(inspect)


async def assert_no_secret_in(inspect: redis.asyncio.Redis, *also: str) -> None:
    """Neither the refresh token nor the client secret (nor ``also``) in any key or value."""
    secrets = [CREDENTIALS.refresh_token, CREDENTIALS.client_secret, *also]
    async for key in inspect.scan_iter("*"):
        kind = (await inspect.type(key)).decode()
        if kind == "string":
            values = [await inspect.get(key)]
        elif kind == "hash":
            values = list((await inspect.hgetall(key)).values())
        else:
            raise AssertionError(f"unexpected {kind} at {key!r}")
        for blob in [key, *values]:
            for secret in secrets:
                assert secret.encode() not in blob, key


async def test_encrypted_tokens_are_read_with_the_key_and_missed_without_it(
    redis_url: str, inspect: redis.asyncio.Redis
) -> None:
    exchange = Exchanges()
    writer = RedisTokenCache(redis_url, encryption_key=ENCRYPTION_KEY)
    reader = RedisTokenCache(redis_url, encryption_key=ENCRYPTION_KEY)
    stranger = RedisTokenCache(redis_url, encryption_key=bytes(32))
    plain = RedisTokenCache(redis_url)
    try:
        assert (await writer.get_or_exchange(KEY, exchange)).value == "Atza|access-1"
        assert (await reader.get_or_exchange(KEY, exchange)).value == "Atza|access-1"
        assert exchange.count == 1
        stored = await inspect.get(writer.key(KEY))
        assert stored.startswith(b"e1:")
        await assert_no_secret_in(inspect, "Atza|access-1")
        # Another key, or none: a miss and an exchange of its own, never a crash, and the
        # sealed token is left alone.
        assert (await stranger.get_or_exchange(KEY, exchange)).value == "Atza|access-2"
        assert (await plain.get_or_exchange(KEY, exchange)).value == "Atza|access-3"
        assert await inspect.get(writer.key(KEY)) == stored
        assert repr(writer).endswith(", encrypted)")
    finally:
        await close(writer, reader, stranger, plain)


async def test_a_value_that_does_not_open_reads_as_a_miss_and_is_replaced(
    redis_url: str, inspect: redis.asyncio.Redis
) -> None:
    exchange = Exchanges()
    sealed = RedisTokenCache(redis_url, encryption_key=ENCRYPTION_KEY)
    try:
        name = sealed.key(KEY)
        for damaged in (b"e1:AAAA", b"e1:not base64!", b"p1:Atza|plain", b"garbage"):
            await inspect.set(name, damaged, px=60_000)
            async with RedisTokenCache(redis_url, encryption_key=ENCRYPTION_KEY) as fresh:
                token = await fresh.get_or_exchange(KEY, exchange)
            assert token.value == f"Atza|access-{exchange.count}"
            assert (await inspect.get(name)).startswith(b"e1:")
        # A sealed value moved under another seller's key does not open there either.
        other = token_key(LwaCredentials("amzn1.application-oa2-client.test", "s", "Atzr|other"))
        await inspect.set(sealed.key(other), await inspect.get(name), px=60_000)
        before = exchange.count
        assert (await sealed.get_or_exchange(other, exchange)).value != token.value
        assert exchange.count == before + 1
    finally:
        await sealed.aclose()


@pytest.mark.parametrize("key", [b"short", b"x" * 33, "a" * 32])
def test_an_encryption_key_of_the_wrong_size_is_refused(key: object) -> None:
    with pytest.raises(ValueError, match=r"encryption_key must be 16, 24 or 32 bytes") as caught:
        RedisTokenCache("redis://127.0.0.1:1/0", encryption_key=key)  # type: ignore[arg-type]
    assert "xxxx" not in str(caught.value)


async def test_a_refused_token_is_forgotten_by_every_process(
    redis_url: str, inspect: redis.asyncio.Redis
) -> None:
    exchange = Exchanges()
    first, second = RedisTokenCache(redis_url), RedisTokenCache(redis_url)
    try:
        token = await first.get_or_exchange(KEY, exchange)
        await first.invalidate(KEY, "Atza|some-other-token")  # not the stored one: kept
        assert await inspect.exists(first.key(KEY))
        await first.invalidate(KEY, token.value)
        assert not await inspect.exists(first.key(KEY))
        assert (await second.get_or_exchange(KEY, exchange)).value == "Atza|access-2"
        assert (await first.get_or_exchange(KEY, exchange)).value == "Atza|access-2"
    finally:
        await close(first, second)
    assert exchange.count == 2


async def test_a_failed_exchange_lets_the_next_process_try_at_once(redis_url: str) -> None:
    started = asyncio.Event()
    refusals = 0

    async def refused() -> AccessToken:
        nonlocal refusals
        refusals += 1
        started.set()
        await asyncio.sleep(0.05)
        raise AuthenticationError("Login with Amazon refused the token exchange (invalid_grant)")

    exchange = Exchanges()
    # A lease far longer than the test may take: only a released lock lets it finish.
    first, second = RedisTokenCache(redis_url, lease=30), RedisTokenCache(redis_url, lease=30)
    try:
        failing = [asyncio.create_task(first.get_or_exchange(KEY, refused)) for _ in range(3)]
        await started.wait()
        token = await asyncio.wait_for(second.get_or_exchange(KEY, exchange), 10)
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
    finally:
        await close(first, second)
    assert token.value == "Atza|access-1"
    # The tasks of the failing process share its one failure rather than each asking.
    assert all(isinstance(o, AuthenticationError) for o in outcomes)
    assert refusals == 1
    assert exchange.count == 1


async def test_an_exchange_cancelled_lets_the_next_process_try_at_once(redis_url: str) -> None:
    started = asyncio.Event()

    async def stuck() -> AccessToken:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("never")

    exchange = Exchanges()
    # A lease far longer than the test may take, renewed often: only a released lock (and a
    # stopped renewal) lets the second process in.
    first = RedisTokenCache(redis_url, lease=30)
    second = RedisTokenCache(redis_url, lease=30)
    try:
        owner = asyncio.create_task(first.get_or_exchange(KEY, stuck))
        await started.wait()
        owner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await owner
        current = asyncio.current_task()
        assert [t for t in asyncio.all_tasks() if t is not current and not t.done()] == []
        token = await asyncio.wait_for(second.get_or_exchange(KEY, exchange), 10)
        assert token.value == "Atza|access-1"
        # The cancelled process asks again and is served the stored token: no exchange.
        again = await first.get_or_exchange(KEY, stuck)
        assert again.value == "Atza|access-1"
    finally:
        await close(first, second)
    assert exchange.count == 1


_OWNER = """
import asyncio, sys
from spapi_services.redis import RedisTokenCache

async def main():
    cache = RedisTokenCache(sys.argv[1], lease=float(sys.argv[3]))

    async def stuck():
        print("exchanging", flush=True)
        await asyncio.Event().wait()

    await cache.get_or_exchange(sys.argv[2], stuck)

asyncio.run(main())
"""


async def test_a_live_owner_keeps_its_lease_and_a_dead_ones_is_taken_over(redis_url: str) -> None:
    lease = 0.4
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _OWNER, redis_url, KEY, str(lease), stdout=asyncio.subprocess.PIPE
    )
    exchange = Exchanges()
    waiter = RedisTokenCache(redis_url, lease=lease)
    try:
        assert owner.stdout is not None
        assert await asyncio.wait_for(owner.stdout.readline(), 30) == b"exchanging\n"
        waiting = asyncio.create_task(waiter.get_or_exchange(KEY, exchange))
        await asyncio.sleep(3 * lease)  # the owner renews its lease: nobody else exchanges
        assert exchange.count == 0
        assert not waiting.done()
        os.kill(owner.pid, signal.SIGKILL)
        token = await asyncio.wait_for(waiting, 10)
    finally:
        if owner.returncode is None:
            owner.kill()
        await owner.wait()
        await waiter.aclose()
    assert token.value == "Atza|access-1"
    assert exchange.count == 1


async def test_without_redis_tokens_are_exchanged_and_kept_in_the_process(
    own_server: RedisServer, clock: Clock, redis_logs: pytest.LogCaptureFixture
) -> None:
    exchange = Exchanges()
    first = RedisTokenCache(own_server.url, clock=clock)
    second = RedisTokenCache(own_server.url, clock=clock)
    try:
        assert (await first.get_or_exchange(KEY, exchange)).value == "Atza|access-1"
        own_server.kill()
        # The second process cannot read the shared token: it exchanges its own, once.
        got = await asyncio.gather(*(second.get_or_exchange(KEY, exchange) for _ in range(5)))
        assert {t.value for t in got} == {"Atza|access-2"}
        assert not second.shared
        await second.invalidate(KEY, "Atza|access-2")  # nothing to reach: no error
        assert (await second.get_or_exchange(KEY, exchange)).value == "Atza|access-3"
        assert len(records(redis_logs, logging.WARNING)) == 1
        assert "access tokens fall back" in records(redis_logs, logging.WARNING)[0].getMessage()

        own_server.start()  # empty: the token it held is gone
        clock.advance(5.1)
        third = RedisTokenCache(own_server.url)
        try:
            await second.invalidate(KEY, "Atza|access-3")  # back on Redis
            assert second.shared
            tokens = await asyncio.gather(
                second.get_or_exchange(KEY, exchange), third.get_or_exchange(KEY, exchange)
            )
        finally:
            await third.aclose()
    finally:
        await close(first, second)
    assert {t.value for t in tokens} == {"Atza|access-4"}
    assert len(records(redis_logs, logging.INFO)) == 1
