"""Fixtures for the upload tests: a client without LWA, a canned destination, fake time."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses

from spapi_services import RetryPolicy, ServicesClient

API = "https://api.upload.test"
DESTINATIONS = f"{API}/service/v1/documents"
MARKETPLACE = "ATVPDKIKX0DER"
ACCESS_TOKEN = "Atza|upload-test-ACCESS-TOKEN"
SIGNATURE = "7e3cSIGNATUREdeadbeef0123456789"
STORE = "https://bucket.s3.test"
OBJECT_PATH = "/fulfillment/A1B2/doc-1.enc"
# Percent-escapes and a ';' that a re-encoding client would disturb.
SIGNED_QUERY = (
    "X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAEXAMPLE%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20260101T000000Z&X-Amz-Expires=300"
    "&X-Amz-SignedHeaders=content-type%3Bhost"
    f"&X-Amz-Signature={SIGNATURE}"
)
UPLOAD_URL = f"{STORE}{OBJECT_PATH}?{SIGNED_QUERY}"
STORE_PATTERN = re.compile(r"^https://bucket\.s3\.test/")
KEY = bytes(range(32))
IV = bytes(range(100, 116))
DESTINATION_ID = "amzn1.tortuga.4.na.upload-dest-1"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def destination_body(
    *,
    url: str = UPLOAD_URL,
    key: bytes = KEY,
    iv: bytes = IV,
    headers: dict[str, str] | None = None,
    destination_id: str = DESTINATION_ID,
) -> dict[str, Any]:
    """A createServiceDocumentUploadDestination answer."""
    payload: dict[str, Any] = {
        "uploadDestinationId": destination_id,
        "url": url,
        "encryptionDetails": {
            "standard": "AES",
            "initializationVector": b64(iv),
            "key": b64(key),
        },
    }
    if headers is not None:
        payload["headers"] = headers
    return {"payload": payload}


def offer_destination(m: aioresponses, **kwargs: Any) -> None:
    """Answer the next destination request with :func:`destination_body`."""
    m.post(DESTINATIONS, payload=destination_body(**kwargs))


def store_answers(m: aioresponses, *answers: Any) -> None:
    """Queue the store's answers to successive PUTs: a status, (status, body) or an exception."""
    for answer in answers:
        if isinstance(answer, BaseException):
            m.put(STORE_PATTERN, exception=answer)
        elif isinstance(answer, tuple):
            status, body = answer
            m.put(STORE_PATTERN, status=status, body=body)
        else:
            m.put(STORE_PATTERN, status=answer, body=b"")


def requests_to(m: aioresponses, method: str, prefix: str) -> list[Any]:
    """Every recorded call with this method to a URL starting with ``prefix``."""
    found = []
    for (meth, url), recorded in m.requests.items():
        if meth == method and str(url).startswith(prefix):
            found.extend(recorded)
    return found


def puts(m: aioresponses) -> list[Any]:
    return requests_to(m, "PUT", STORE)


def destination_requests(m: aioresponses) -> list[Any]:
    return requests_to(m, "POST", DESTINATIONS)


async def _token() -> str:
    return ACCESS_TOKEN


ClientFactory = Callable[..., ServicesClient]


@pytest.fixture
async def make_client(request: pytest.FixtureRequest) -> AsyncIterator[ClientFactory]:
    """Clients on the fake API host, a fixed token, no limiter; closed afterwards.

    A test that asks for ``fake_time`` gets clients that wait on it.
    """
    made: list[ServicesClient] = []
    timer = request.getfixturevalue("fake_time") if "fake_time" in request.fixturenames else None

    def factory(**kwargs: Any) -> ServicesClient:
        if timer is not None:
            kwargs.setdefault("timer", timer)
        kwargs.setdefault("endpoint", API)
        kwargs.setdefault("marketplace_id", MARKETPLACE)
        kwargs.setdefault("access_token_provider", _token)
        kwargs.setdefault("rate_limits", False)
        kwargs.setdefault("retry", RetryPolicy(max_retries=3, base_delay=0.5, jitter=0))
        client = ServicesClient(**kwargs)
        made.append(client)
        return client

    yield factory
    for client in made:
        await client.aclose()


@pytest.fixture
async def client(make_client: ClientFactory) -> ServicesClient:
    return make_client()


class FakeClock:
    """The pipeline's clock and sleep, moving only when slept on or advanced."""

    def __init__(self) -> None:
        self.current = 5_000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += seconds


@pytest.fixture
def fake_time() -> FakeClock:
    """A timer for the clients: retries cost no real time (see ``make_client``)."""
    return FakeClock()


def s3_error(code: str, message: str, **extra: str) -> bytes:
    """An S3-style XML error document."""
    more = "".join(f"<{k}>{v}</{k}>" for k, v in extra.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message>{more}"
        "<RequestId>4442587FB7D0A2F9</RequestId></Error>"
    ).encode()


def callback_ok(captured: list[dict[str, Any]]) -> Callable[..., CallbackResult]:
    """An aioresponses callback that keeps what each PUT sent and answers 200."""

    def callback(url: Any, **kwargs: Any) -> CallbackResult:
        captured.append(kwargs)
        return CallbackResult(status=200, body=b"")

    return callback
