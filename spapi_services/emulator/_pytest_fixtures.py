"""The fixtures of :mod:`spapi_services.emulator.pytest_plugin`, run by pytest-asyncio.

Registered by the plugin when pytest is configured, and only in sessions where
pytest-asyncio is loaded (this module imports it).  The emulator and the client are
imported when a fixture is first set up, never at registration.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Final

import pytest
import pytest_asyncio

from .pytest_plugin import DEFAULT_MARKETPLACE, DEFAULT_OPTIONS

if TYPE_CHECKING:
    from spapi_services import ServicesClient

    from .server import ServicesEmulator

__all__ = ["services_client", "services_emulator"]

MARKER = "services_emulator"

#: The event loop the fixtures run in: the test's own, in pytest-asyncio's default setup.
#: Given explicitly, so it does not hang on the project's asyncio_default_fixture_loop_scope.
LOOP_SCOPE: Final = "function"


@pytest_asyncio.fixture(loop_scope=LOOP_SCOPE)
async def services_emulator(request: pytest.FixtureRequest) -> AsyncIterator[ServicesEmulator]:
    """A running emulator on 127.0.0.1: 100 jobs, seed 0, unless a marker says otherwise."""
    from .server import ServicesEmulator

    _check_runs_in_the_fixtures_loop(request.node)
    async with ServicesEmulator(**emulator_options(request.node, ServicesEmulator)) as emu:
        yield emu


@pytest_asyncio.fixture(loop_scope=LOOP_SCOPE)
async def services_client(services_emulator: ServicesEmulator) -> AsyncIterator[ServicesClient]:
    """A ``ServicesClient`` of the emulator, in the US marketplace; closed afterwards."""
    from spapi_services import ServicesClient

    async with ServicesClient(
        services_emulator.credentials,
        endpoint=services_emulator.url,
        token_url=services_emulator.token_url,
        marketplace_id=DEFAULT_MARKETPLACE,
    ) as client:
        yield client


def emulator_options(node: pytest.Item, emulator: type[ServicesEmulator]) -> dict[str, Any]:
    """The defaults, then each ``services_emulator`` marker from the farthest to the closest.

    A marker on a module or class sets options for all its tests; one on the test wins.
    """
    accepted = inspect.signature(emulator).parameters
    options: dict[str, Any] = dict(DEFAULT_OPTIONS)
    for marker in reversed(list(node.iter_markers(MARKER))):
        if marker.args:
            pytest.fail(
                f"@pytest.mark.{MARKER}: takes keywords only (options of ServicesEmulator), "
                f"got the positional {marker.args!r}",
                pytrace=False,
            )
        unknown = sorted(set(marker.kwargs) - set(accepted))
        if unknown:
            pytest.fail(
                f"@pytest.mark.{MARKER}: no option {', '.join(map(repr, unknown))}; "
                f"ServicesEmulator takes {', '.join(accepted)}",
                pytrace=False,
            )
        options.update(marker.kwargs)
    return options


def _check_runs_in_the_fixtures_loop(item: pytest.Item) -> None:
    """Fail clearly where the test would not run in the loop that serves the emulator.

    An unmarked coroutine in strict mode is not run at all, and a test in a wider loop
    would talk to a server whose loop is not running: an obscure error, or a hang.
    """
    test = getattr(item, "obj", None)
    if not inspect.iscoroutinefunction(test):
        return  # a synchronous test may look at the emulator's state
    if not pytest_asyncio.is_async_test(item):
        pytest.fail(
            f"{item.name} uses the {MARKER} fixture but pytest-asyncio does not run it: "
            "mark it @pytest.mark.asyncio (or set asyncio_mode = auto)",
            pytrace=False,
        )
    scope = _test_loop_scope(item)
    if scope != LOOP_SCOPE:
        pytest.fail(
            f"{item.name} runs in a {scope}-scoped event loop, but the {MARKER} fixture "
            f"serves in the test's {LOOP_SCOPE}-scoped one: run it with "
            f"@pytest.mark.asyncio(loop_scope={LOOP_SCOPE!r})",
            pytrace=False,
        )


def _test_loop_scope(item: pytest.Item) -> str:
    """The loop a test runs in, read the way pytest-asyncio reads it."""
    marker = item.get_closest_marker("asyncio")
    if marker is not None:
        scope = marker.kwargs.get("loop_scope") or marker.kwargs.get("scope")
        if scope:
            return str(scope)
    return str(item.config.getini("asyncio_default_test_loop_scope") or LOOP_SCOPE)
