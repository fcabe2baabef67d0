"""Helpers for the emulator tests: raw HTTP calls by operationId."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import attrs
from multidict import CIMultiDictProxy

from spapi_services._routes import ROUTES
from spapi_services.emulator import ServicesEmulator

US = "ATVPDKIKX0DER"
_UNSET: Any = object()

#: The ``start_emulator`` fixture: start an emulator with options, stopped after the test.
StartEmulator = Callable[..., Awaitable[ServicesEmulator]]


@attrs.frozen
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None

    @property
    def errors(self) -> list[dict[str, str]]:
        body = self.json
        return body if isinstance(body, list) else body["errors"]

    @property
    def messages(self) -> list[str]:
        return [e["message"] for e in self.errors]


class Api:
    """Calls the emulator's operations by operationId over a real socket."""

    def __init__(self, session: aiohttp.ClientSession, emu: ServicesEmulator) -> None:
        self.session = session
        self.emu = emu
        self.token: str | None = None

    async def exchange(self, **form: str) -> tuple[int, Any]:
        creds = self.emu.credentials
        data = {
            "grant_type": "refresh_token",
            "refresh_token": creds.refresh_token,
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            **form,
        }
        async with self.session.post(self.emu.token_url, data=data) as response:
            return response.status, await response.json()

    async def login(self, **form: str) -> str:
        status, body = await self.exchange(**form)
        assert status == 200, body
        self.token = body["access_token"]
        return self.token

    async def call(
        self,
        operation: str,
        path: Mapping[str, str] | None = None,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = _UNSET,
        token: str | None = _UNSET,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        marketplace: str | None = US,
    ) -> Answer:
        route = ROUTES[operation]
        url_path = route.path
        for name in route.path_params():
            url_path = url_path.replace("{" + name + "}", quote((path or {})[name], safe=""))
        params = dict(query or {})
        if route.marketplace_ids and marketplace is not None:
            params.setdefault("marketplaceIds", marketplace)
        send_headers = dict(headers or {})
        token = self.token if token is _UNSET else token
        if token is not None:
            send_headers["x-amz-access-token"] = token
        kwargs: dict[str, Any] = {}
        if body is not _UNSET:
            kwargs["json"] = body
        elif data is not None:
            kwargs["data"] = data
        async with self.session.request(
            route.method, self.emu.url + url_path, params=params, headers=send_headers, **kwargs
        ) as response:
            return Answer(response.status, response.headers, await response.text())
