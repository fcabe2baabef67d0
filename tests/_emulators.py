"""Starting emulators in tests: every one started is stopped when the test ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from spapi_services.emulator import ServicesEmulator

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
