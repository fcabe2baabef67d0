"""Fixtures for the client tests: a client factory that always closes, the LWA mock,
recorded sleeps, a fake loop clock, and a real local HTTP server for wire-level checks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from _timers import RecordingTimer
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import aioresponses

from spapi_services import LwaCredentials, RetryPolicy, ServicesClient

from ._helpers import (
    API,
    CLIENT_SECRET,
    MARKETPLACE,
    REFRESH_TOKEN,
    TOKEN_URL,
    ClientFactory,
    LoopClock,
    lwa_ok,
)


@pytest.fixture
def creds() -> LwaCredentials:
    return LwaCredentials(
        client_id="amzn1.application-oa2-client.test",
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH_TOKEN,
    )


@pytest.fixture
async def make_client(
    creds: LwaCredentials, request: pytest.FixtureRequest
) -> AsyncIterator[ClientFactory]:
    """Build clients with test defaults (no retries, no limiter); all closed afterwards.

    A test that asks for ``sleeps`` gets clients whose back-offs are recorded there.
    """
    made: list[ServicesClient] = []
    timer = request.getfixturevalue("sleeps") if "sleeps" in request.fixturenames else None

    def factory(**kwargs: Any) -> ServicesClient:
        if timer is not None:
            kwargs.setdefault("timer", timer)
        kwargs.setdefault("endpoint", API)
        kwargs.setdefault("token_url", TOKEN_URL)
        kwargs.setdefault("marketplace_id", MARKETPLACE)
        kwargs.setdefault("retry", RetryPolicy(max_retries=0))
        kwargs.setdefault("rate_limits", False)
        if "access_token_provider" not in kwargs:
            kwargs.setdefault("credentials", creds)
        client = ServicesClient(**kwargs)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


@pytest.fixture
async def client(mock_api: aioresponses, make_client: ClientFactory) -> ServicesClient:
    """A client with a working LWA mock."""
    lwa_ok(mock_api)
    return make_client()


@pytest.fixture
def sleeps() -> RecordingTimer:
    """The SDK's back-off sleeps, recorded instead of slept (clients of ``make_client``)."""
    return RecordingTimer()


@pytest.fixture
async def loop_clock() -> AsyncIterator[LoopClock]:
    """A fake loop clock: timers fire only when the test advances ``now``."""
    with LoopClock() as clock:
        yield clock


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def local_server() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start a real aiohttp server on 127.0.0.1 answering every path with ``handler``."""
    servers: list[TestServer] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for server in servers:
        await server.close()
