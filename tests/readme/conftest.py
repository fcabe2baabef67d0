"""Fixtures for the README tests: an emulator with its clock pinned, and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from _emulators import emulators

from spapi_services import ServicesClient
from spapi_services.emulator import FakeClock, ServicesEmulator

from ._readme import US, next_wednesday


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[ServicesEmulator]:
    """A running emulator whose clock stands still at midnight of the next Wednesday."""
    async with emulators(jobs=60, seed=3, clock=FakeClock(next_wednesday())) as start:
        yield await start()


@pytest_asyncio.fixture
async def client(emulator: ServicesEmulator) -> AsyncIterator[ServicesClient]:
    """A client of the emulator in the US marketplace, as the README's prose assumes."""
    async with ServicesClient(
        emulator.credentials,
        endpoint=emulator.url,
        token_url=emulator.token_url,
        marketplace_id=US,
    ) as services:
        yield services
