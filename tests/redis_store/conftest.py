"""Fixtures for the Redis-backed plan and token cache: a real ``redis-server`` per module
(emptied before each test), and a private one for the tests that kill or freeze it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio
from _servers import RedisServer, running

from ._helpers import Clock


@pytest.fixture(scope="module")
def shared_server() -> Iterator[RedisServer]:
    with running(RedisServer) as server:
        yield server


@pytest.fixture
def redis_url(shared_server: RedisServer) -> str:
    """The URL of an empty Redis."""
    assert shared_server.call("FLUSHALL") == b"+OK"
    return shared_server.url


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A Redis of this test's own, to kill, freeze and restart."""
    with running(RedisServer) as server:
        yield server


@pytest.fixture
async def inspect(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A connection of the test's own, to look at what the SDK stored."""
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await (getattr(client, "aclose", None) or client.close)()  # close() before redis-py 5.0.1


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def redis_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """What spapi_services.redis logs, from DEBUG up."""
    caplog.set_level(logging.DEBUG, logger="spapi_services.redis")
    return caplog
