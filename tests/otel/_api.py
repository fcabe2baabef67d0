"""An in-memory API and LWA endpoint behind the sender seam, and clients of it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from spapi_services import LwaCredentials, RawResponse, RetryPolicy, ServicesClient

API = "https://sellingpartnerapi-na.amazon.com"
TOKEN_URL = "https://api.amazon.com/auth/o2/token"
MARKETPLACE = "ATVPDKIKX0DER"
CLIENT_SECRET = "amzn1.oa2-cs.v1.CLIENT-SECRET-otel"
REFRESH_TOKEN = "Atzr|REFRESH-TOKEN-otel"
ACCESS_TOKEN = "Atza|ACCESS-TOKEN-otel"
CREDS = LwaCredentials("amzn1.application-oa2-client.otel", CLIENT_SECRET, REFRESH_TOKEN)
GET = "getServiceJobByServiceJobId"

Handler = Callable[[str, URL, Mapping[str, str], bytes | None], Awaitable[Any]]


def answer(status: int, data: Any = None, **headers: str) -> RawResponse:
    """An answer with Amazon's request id (and any other headers given)."""
    body = data if isinstance(data, bytes) else b"" if data is None else json.dumps(data).encode()
    merged = CIMultiDict({"x-amzn-RequestId": "req-1", **headers})
    return RawResponse(status, CIMultiDictProxy(merged), body)


def job_body(job_id: str = "job-1") -> dict[str, Any]:
    return {"payload": {"serviceJobId": job_id, "serviceJobStatus": "NOT_SERVICED"}}


class FakeApi:
    """Answers the token endpoint itself and every API request with ``handler``'s answer
    (a :class:`RawResponse`); ``token_answers`` replaces the token endpoint's."""

    def __init__(self, handler: Handler, token_answers: list[RawResponse] | None = None) -> None:
        self.handler = handler
        self.token_answers = token_answers or []
        self.sent: list[tuple[str, URL]] = []

    async def __call__(
        self, method: str, url: URL, headers: Mapping[str, str], body: bytes | None, seconds: float
    ) -> RawResponse:
        if str(url) == TOKEN_URL:
            if self.token_answers:
                return self.token_answers.pop(0)
            return answer(200, {"access_token": ACCESS_TOKEN, "expires_in": 3600})
        self.sent.append((method, url))
        found: RawResponse = await self.handler(method, url, headers, body)
        return found


def replies(*answers: RawResponse) -> Handler:
    """A handler giving these answers in turn (the last one again when they run out)."""
    left = list(answers)

    async def handler(*_: Any) -> RawResponse:
        return left.pop(0) if len(left) > 1 else left[0]

    return handler


def client_for(api: FakeApi, **kwargs: Any) -> ServicesClient:
    kwargs.setdefault("retry", RetryPolicy(max_retries=0))
    kwargs.setdefault("rate_limits", False)
    if "access_token_provider" not in kwargs:
        kwargs.setdefault("credentials", CREDS)
    return ServicesClient(
        endpoint=API, token_url=TOKEN_URL, marketplace_id=MARKETPLACE, sender=api, **kwargs
    )


class PacedPlan:
    """A usage plan whose first token of each call is due in ``due`` seconds."""

    def __init__(self, due: float) -> None:
        self.due = due
        self.asked = 0

    async def try_acquire(self, scope: str, operation_id: str) -> float:
        self.asked += 1
        return self.due if self.asked % 2 else 0.0

    async def update_rate(self, scope: str, operation_id: str, rate: float) -> None:
        return None

    async def throttled(self, scope: str, operation_id: str) -> None:
        return None
