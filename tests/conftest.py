"""Shared test fixtures: a run free of the developer's ``SPAPI_*`` settings, and the
aiohttp 3.14 shim for aioresponses."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from unittest import mock

import aiohttp
import pytest
from aioresponses import aioresponses, core

#: ``SPAPI_*`` variables that steer the test run itself, not the SDK: kept.
TEST_RUN_VARIABLES = frozenset({"SPAPI_REQUIRE_SERVERS", "SPAPI_SOAK_CALLS"})


def _settings_in_environment() -> list[str]:
    """The ``SPAPI_*`` variables set now that the SDK, the command line or the fleet could
    read (``spapi_services._env.ENVIRONMENT`` and the rest of the family)."""
    return [
        name for name in os.environ if name.startswith("SPAPI_") and name not in TEST_RUN_VARIABLES
    ]


@pytest.fixture(scope="session", autouse=True)
def _no_spapi_settings_for_the_session() -> Iterator[None]:
    """No ``SPAPI_*`` setting of the developer's shell reaches the tests: ``ServicesClient()``
    and the command line read them, so one left in a shell would change what a test does.
    Cleared before any fixture of the session starts a process (which inherits the
    environment), and put back at the end.  A test that needs one sets it with
    ``monkeypatch.setenv`` (or passes it to its subprocess)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in _settings_in_environment():
            patch.delenv(name)
        yield


@pytest.fixture(autouse=True)
def _no_spapi_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without ``SPAPI_*`` settings, whatever another test or a module
    fixture left in ``os.environ``."""
    for name in _settings_in_environment():
        monkeypatch.delenv(name)


class _CompatResponse(aiohttp.ClientResponse):
    """aioresponses 0.7.9 builds responses without aiohttp 3.14's ``stream_writer``."""

    def __init__(self, *args: object, stream_writer: object = None, **kwargs: object) -> None:
        super().__init__(  # type: ignore[misc]
            *args, stream_writer=stream_writer or mock.Mock(output_size=0), **kwargs
        )


@pytest.fixture
def mock_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """aioresponses, working on aiohttp 3.14 (drop the shim once a fixed release lands)."""
    if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
        monkeypatch.setattr(core, "ClientResponse", _CompatResponse)
    with aioresponses() as mocked:
        yield mocked


@pytest.fixture(autouse=True)
def _patient_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Redis command may take 2 s in this process's tests, not 0.25 s: a busy two-core
    CI machine can hold a command that long, and a test meant to use Redis would then run
    on the in-process fallback.  The tests of the fallback pass their own timeouts."""
    try:
        from spapi_services.redis import _link
    except ImportError:  # redis-py not installed: no Redis tests either
        return
    monkeypatch.setattr(_link, "DEFAULT_TIMEOUT", 2.0)
