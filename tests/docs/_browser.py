"""Headless Chromium driven over the DevTools protocol: load a page at a given width, run
a script in it, take a screenshot.

``--dump-dom`` (see test_site) shows what a page holds; this shows how it lays out.  The
browser is Debian's ``chromium``, started with its own profile in a temporary folder and
its DevTools port on 127.0.0.1 (chosen by the browser, read back from the profile's
``DevToolsActivePort``); the protocol's messages go over aiohttp's WebSocket client.
Nothing but 127.0.0.1 resolves inside it, so a page that loads from elsewhere fails.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import _chromium
import aiohttp

#: The flags of every run: headless, no profile of the user's, nothing from the network.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    # Tabs load side by side: none is a background tab to slow down.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class Page:
    """One browser tab, spoken to over its DevTools WebSocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events meanwhile are dropped)."""
        message_id = next(self._ids)
        await self._socket.send_json({"id": message_id, "method": method, "params": params})
        while True:
            message = await self._socket.receive_json(timeout=60)
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def open(self, url: str, *, width: int, height: int = 900) -> None:
        """Load ``url`` in a window ``width`` CSS pixels wide, and wait for its fonts."""
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        await self.call("Page.navigate", url=url)
        # Navigation answers before the page is ready: wait for its load, then its fonts.
        deadline = time.monotonic() + 30
        while await self.evaluate("document.readyState") != "complete":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            await asyncio.sleep(0.05)
        await self.evaluate("document.fonts.ready.then(() => true)")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path) -> Path:
        """The visible part of the page as a PNG at ``path``."""
        shot = await self.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(path.write_bytes, base64.b64decode(shot["data"]))
        return path


@contextlib.asynccontextmanager
async def browser(chromium: str) -> AsyncIterator[Page]:
    """A headless Chromium with one blank tab; stopped (and its profile removed) after."""
    async with tabs(chromium, 1) as (page,):
        yield page


@contextlib.asynccontextmanager
async def tabs(chromium: str, count: int) -> AsyncIterator[list[Page]]:
    """A headless Chromium with ``count`` tabs, to load pages side by side."""
    with _chromium.profile() as profile:
        process = await asyncio.create_subprocess_exec(
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # its helpers are ended with it (see _chromium)
        )
        try:
            port = await _devtools_port(profile, process)
            base = f"http://127.0.0.1:{port}/json"
            async with aiohttp.ClientSession() as session, contextlib.AsyncExitStack() as stack:
                async with session.get(f"{base}/list") as answer:
                    targets = [t for t in await answer.json() if t["type"] == "page"]
                while len(targets) < count:
                    async with session.put(f"{base}/new?about:blank") as answer:
                        targets.append(await answer.json())
                pages = []
                for target in targets[:count]:
                    ws = await stack.enter_async_context(
                        session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
                    )
                    pages.append(Page(ws))
                yield pages
        finally:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
            _chromium.end_session(process.pid)


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    """The port Chromium chose, from the first line of its profile's DevToolsActivePort."""
    marker = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError(f"chromium exited with status {process.returncode}")
        with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
            return int(marker.read_text().splitlines()[0])
        await asyncio.sleep(0.05)
    raise TimeoutError("chromium did not open its DevTools port")
