"""Fixtures for the reliability tests: emulators on a fake clock, clients that always close,
a session that counts what the SDK puts on the wire, and back-off sleeps that cost nothing."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any
from unittest import mock

import aiohttp
import pytest
from _emulators import StartEmulator, emulators
from _timers import RecordingTimer

from spapi_services import RetryPolicy, ServicesClient
from spapi_services.emulator import FakeClock, ServicesEmulator

from ._scenarios import NOW, US

MakeClient = Callable[..., ServicesClient]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
async def start_emulator(clock: FakeClock) -> AsyncIterator[StartEmulator]:
    """Start emulators (fake clock, 40 jobs, seed 5, no throttling unless told); all stopped."""
    async with emulators(jobs=40, seed=5, clock=clock, enforce_limits=False) as start:
        yield start


@pytest.fixture
async def emu(start_emulator: StartEmulator) -> ServicesEmulator:
    return await start_emulator()


class Wire:
    """A caller-owned session that counts the SDK's requests and new connections.

    ``attempts`` counts ``session.request`` calls by path, the token exchange apart:
    one per attempt of the SDK.  aiohttp's own silent re-send of an idempotent request
    on a dropped connection is *not* counted here (the emulator sees it; we do not).
    """

    def __init__(self, limit: int = 100) -> None:
        self.attempts: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()
        self.connections_made = 0
        self.queued = 0
        trace = aiohttp.TraceConfig()
        trace.on_connection_queued_start.append(self._queued)
        trace.on_request_start.append(self._request_start)
        trace.on_request_headers_sent.append(self._headers_sent)
        trace.on_connection_create_end.append(self._connection_made)
        self.connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit)
        self.session = aiohttp.ClientSession(connector=self.connector, trace_configs=[trace])

    @property
    def api_attempts(self) -> int:
        return sum(n for path, n in self.attempts.items() if not path.startswith("/auth/"))

    async def _request_start(
        self, _: Any, __: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        self.attempts[params.url.path] += 1

    async def _headers_sent(
        self, _: Any, __: Any, params: aiohttp.TraceRequestHeadersSentParams
    ) -> None:
        self.sent[params.url.path] += 1

    async def _connection_made(self, *_: Any) -> None:
        self.connections_made += 1

    async def _queued(self, *_: Any) -> None:
        self.queued += 1  # made to wait in aiohttp's pool for a connection

    @property
    def in_use(self) -> int:
        """Connections handed out and not yet given back (aiohttp has no public count)."""
        return len(self.connector._acquired)

    @property
    def idle(self) -> int:
        """Open connections waiting in the pool for the next request."""
        return sum(len(conns) for conns in self.connector._conns.values())


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    counted = Wire()
    yield counted
    await counted.session.close()


@pytest.fixture
async def make_client(request: pytest.FixtureRequest) -> AsyncIterator[MakeClient]:
    """Clients for an emulator (US, no client-side limits, 3 retries, 5 s); all closed.

    A test that asks for ``sdk_sleeps`` gets clients whose back-offs are recorded there.
    """
    made: list[ServicesClient] = []
    timer = request.getfixturevalue("sdk_sleeps") if "sdk_sleeps" in request.fixturenames else None

    def factory(emu: ServicesEmulator, **kwargs: Any) -> ServicesClient:
        if timer is not None:
            kwargs.setdefault("timer", timer)
        kwargs.setdefault("endpoint", emu.url)
        kwargs.setdefault("token_url", emu.token_url)
        kwargs.setdefault("marketplace_id", US)
        kwargs.setdefault("rate_limits", False)
        kwargs.setdefault("retry", RetryPolicy(max_retries=3))
        kwargs.setdefault("timeout", 5.0)
        if "access_token_provider" not in kwargs:
            kwargs.setdefault("credentials", emu.credentials)
        client = ServicesClient(**kwargs)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


@pytest.fixture
def sdk_sleeps() -> RecordingTimer:
    """The SDK's back-offs, recorded instead of slept (clients of ``make_client``)."""
    return RecordingTimer()


class LoopClock:
    """The running loop's clock, moved by hand: limiter timers fire only when told."""

    running = False

    def __init__(self) -> None:
        self.now = asyncio.get_running_loop().time()
        self._patch = mock.patch.object(asyncio.get_running_loop(), "time", self.time)

    def time(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __enter__(self) -> LoopClock:
        self._patch.start()
        LoopClock.running = True
        return self

    def __exit__(self, *exc: object) -> None:
        LoopClock.running = False
        self._patch.stop()


async def turns(n: int = 50) -> None:
    """Give every other task ``n`` turns of the loop."""
    for _ in range(n):
        await asyncio.sleep(0)


async def settle(predicate: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; fail after ``seconds`` of real time.

    The deadline is on the process's clock, not the loop's: it holds under a LoopClock.
    """
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "it never happened"
        # Under a LoopClock a timed sleep would never end: take turns instead.
        await asyncio.sleep(0 if LoopClock.running else 0.01)
