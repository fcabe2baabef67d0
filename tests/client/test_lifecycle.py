"""Opening, sharing, closing; cancellation and timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import CallbackResult, aioresponses

from spapi_services import (
    ApiConnectionError,
    ApiTimeoutError,
    LwaCredentials,
    RateLimits,
    Region,
    RetryPolicy,
    ServicesClient,
    SpApiError,
)

from ._helpers import (
    API_PATTERN,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    TOKEN_URL,
    ClientFactory,
    expect,
    lwa_ok,
    token_posts,
)

JOB = {"payload": {"serviceJobId": "job-1"}}


def make_creds() -> LwaCredentials:
    return LwaCredentials("id", CLIENT_SECRET, REFRESH_TOKEN)


def test_constructed_outside_a_loop_without_a_session() -> None:
    client = ServicesClient(make_creds(), marketplace_id="ATVPDKIKX0DER")
    assert client._core.session is None
    assert not client.is_closed
    assert client.base_url == "https://sellingpartnerapi-na.amazon.com"
    for secret in (CLIENT_SECRET, REFRESH_TOKEN):
        assert secret not in repr(client)


@pytest.mark.parametrize(
    ("kwargs", "base"),
    [
        ({}, "https://sellingpartnerapi-na.amazon.com"),
        ({"region": Region.EU}, "https://sellingpartnerapi-eu.amazon.com"),
        ({"region": Region.FE, "sandbox": True}, "https://sandbox.sellingpartnerapi-fe.amazon.com"),
        ({"sandbox": True}, "https://sandbox.sellingpartnerapi-na.amazon.com"),
        ({"endpoint": "http://127.0.0.1:8080/"}, "http://127.0.0.1:8080"),
    ],
)
def test_endpoints(kwargs: dict[str, Any], base: str) -> None:
    assert ServicesClient(make_creds(), **kwargs).base_url == base


@pytest.mark.parametrize(
    ("kwargs", "exc", "name"),
    [
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": True}, ValueError, "timeout"),
        ({"timeout": float("nan")}, ValueError, "timeout"),
        ({"timeout": float("inf")}, ValueError, "timeout"),
        ({"retry": 3}, TypeError, "retry"),
        ({"access_token_provider": "Atza|token"}, TypeError, "access_token_provider"),
        ({"session": object()}, TypeError, "session"),
        ({"region": "NA"}, TypeError, "region"),
        ({"endpoint": "ftp://x"}, ValueError, "endpoint"),
        ({"marketplace_id": " "}, ValueError, "marketplace_id"),
        ({"credentials": ("id", "secret", "refresh")}, TypeError, "credentials"),
    ],
)
def test_bad_configuration(kwargs: dict[str, Any], exc: type[Exception], name: str) -> None:
    kwargs.setdefault("credentials", make_creds())
    with pytest.raises(exc, match=name):
        ServicesClient(**kwargs)


async def test_session_is_made_lazily_inside_the_loop(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    expect(mock_api, "GET", payload=JOB)
    client = make_client()
    assert client._core.session is None
    await client.service_jobs.get("job-1")  # no `async with` needed
    session = client._core.session
    assert session is not None
    assert not session.closed
    await client.aclose()
    assert session.closed
    assert client.is_closed


async def test_async_with_opens_and_closes(make_client: ClientFactory) -> None:
    client = make_client()
    async with client as entered:
        assert entered is client
        session = client._core.session
        assert session is not None
        assert not session.closed
    assert session.closed
    assert client.is_closed


async def test_callers_session_is_used_and_never_closed(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    expect(mock_api, "GET", payload=JOB)
    async with aiohttp.ClientSession() as session:
        async with make_client(session=session) as client:
            assert client._core.session is session
            await client.service_jobs.get("job-1")
        assert client.is_closed
        assert not session.closed  # still the caller's
        await client.aclose()
        assert not session.closed
    assert token_posts(mock_api) == 1


async def test_closing_twice_is_harmless(make_client: ClientFactory) -> None:
    client = make_client()
    async with client:
        pass
    await client.aclose()
    await client.aclose()
    assert client.is_closed


async def test_closing_an_unopened_client(make_client: ClientFactory) -> None:
    client = make_client()
    await client.aclose()
    assert client.is_closed
    assert client._core.session is None


async def test_closed_client_refuses_use_and_reentry(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    client = make_client()
    async with client:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await client.service_jobs.get("job-1")
    with pytest.raises(RuntimeError, match="closed"):
        async with client:
            pass
    with pytest.raises(RuntimeError, match="closed"):
        async for _ in client.service_jobs.list(created_after=_since()):
            pass
    with pytest.raises(RuntimeError, match="closed"):
        await client.with_options(retry=RetryPolicy()).service_jobs.get("job-1")
    assert mock_api.requests == {}


async def test_with_options_shares_the_lifecycle(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    expect(mock_api, "GET", payload=JOB, repeat=True)
    client = make_client()
    view = client.with_options(timeout=5)
    await view.service_jobs.get("job-1")
    assert view._core is client._core
    assert view.service_jobs is not client.service_jobs  # each has its own resources
    assert view.service_jobs._client is view
    await view.aclose()
    assert client.is_closed
    with pytest.raises(RuntimeError):
        await client.service_jobs.get("job-1")


def test_with_options_checks_its_arguments() -> None:
    client = ServicesClient(make_creds())
    with pytest.raises(ValueError, match="timeout"):
        client.with_options(timeout=-1)
    with pytest.raises(TypeError, match="retry"):
        client.with_options(retry=5)  # type: ignore[arg-type]


def test_resources_are_built_once() -> None:
    client = ServicesClient(make_creds())
    assert client.service_jobs is client.service_jobs
    assert client.appointments is client.appointments
    assert client.schedules is client.schedules
    assert client.reservations is client.reservations
    assert client.documents is client.documents


def _since() -> datetime:
    return datetime(2026, 1, 1, tzinfo=UTC)


# --- cancellation --------------------------------------------------------------------


def hang(m: aioresponses, method: str, url: Any = API_PATTERN) -> asyncio.Event:
    """Make requests hang until the returned event is set; the event is set on entry."""
    entered = asyncio.Event()
    release = asyncio.Event()

    async def callback(url: Any, **kwargs: Any) -> CallbackResult:
        entered.set()
        await release.wait()
        return CallbackResult(payload=JOB)

    m.add(url, method=method, callback=callback, repeat=True)
    return entered


async def test_cancelling_mid_request_is_not_wrapped(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    entered = hang(mock_api, "GET")
    client = make_client(retry=RetryPolicy(max_retries=3))
    task = asyncio.create_task(client.service_jobs.get("job-1"))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert len([k for k in mock_api.requests if k[0] == "GET"]) == 1  # and not retried


async def test_cancelling_during_the_token_exchange(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    entered = hang(mock_api, "POST", TOKEN_URL)
    client = make_client()
    task = asyncio.create_task(client.service_jobs.get("job-1"))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_cancelling_during_a_retry_wait(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    sent = expect(mock_api, "GET", status=503, body="", repeat=True)
    # A long back-off that we never sit through: the task is cancelled in it.
    client = make_client(retry=RetryPolicy(max_retries=3, base_delay=60, max_delay=60))
    task = asyncio.create_task(client.service_jobs.get("job-1"))
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(sent) == 1
    assert not task.done()  # asleep in the 60 s back-off
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(sent) == 1


async def test_cancelling_while_waiting_for_the_limiter(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    sent = expect(mock_api, "PUT", payload={}, repeat=True)
    client = make_client(
        rate_limits=RateLimits({"assignAppointmentResources": (0.001, 1)}), deadline=None
    )
    await client.appointments.assign_resources("j", "a", ["t"])
    task = asyncio.create_task(client.appointments.assign_resources("j", "a", ["t"]))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(sent) == 1


async def test_client_still_works_after_a_cancellation(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    entered = hang(mock_api, "GET", "https://api.test/service/v1/serviceJobs/slow")
    expect(mock_api, "GET", payload=JOB, url="https://api.test/service/v1/serviceJobs/fast")
    client = make_client()
    task = asyncio.create_task(client.service_jobs.get("slow"))
    await entered.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert (await client.service_jobs.get("fast")).service_job_id == "job-1"


async def test_asyncio_timeout_around_a_call(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    hang(mock_api, "GET")
    client = make_client(retry=RetryPolicy(max_retries=3))
    with pytest.raises(TimeoutError) as caught:
        async with asyncio.timeout(0.01):
            await client.service_jobs.get("job-1")
    assert not isinstance(caught.value, SpApiError)  # the caller's own timeout, unwrapped


# --- the client's own timeout, over a real socket -----------------------------------


async def test_client_timeout_is_api_timeout_error(
    local_server: Callable[..., Any], make_client: ClientFactory
) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await asyncio.sleep(5)  # cancelled when the client hangs up
        return web.json_response(JOB)

    base = await local_server(handler)
    client = make_client(endpoint=base, access_token_provider=_token, timeout=0.05)
    with pytest.raises(ApiTimeoutError) as caught:
        await client.service_jobs.get("job-1")
    assert "getServiceJobByServiceJobId" in str(caught.value)
    assert calls == 1


async def test_client_timeout_retried_for_a_get(
    local_server: Callable[..., Any], make_client: ClientFactory, sleeps: list[float]
) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(5)
        return web.json_response(JOB)

    base = await local_server(handler)
    client = make_client(
        endpoint=base,
        access_token_provider=_token,
        timeout=0.05,
        retry=RetryPolicy(max_retries=1),
    )
    assert (await client.service_jobs.get("job-1")).service_job_id == "job-1"
    assert calls == 2


async def test_refused_connection_is_api_connection_error(make_client: ClientFactory) -> None:
    client = make_client(endpoint="http://127.0.0.1:9", access_token_provider=_token)
    with pytest.raises(ApiConnectionError) as caught:
        await client.service_jobs.get("job-1")
    assert not isinstance(caught.value, ApiTimeoutError)
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)


async def _token() -> str:
    return "Atza|provided"
