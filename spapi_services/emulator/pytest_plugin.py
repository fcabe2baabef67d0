"""pytest fixtures: a running emulator, and an SDK client pointed at it.

Registered as a ``pytest11`` entry point, so a project that installs the SDK (and
pytest-asyncio, which runs the fixtures) can write::

    @pytest.mark.asyncio
    async def test_cancel(services_emulator, services_client):
        job = services_emulator.store.find_jobs(status="NOT_SERVICED")[0]
        await services_client.service_jobs.cancel(job.service_job_id, reason_code="V1")

Both fixtures are function-scoped and run in the test's function-scoped event loop.  The
emulator can be configured per test (or class, or module) with a marker whose keywords
go to :class:`~spapi_services.emulator.ServicesEmulator`::

    @pytest.mark.services_emulator(jobs=50, seed=7, enforce_limits=False)

This module is loaded by every pytest run of every project that has the SDK installed,
so it imports nothing but pytest: the fixtures, and the emulator behind them, are
registered when pytest is configured and imported only where pytest-asyncio can run them.
Without pytest-asyncio the rest of the suite runs as usual and a test asking for a
fixture fails with a message saying what to install.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import pytest

__all__ = ["DEFAULT_MARKETPLACE", "DEFAULT_OPTIONS"]

#: The marketplace the client fixture is set to (the US marketplace).
DEFAULT_MARKETPLACE = "ATVPDKIKX0DER"

#: The emulator's options when no ``services_emulator`` marker says otherwise.
DEFAULT_OPTIONS: dict[str, object] = {"jobs": 100, "seed": 0}

#: The name the fixtures (or their stand-ins) are registered under.
FIXTURES_PLUGIN = "spapi_services.emulator.fixtures"

#: The oldest pytest-asyncio whose fixtures take a ``loop_scope``.
_OLDEST_PYTEST_ASYNCIO = "0.24"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "services_emulator(**options): options for the services_emulator fixture "
        "(keywords of spapi_services.emulator.ServicesEmulator)",
    )
    manager = config.pluginmanager
    if manager.has_plugin(FIXTURES_PLUGIN):
        return
    problem = _pytest_asyncio_problem(config)
    if problem is None:
        from . import _pytest_fixtures

        manager.register(_pytest_fixtures, FIXTURES_PLUGIN)
    else:
        manager.register(_FixturesNeedPytestAsyncio(problem), FIXTURES_PLUGIN)


def _pytest_asyncio_problem(config: pytest.Config) -> str | None:
    """Why the fixtures cannot run in this session, or None when they can."""
    # Loaded as a plugin of this session, under whatever name (entry point, -p, conftest).
    plugin = sys.modules.get("pytest_asyncio.plugin")
    if plugin is None or not config.pluginmanager.is_registered(plugin):
        return "missing"
    # Imported already, by pytest: this costs nothing.
    import inspect

    import pytest_asyncio

    if "loop_scope" not in inspect.signature(pytest_asyncio.fixture).parameters:
        return "too old"
    return None


class _FixturesNeedPytestAsyncio:
    """Stand-ins for the fixtures, failing with what to do, when pytest-asyncio cannot run them."""

    def __init__(self, problem: str) -> None:
        self._problem = problem

    @pytest.fixture
    def services_emulator(self) -> NoReturn:
        """A running emulator: needs pytest-asyncio (see the failure message)."""
        pytest.fail(_needs_pytest_asyncio("services_emulator", self._problem), pytrace=False)

    @pytest.fixture
    def services_client(self) -> NoReturn:
        """An SDK client for the emulator: needs pytest-asyncio (see the failure message)."""
        pytest.fail(_needs_pytest_asyncio("services_client", self._problem), pytrace=False)


def _needs_pytest_asyncio(fixture: str, problem: str) -> str:
    """The message of a fixture that pytest-asyncio is not there to run."""
    if problem == "too old":
        import pytest_asyncio

        found = getattr(pytest_asyncio, "__version__", "an old version")
        return (
            f"the {fixture} fixture (spapi-services) needs pytest-asyncio "
            f"{_OLDEST_PYTEST_ASYNCIO} or later, and {found} is installed: "
            f"pip install -U 'pytest-asyncio>={_OLDEST_PYTEST_ASYNCIO}'"
        )
    from importlib.util import find_spec

    try:
        installed = find_spec("pytest_asyncio") is not None
    except ImportError:
        installed = False
    if installed:
        return (
            f"the {fixture} fixture (spapi-services) runs on pytest-asyncio, which is "
            "installed but not loaded in this run (-p no:asyncio, or plugin autoload "
            "disabled): load it with -p pytest_asyncio.plugin"
        )
    return (
        f"the {fixture} fixture (spapi-services) runs on pytest-asyncio, which is not "
        "installed: pip install pytest-asyncio (then mark the test @pytest.mark.asyncio, "
        "or set asyncio_mode = auto)"
    )
