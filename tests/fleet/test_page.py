"""The status page and what the fleet records of errors: a page that answers only under
its own names (no DNS rebinding), says when Redis is unreachable, tells a refused
seller's next step and what each count counts; errors kept without response bodies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _proxy import Proxy
from _servers import RedisServer
from aiohttp.test_utils import TestClient, TestServer

from spapi_services.errors import (
    AuthenticationError,
    InternalServerError,
    OperationFailedError,
    ServiceUnavailableError,
)
from spapi_services.fleet import Fleet, MemorySellerDirectory, SellerStatus
from spapi_services.fleet._errors import describe_error, describe_refusal
from spapi_services.fleet._page import (
    COUNTS_NOTE,
    allowed_hosts,
    render_page,
    status_app,
    status_json,
)
from spapi_services.models.common import Error

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
async def fleet(fleet_options: Callable[..., dict[str, Any]]) -> AsyncIterator[Fleet]:
    async with Fleet(**fleet_options(directory=MemorySellerDirectory())) as f:
        yield f


async def fetch(app: Any, path: str, host: str) -> tuple[int, str]:
    async with TestClient(TestServer(app)) as client:
        response = await client.get(path, headers={"Host": host})
        return response.status, await response.text()


# --- the Host a page answers to ------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8765", 200),
        ("localhost:8765", 200),
        ("LOCALHOST.", 200),
        ("[::1]:8765", 200),
        ("10.1.2.3", 200),  # an address names no one else's origin
        ("rebind.attacker.example:8765", 421),  # a name pointed at 127.0.0.1
        ("localhost.attacker.example", 421),
        ("", 421),
    ],
)
async def test_the_page_answers_only_under_its_own_names(
    fleet: Fleet, host: str, status: int
) -> None:
    app = status_app(fleet, hosts=allowed_hosts("127.0.0.1"))
    for path in ("/", "/status.json", "/healthz"):
        got, body = await fetch(app, path, host)
        assert got == status, (path, host, body)
        if status == 421:
            assert "--allow-host" in body
            assert "sellers" not in body


def test_the_names_a_page_answers_to() -> None:
    assert allowed_hosts("127.0.0.1") == {"localhost"}
    assert allowed_hosts("0.0.0.0") == frozenset()
    assert allowed_hosts("0.0.0.0", ["Status.Example.COM"]) == {"status.example.com"}
    assert allowed_hosts("fleet-box") == {"fleet-box"}


# --- Redis away -------------------------------------------------------------------------------


async def test_status_says_redis_is_unreachable_instead_of_hanging(
    fleet_options: Callable[..., dict[str, Any]], redis_server: RedisServer
) -> None:
    async with Proxy(redis_server.port) as link:
        fleet = Fleet(
            **fleet_options(
                directory=MemorySellerDirectory(), redis_url=link.via(redis_server.url), lease=3
            )
        )
        try:
            assert await fleet.status() == []  # connected, answering
            await fleet.add_seller("S1", "Atzr|x", ["ATVPDKIKX0DER"])
            link.pause()  # silent: no answer, no reset
            (status,) = await fleet.status()  # within the fleet's Redis timeout (0.6 s)
            assert status.redis_unreachable
            assert (status.running, status.queued) == (False, False)
            assert status_json([status])["redis"] == "unreachable"
            app = status_app(fleet, hosts=allowed_hosts("127.0.0.1"))
            code, page = await fetch(app, "/", "127.0.0.1")
            assert code == 200
            assert "Redis unreachable" in page
            link.resume()
            (status,) = await fleet.status()
            assert not status.redis_unreachable
        finally:
            link.resume()
            await fleet.aclose()


# --- what the page says -------------------------------------------------------------------------


def test_a_refused_seller_shows_its_error_once_and_the_next_step() -> None:
    refusal = describe_refusal(
        AuthenticationError(
            "Login with Amazon refused the token exchange (invalid_grant: token revoked)",
            error="invalid_grant",
            error_description="token revoked",
            status_code=400,
        )
    )
    assert refusal == "Amazon refused the seller's refresh token (invalid_grant: token revoked)"
    refused = SellerStatus(
        seller_id="S9",
        state="refused",
        last_error=refusal,
        last_error_at=NOW - timedelta(minutes=3),
    )
    page = render_page([refused], [], now=NOW)
    assert page.count("invalid_grant") == 1
    assert "spapi-services fleet clear-refusal S9" in page
    assert "spapi-services fleet add-seller S9" in page


def test_the_page_says_what_each_count_counts() -> None:
    ok = SellerStatus(seller_id="S1", state="ok", jobs=2, jobs_total=100)
    moments = [NOW - timedelta(minutes=1), NOW]
    page = render_page([ok], [(moments[0], 90), (moments[1], 98)], now=NOW)
    assert "98</span> jobs in the mirror (each once)" in page
    assert "Jobs written (all runs)" in page
    assert COUNTS_NOTE.replace("'", "&#x27;") in page
    assert "counts each time" in COUNTS_NOTE


# --- errors kept without bodies ---------------------------------------------------------------


def test_an_api_error_is_recorded_without_its_response_body() -> None:
    secret_body = "<html>internal trace id 12345, upstream host db-7.internal</html>"
    bare = ServiceUnavailableError(
        status_code=503,
        body=secret_body,
        request_id="req-1",
        operation="getServiceJobs",
    )
    assert "db-7.internal" in str(bare)  # what str() would have stored
    text = describe_error(bare)
    assert text == (
        "ServiceUnavailableError: getServiceJobs: HTTP 503 (no error details given)"
        " (request id req-1)"
    )
    detailed = InternalServerError(
        status_code=500,
        errors=[Error(code="InternalFailure", message="We encountered an internal error.")],
        body=secret_body,
        request_id="req-2",
        operation="getServiceJobs",
    )
    assert describe_error(detailed) == (
        "InternalServerError: getServiceJobs: HTTP 500: InternalFailure: We encountered an "
        "internal error. (request id req-2)"
    )
    failed = OperationFailedError(
        status_code=200, errors=[Error(code="NotFound", message="x")], body=secret_body
    )
    assert "db-7" not in describe_error(failed)
    assert describe_error(ValueError("line one\nline two")) == "ValueError: line one\\nline two"
