"""Fixtures for the webhook tests: a receiver over real sockets, and jobs with buyers.

The receiver is an aiohttp.web server on 127.0.0.1 that records every request as it
came (headers and raw body) and answers from a script: a list of replies used in
order, then 204 for everything after.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from _emulators import NOW
from aiohttp import web

from spapi_services.emulator.clock import FakeClock
from spapi_services.emulator.seed import seed_store
from spapi_services.emulator.store import Store
from spapi_services.webhooks import LOOPBACK_NETWORKS, WebhookSecret


@dataclass
class Received:
    """One request as the receiver got it."""

    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    at: float | None = None

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """What the receiver answers: a status and headers, or no answer at all (``hang``)."""

    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass
class Receiver:
    """A scripted receiver on 127.0.0.1 (``url`` is its /hooks)."""

    base: str = ""
    received: list[Received] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    other_paths: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], float] | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"{self.base}/hooks"

    async def wait_for(self, count: int) -> None:
        """Wait (10 s at most) until ``count`` requests have come."""
        async with asyncio.timeout(10):
            while len(self.received) < count:
                self.arrived.clear()
                await self.arrived.wait()

    def script(self, *replies: Reply | int) -> None:
        self.replies.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    async def hooks(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        at = self.clock() if self.clock is not None else None
        self.received.append(Received(request.path, request.query_string, headers, body, at))
        self.arrived.set()
        reply = self.replies.pop(0) if self.replies else Reply()
        if reply.hang:
            await self.release.wait()
        return web.Response(status=reply.status, headers=reply.headers)

    async def elsewhere(self, request: web.Request) -> web.StreamResponse:
        self.other_paths.append(request.path)
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A scripted receiver served on a free port of 127.0.0.1."""
    state = Receiver()
    app = web.Application()
    app.router.add_post("/hooks", state.hooks)
    app.router.add_route("*", "/{tail:.*}", state.elsewhere)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        state.base = f"http://{host}:{port}"
        yield state
    finally:
        state.release.set()
        await runner.cleanup()


@pytest.fixture(scope="session")
def jobs() -> list[dict[str, Any]]:
    """Seeded jobs in the API's JSON shape, each with a buyer and an address."""
    store = Store(FakeClock(NOW), 3)
    seed_store(store, jobs=40, seed=3, reference=NOW)
    found = [
        record.to_wire()
        for record in store.find_jobs()
        if "buyer" in record.details and "serviceLocation" in record.details
    ]
    assert len(found) >= 5
    return found


@pytest.fixture
def secret() -> WebhookSecret:
    return WebhookSecret.generate()


#: What the tests allow: the receiver is on this machine.
LOCAL = LOOPBACK_NETWORKS
