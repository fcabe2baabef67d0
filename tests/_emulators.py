"""Starting emulators in tests: every one started is stopped when the test ends.

Every test world is built at :data:`NOW`, whatever the date the suite runs on: an emulator
started with ``at=NOW`` has a wall clock that reads ``NOW`` when it is made and then runs
in real time, so usage plans still refill and tokens still expire.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from spapi_services.emulator import ServicesEmulator

#: Wednesday noon, UTC: the moment every test world is built around.
NOW = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)

StartEmulator = Callable[..., Awaitable[ServicesEmulator]]


@contextlib.asynccontextmanager
async def emulators(**defaults: Any) -> AsyncIterator[StartEmulator]:
    """A function that starts an emulator with ``defaults`` overridden by its keywords."""
    started: list[ServicesEmulator] = []

    async def start(**options: Any) -> ServicesEmulator:
        emu = ServicesEmulator(**{**defaults, **options})
        started.append(emu)
        return await emu.start()

    try:
        yield start
    finally:
        for emu in started:
            await emu.stop()
