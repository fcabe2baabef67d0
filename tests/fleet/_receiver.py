"""A webhook receiver for the fleet's tests: real sockets on 127.0.0.1, and faults.

It checks each request with the Standard Webhooks reference library (``standardwebhooks``)
and records it; it answers from a script (statuses, or hanging until released) and
204 after; it can go down (its port refuses connections) and come back on the same port.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook


@dataclass
class Arrival:
    """One request as it came."""

    webhook_id: str
    body: bytes
    verified: bool
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HookReceiver:
    """Serves ``POST /hooks``; ``url`` is where to point an endpoint."""

    secret: str = ""
    port: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    script: list[int | str] = field(default_factory=list)
    """Replies to use in order: a status, or ``"hang"`` (no answer until released)."""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    hung: list[str] = field(default_factory=list)
    """The webhook-ids of the requests left hanging."""
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self._hooks)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Go down: the port refuses connections until :meth:`start`."""
        runner, self._runner = self._runner, None
        if runner is not None:
            self.release.set()
            await runner.cleanup()
            self.release = asyncio.Event()

    async def _hooks(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        loop = asyncio.get_running_loop()
        try:
            Webhook(self.secret).verify(body, dict(request.headers))
            verified = True
        except Exception:
            verified = False
        self.arrivals.append(
            Arrival(request.headers.get("webhook-id", ""), body, verified, loop.time())
        )
        self.arrived.set()
        reply = self.script.pop(0) if self.script else 204
        if reply == "hang":
            self.hung.append(self.arrivals[-1].webhook_id)
            await self.release.wait()
            return web.Response(status=204)
        return web.Response(status=int(reply))

    async def wait_for(self, count: int, within: float = 20.0) -> None:
        """Until ``count`` distinct webhook-ids have arrived."""
        async with asyncio.timeout(within):
            while len(self.ids()) < count:
                self.arrived.clear()
                await self.arrived.wait()

    def ids(self) -> set[str]:
        return {a.webhook_id for a in self.arrivals}

    def copies(self) -> Counter[str]:
        return Counter(a.webhook_id for a in self.arrivals)
