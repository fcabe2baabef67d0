"""pytest fixtures: a running emulator, and an SDK client pointed at it.

Registered as a ``pytest11`` entry point, so any project that installs the SDK can write::

    async def test_cancel(services_emulator, services_client):
        job = services_emulator.store.find_jobs(status="NOT_SERVICED")[0]
        await services_client.service_jobs.cancel(job.service_job_id, reason_code="V1")

Both fixtures are function-scoped and async (pytest-asyncio).  The emulator can be
configured per test with a marker whose keywords go to :class:`ServicesEmulator`::

    @pytest.mark.services_emulator(jobs=50, seed=7, enforce_limits=False)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

if TYPE_CHECKING:
    from .server import ServicesEmulator

__all__ = ["DEFAULT_MARKETPLACE", "services_client", "services_emulator"]

#: The marketplace the client fixture is set to (the US marketplace).
DEFAULT_MARKETPLACE = "ATVPDKIKX0DER"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "services_emulator(**options): options for the services_emulator fixture "
        "(keywords of spapi_services.emulator.ServicesEmulator)",
    )


@pytest_asyncio.fixture
async def services_emulator(request: pytest.FixtureRequest) -> AsyncIterator[ServicesEmulator]:
    """A running emulator (100 jobs, seed 0 unless a ``services_emulator`` marker says)."""
    # Imported here: loading the plugin (in every pytest run) should not load the server.
    from .server import ServicesEmulator

    options: dict[str, Any] = {"jobs": 100, "seed": 0}
    marker = request.node.get_closest_marker("services_emulator")
    if marker is not None:
        options.update(marker.kwargs)
    async with ServicesEmulator(**options) as emu:
        yield emu


@pytest_asyncio.fixture
async def services_client(services_emulator: ServicesEmulator) -> AsyncIterator[Any]:
    """A ``ServicesClient`` for the emulator, in the US marketplace; closed afterwards."""
    # Imported here so the emulator works without the client (and the other way round).
    from spapi_services import ServicesClient

    client = ServicesClient(
        services_emulator.credentials,
        endpoint=services_emulator.url,
        token_url=services_emulator.token_url,
        marketplace_id=DEFAULT_MARKETPLACE,
    )
    async with client:
        yield client
