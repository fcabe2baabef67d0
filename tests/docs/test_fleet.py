"""The fleet guide's block, against the emulator (two sellers), a real Redis and a real
PostgreSQL.  Without redis-server or PostgreSQL it skips (fails under
SPAPI_REQUIRE_SERVERS=1)."""

from __future__ import annotations

import base64
import contextlib
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _pages import US, run_fragment
from _servers import PostgresServer, RedisServer, running

from spapi_services.emulator import ServicesEmulator
from spapi_services.fleet import DirectoryKey

from ._docs import block


@pytest.fixture
async def sellers() -> AsyncIterator[ServicesEmulator]:
    """Two sellers, their worlds built an hour ago (every job there before the sync)."""
    reference = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    async with ServicesEmulator(
        jobs=30, seed=5, sellers=2, enforce_limits=False, reference_time=reference
    ) as emu:
        yield emu


async def test_a_seller_added_synced_and_reported(
    sellers: ServicesEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    tag = uuid.uuid4().hex[:10]
    with running(PostgresServer) as postgres, running(RedisServer) as redis_server:
        for name, value in {
            "SPAPI_CLIENT_ID": sellers.credentials.client_id,
            "SPAPI_CLIENT_SECRET": sellers.credentials.client_secret,
            "SPAPI_FLEET_REDIS_URL": redis_server.url,
            "SPAPI_FLEET_DATABASE_URL": postgres.dsn,
            "SPAPI_FLEET_DIRECTORY_KEY": DirectoryKey.generate(),
            "SPAPI_FLEET_TOKEN_KEY": base64.b64encode(b"k" * 32).decode(),
            "SPAPI_FLEET_ENDPOINT": sellers.url,
            "SPAPI_FLEET_TOKEN_URL": sellers.token_url,
            "SPAPI_FLEET_HISTORY_DAYS": "92",
            "SPAPI_FLEET_SCHEMA": f"f_{tag}",
            "SPAPI_FLEET_KEY_PREFIX": f"t{tag}",
            "SPAPI_FLEET_QUEUE": f"t{tag}:tasks",
        }.items():
            monkeypatch.setenv(name, value)
        refresh_token = sellers.sellers[1].refresh_token
        names: dict[str, Any] = {"refresh_token": refresh_token}
        printed = io.StringIO()

        with contextlib.redirect_stdout(printed):
            await run_fragment(block("fleet"), names)

    expected = len(sellers.sellers[1].store.find_jobs(marketplace_id=US))
    run = names["run"]
    assert (run.seller_id, run.outcome, run.jobs) == ("A1B2C3D4", "ok", expected)
    first, status = printed.getvalue().splitlines()
    assert first == f"ok {expected}"
    seller_id, state, *_, total = status.split(" ")
    assert (seller_id, state, total) == ("A1B2C3D4", "ok", str(expected))
