"""Constants and helpers shared by the client tests."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from unittest import mock

import attrs
from aioresponses import CallbackResult, aioresponses
from multidict import CIMultiDict
from yarl import URL

from spapi_services import ServicesClient

API = "https://api.test"
TOKEN_URL = "https://auth.test/o2/token"
API_PATTERN = re.compile(r"^https://api\.test/")
MARKETPLACE = "ATVPDKIKX0DER"
ACCESS_TOKEN = "Atza|access-token-SECRET-1"
CLIENT_SECRET = "amzn1.oa2-cs.v1.CLIENT-SECRET-xyz"
REFRESH_TOKEN = "Atzr|REFRESH-TOKEN-abc"


def lwa_ok(
    m: aioresponses, token: str = ACCESS_TOKEN, expires_in: int = 3600, repeat: bool = True
) -> None:
    """Mock a successful LWA exchange at TOKEN_URL (which takes a turn of the loop)."""
    payload = {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": expires_in,
        "refresh_token": REFRESH_TOKEN,
    }
    m.post(TOKEN_URL, callback=slow(CallbackResult(payload=payload)), repeat=repeat)


def slow(result: CallbackResult, turns: int = 3) -> Callable[..., Awaitable[CallbackResult]]:
    """An aioresponses callback that yields to the loop before answering, as a real
    exchange would, so that concurrent callers really do overlap."""

    async def callback(url: URL, **kwargs: Any) -> CallbackResult:
        for _ in range(turns):
            await asyncio.sleep(0)
        return result

    return callback


def calls(m: aioresponses, method: str, url: str | URL) -> list[Any]:
    """The recorded calls to one method and URL (query included, in any order)."""
    want = URL(url)
    want = want.with_query(sorted(want.query.items()))
    return m.requests.get((method, want), [])


def all_calls(m: aioresponses, method: str | None = None) -> list[tuple[str, URL, Any]]:
    """Every recorded call except the LWA exchange, as (method, url, call)."""
    found = []
    for (meth, url), recorded in m.requests.items():
        if str(url).startswith(TOKEN_URL):
            continue
        if method is not None and meth != method:
            continue
        found.extend((meth, url, c) for c in recorded)
    return found


def token_posts(m: aioresponses) -> int:
    return len(m.requests.get(("POST", URL(TOKEN_URL)), []))


def sent_json(call: Any) -> Any:
    data = call.kwargs.get("data")
    return None if data is None else json.loads(data)


ClientFactory = Callable[..., ServicesClient]


@attrs.define
class Sent:
    """One request as the transport handed it to aiohttp."""

    method: str
    url: URL
    headers: CIMultiDict[str]
    params: Any
    data: bytes | None
    timeout: Any

    @property
    def json(self) -> Any:
        return None if self.data is None else json.loads(self.data)

    @property
    def query(self) -> dict[str, str]:
        """The query the server would decode (each value exactly once)."""
        return dict(self.url.query)


def expect(
    m: aioresponses,
    method: str,
    *,
    status: int = 200,
    payload: Any = None,
    body: str | bytes = "",
    headers: dict[str, str] | None = None,
    content_type: str = "application/json",
    repeat: bool | int = False,
    url: str | re.Pattern[str] = API_PATTERN,
) -> list[Sent]:
    """Answer ``method`` requests to the API with one response; return what was sent."""
    sent: list[Sent] = []
    answer_headers = {"x-amzn-RequestId": "req-1"} if headers is None else headers

    def callback(url: URL, **kwargs: Any) -> CallbackResult:
        data = kwargs.get("data")
        sent.append(
            Sent(
                method=method,
                url=url,
                headers=CIMultiDict(kwargs.get("headers") or {}),
                params=kwargs.get("params"),
                data=data,
                timeout=kwargs.get("timeout"),
            )
        )
        return CallbackResult(
            status=status,
            payload=payload,
            body=body,
            headers=answer_headers,
            content_type=content_type,
        )

    m.add(url, method=method, callback=callback, repeat=repeat)
    return sent


class LoopClock:
    """The running loop's clock, moved by hand (as aiolimiter's own MockLoopTime)."""

    def __init__(self) -> None:
        self.now = 0.0
        self._patch = mock.patch.object(asyncio.get_running_loop(), "time", self.time)

    def time(self) -> float:
        return self.now

    def __enter__(self) -> LoopClock:
        self._patch.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._patch.stop()
