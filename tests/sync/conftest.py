"""Fixtures for the sync tests: an emulator over real sockets and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from _emulators import NOW

from spapi_services import RetryPolicy, ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.catalog import MARKETPLACES

US = "ATVPDKIKX0DER"
ALL_MARKETPLACES = [m.marketplace_id for m in MARKETPLACES]
#: Far enough back to cover every seeded job (they span the 90 days before the reference).
SINCE = NOW - timedelta(days=95)


@pytest.fixture
async def emulator(request: pytest.FixtureRequest) -> AsyncIterator[ServicesEmulator]:
    """A running emulator: 150 jobs, seed 3, no throttling unless a marker says otherwise.

    Its clock starts at NOW, and its world is built around midnight before: no seeded job
    was updated in the last few minutes, which a later run's overlap would pick up again.
    The syncs run as of the emulator's clock (``until``), not the machine's.
    """
    options: dict[str, Any] = {"jobs": 150, "seed": 3, "enforce_limits": False, "at": NOW}
    marker = request.node.get_closest_marker("emulator")
    if marker is not None:
        options.update(marker.kwargs)
    async with ServicesEmulator(**options) as emu:
        yield emu


@pytest.fixture
async def client(emulator: ServicesEmulator) -> AsyncIterator[ServicesClient]:
    """A client of the emulator, in the US marketplace, that does not retry."""
    async with ServicesClient(
        emulator.credentials,
        endpoint=emulator.url,
        token_url=emulator.token_url,
        marketplace_id=US,
        retry=RetryPolicy(max_retries=0),
    ) as c:
        yield c


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "emulator(**options): ServicesEmulator options")
