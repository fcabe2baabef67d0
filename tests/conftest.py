"""Shared test fixtures: the aiohttp 3.14 shim for aioresponses."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from unittest import mock

import aiohttp
import pytest
from aioresponses import aioresponses, core


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
