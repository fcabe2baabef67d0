"""Fixtures for the fleet: a real PostgreSQL and Redis for the session, an emulator of
several sellers, and fleets that keep to a schema and a Redis prefix of their own."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from _servers import PostgresServer, RedisServer, running

from spapi_services.emulator import ServicesEmulator

#: Far enough back for every seeded job (they span the 90 days before the reference).
HISTORY = timedelta(days=92)

T = TypeVar("T")


async def eventually(what: str, check: Callable[[], Awaitable[T]], within: float = 30.0) -> T:
    """``check()``'s first truthy answer, polled; an AssertionError naming ``what`` after
    ``within`` seconds."""
    give_up = time.monotonic() + within
    while not (found := await check()):
        if time.monotonic() > give_up:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return found


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running(PostgresServer) as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running(RedisServer) as server:
        yield server


@pytest.fixture
def names() -> dict[str, str]:
    """A schema, a Redis key prefix and a queue no other test uses."""
    tag = uuid.uuid4().hex[:10]
    return {"schema": f"f_{tag}", "key_prefix": f"t{tag}", "queue": f"t{tag}:tasks"}


def world_reference() -> datetime:
    """An hour ago: every seeded job was last updated before the first sync starts, so a
    later sync's overlap finds none of them again."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture
async def emulator() -> AsyncIterator[ServicesEmulator]:
    async with ServicesEmulator(
        jobs=40, seed=5, sellers=3, enforce_limits=False, reference_time=world_reference()
    ) as emu:
        yield emu


@pytest.fixture
def fleet_options(
    postgres: PostgresServer,
    redis_server: RedisServer,
    emulator: ServicesEmulator,
    names: dict[str, str],
) -> Callable[..., dict[str, Any]]:
    def options(**overrides: Any) -> dict[str, Any]:
        return {
            "redis_url": redis_server.url,
            "database_url": postgres.dsn,
            "client_id": emulator.credentials.client_id,
            "client_secret": emulator.credentials.client_secret,
            "endpoint": emulator.url,
            "token_url": emulator.token_url,
            "history": HISTORY,
            "token_key": b"k" * 32,
            **names,
            **overrides,
        }

    return options
