"""Fixtures for the emulator tests: a fake clock, a running emulator, a logged-in caller."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from _emulators import NOW, emulators

from spapi_services.emulator import FakeClock, ServicesEmulator

from ._helpers import Api


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def start_emulator(
    clock: FakeClock,
) -> AsyncIterator[Callable[..., Awaitable[ServicesEmulator]]]:
    """Start emulators with options; all are stopped afterwards.

    Unless told otherwise: the fake clock, 120 jobs, seed 7, and no throttling (the usage
    plan tests switch it on; elsewhere a burst of 2 would only get in the way).
    """
    async with emulators(jobs=120, seed=7, clock=clock, enforce_limits=False) as start:
        yield start


@pytest.fixture
async def emu(start_emulator: Callable[..., Awaitable[ServicesEmulator]]) -> ServicesEmulator:
    return await start_emulator()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def api(session: aiohttp.ClientSession, emu: ServicesEmulator) -> Api:
    caller = Api(session, emu)
    await caller.login()
    return caller
