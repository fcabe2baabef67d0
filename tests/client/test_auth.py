"""Login with Amazon: one exchange at a time, reuse, refusals, retries, secrets kept out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from _timers import ManualTimer
from aioresponses import CallbackResult, aioresponses
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from spapi_services import (
    AuthenticationError,
    ForbiddenError,
    LwaCredentials,
    MemoryTokenCache,
    RawResponse,
    RetryPolicy,
    ServicesClient,
)
from spapi_services._auth import TokenSource
from spapi_services._sender import AiohttpSender
from spapi_services._timing import LoopTimer

from ._helpers import (
    ACCESS_TOKEN,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    TOKEN_URL,
    ClientFactory,
    all_calls,
    expect,
    lwa_ok,
    slow,
    token_posts,
)

JOB = {"payload": {"serviceJobId": "job-1"}}
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN)


def form(call: Any) -> dict[str, str]:
    """The form an LWA exchange posted (one value per field)."""
    return {k: v for k, (v,) in parse_qs(call.kwargs["data"].decode()).items()}


async def test_200_concurrent_first_calls_make_one_exchange(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    sent = expect(mock_api, "GET", payload=JOB, repeat=True)
    client = make_client()
    async with client:
        jobs = await asyncio.gather(*(client.service_jobs.get("job-1") for _ in range(200)))
    assert len(jobs) == 200
    assert token_posts(mock_api) == 1
    assert len(sent) == 200
    assert {s.headers["x-amz-access-token"] for s in sent} == {ACCESS_TOKEN}


async def test_the_exchange_posts_the_form(mock_api: aioresponses, client: ServicesClient) -> None:
    expect(mock_api, "GET", payload=JOB)
    await client.service_jobs.get("job-1")
    (call,) = mock_api.requests[("POST", aiohttp.client.URL(TOKEN_URL))]
    assert form(call) == {
        "grant_type": "refresh_token",
        "refresh_token": REFRESH_TOKEN,
        "client_id": "amzn1.application-oa2-client.test",
        "client_secret": CLIENT_SECRET,
    }
    assert call.kwargs["headers"]["Content-Type"].startswith("application/x-www-form-urlencoded")


async def test_token_reused_until_a_minute_before_expiry(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    mock_api.post(TOKEN_URL, payload={"access_token": "Atza|one", "expires_in": 3600})
    mock_api.post(TOKEN_URL, payload={"access_token": "Atza|two", "expires_in": 3600})
    sent = expect(mock_api, "GET", payload=JOB, repeat=True)
    clock = ManualTimer()
    client = make_client(timer=clock)

    await client.service_jobs.get("job-1")
    clock.advance(3600 - 60 - 0.001)  # still more than a minute left
    await client.service_jobs.get("job-1")
    assert token_posts(mock_api) == 1
    clock.advance(0.001)  # exactly a minute left: refresh
    await client.service_jobs.get("job-1")
    await client.service_jobs.get("job-1")

    assert token_posts(mock_api) == 2
    tokens = [s.headers["x-amz-access-token"] for s in sent]
    assert tokens == ["Atza|one", "Atza|one", "Atza|two", "Atza|two"]


async def test_token_source_through_an_in_memory_sender() -> None:
    """The seam: the exchange needs nothing but a sender and a timer."""
    answers = iter([("t1", 120), ("t2", 120), ("t3", 30)])
    seen: list[tuple[str, str, bytes | None]] = []

    async def sender(
        method: str, url: URL, headers: Mapping[str, str], body: bytes | None, seconds: float
    ) -> RawResponse:
        seen.append((method, str(url), body))
        token, lifetime = next(answers)
        data = json.dumps({"access_token": token, "expires_in": lifetime}).encode()
        return RawResponse(200, CIMultiDictProxy(CIMultiDict()), data)

    clock = ManualTimer()
    tokens = TokenSource(
        LwaCredentials("id", "secret", "refresh"), token_url=TOKEN_URL, sender=sender, timer=clock
    )
    policy = RetryPolicy()
    assert await tokens.get(policy) == "t1"
    clock.advance(59.9)
    assert await tokens.get(policy) == "t1"
    clock.advance(0.1)  # a minute short of its 120 s: exchanged again
    assert await tokens.get(policy) == "t2"
    clock.advance(60)
    # A token that lives a minute or less is kept for half its life, not asked for each time.
    assert await tokens.get(policy) == "t3"
    clock.advance(14.9)
    assert await tokens.get(policy) == "t3"
    assert tokens.exchanges == 3
    assert {(method, url) for method, url, _ in seen} == {("POST", TOKEN_URL)}
    assert parse_qs((seen[0][2] or b"").decode())["grant_type"] == ["refresh_token"]


@pytest.mark.parametrize("error", ["invalid_grant", "invalid_client", "unauthorized_client"])
async def test_refusal_fails_at_once_without_leaking(
    mock_api: aioresponses, make_client: ClientFactory, error: str
) -> None:
    mock_api.post(
        TOKEN_URL,
        status=400,
        payload={"error": error, "error_description": "The request has an invalid grant"},
        repeat=True,
    )
    client = make_client()
    with pytest.raises(AuthenticationError) as caught:
        await client.service_jobs.get("job-1")

    exc = caught.value
    assert exc.error == error
    assert exc.error_description == "The request has an invalid grant"
    assert exc.status_code == 400
    assert error in str(exc)
    assert token_posts(mock_api) == 1  # no retry of a refusal
    assert all_calls(mock_api) == []  # and no API call without a token
    for secret in SECRETS:
        assert secret not in str(exc)
        assert secret not in repr(exc)


async def test_concurrent_callers_share_one_refusal(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    refusal = CallbackResult(status=400, payload={"error": "invalid_grant"})
    mock_api.post(TOKEN_URL, callback=slow(refusal), repeat=True)
    client = make_client()
    results = await asyncio.gather(
        *(client.service_jobs.get("job-1") for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert all(r.error == "invalid_grant" for r in results)  # type: ignore[union-attr]
    assert token_posts(mock_api) == 1  # not one refused exchange per waiting caller


async def test_a_later_call_tries_the_exchange_again(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    mock_api.post(TOKEN_URL, status=400, payload={"error": "invalid_grant"})
    lwa_ok(mock_api)
    expect(mock_api, "GET", payload=JOB)
    client = make_client()
    with pytest.raises(AuthenticationError):
        await client.service_jobs.get("job-1")
    job = await client.service_jobs.get("job-1")
    assert job.service_job_id == "job-1"
    assert token_posts(mock_api) == 2


async def test_lwa_5xx_is_retried_a_bounded_number_of_times(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float]
) -> None:
    mock_api.post(TOKEN_URL, status=503, body="<html>busy</html>", repeat=True)
    client = make_client(retry=RetryPolicy(max_retries=3))
    with pytest.raises(AuthenticationError) as caught:
        await client.service_jobs.get("job-1")
    assert token_posts(mock_api) == 4  # the first try and three retries
    assert len(sleeps) == 3
    assert sleeps[0] < sleeps[1] < sleeps[2]
    assert caught.value.status_code == 503
    assert "503" in str(caught.value)
    assert all_calls(mock_api) == []


@pytest.mark.parametrize("status", [500, 429])
async def test_lwa_transient_failure_then_success(
    mock_api: aioresponses, make_client: ClientFactory, sleeps: list[float], status: int
) -> None:
    mock_api.post(TOKEN_URL, status=status, body="")
    mock_api.post(TOKEN_URL, exception=aiohttp.ClientConnectionError("reset"))
    lwa_ok(mock_api)
    expect(mock_api, "GET", payload=JOB)
    client = make_client(retry=RetryPolicy(max_retries=2))
    job = await client.service_jobs.get("job-1")
    assert job.service_job_id == "job-1"
    assert token_posts(mock_api) == 3
    assert len(sleeps) == 2


async def test_lwa_200_without_a_token(mock_api: aioresponses, make_client: ClientFactory) -> None:
    mock_api.post(TOKEN_URL, payload={"token_type": "bearer"})
    client = make_client()
    with pytest.raises(AuthenticationError, match="without an access token"):
        await client.service_jobs.get("job-1")


def test_credentials_repr_hides_the_secrets(creds: LwaCredentials) -> None:
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "amzn1.application-oa2-client.test" in text
        assert CLIENT_SECRET not in text
        assert REFRESH_TOKEN not in text


def test_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPAPI_CLIENT_ID", "cid")
    monkeypatch.setenv("SPAPI_CLIENT_SECRET", "csecret")
    monkeypatch.setenv("SPAPI_REFRESH_TOKEN", " Atzr|r ")
    creds = LwaCredentials.from_env()
    assert (creds.client_id, creds.client_secret, creds.refresh_token) == (
        "cid",
        "csecret",
        "Atzr|r",
    )


def test_credentials_from_env_names_every_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SPAPI_CLIENT_ID", "cid")
    monkeypatch.delenv("SPAPI_CLIENT_SECRET", raising=False)
    monkeypatch.setenv("SPAPI_REFRESH_TOKEN", "  ")
    with pytest.raises(ValueError, match="SPAPI_CLIENT_SECRET, SPAPI_REFRESH_TOKEN") as caught:
        LwaCredentials.from_env()
    assert "SPAPI_CLIENT_ID" not in str(caught.value)


def test_credentials_from_a_mapping() -> None:
    env = {"SPAPI_CLIENT_ID": "a", "SPAPI_CLIENT_SECRET": "b", "SPAPI_REFRESH_TOKEN": "c"}
    assert LwaCredentials.from_env(env).refresh_token == "c"
    with pytest.raises(ValueError, match=r"SPAPI_CLIENT_ID$"):
        LwaCredentials.from_env({**env, "SPAPI_CLIENT_ID": ""})


@pytest.mark.parametrize("field", ["client_id", "client_secret", "refresh_token"])
def test_credentials_refuse_empty_fields(field: str) -> None:
    values = {"client_id": "a", "client_secret": "b", "refresh_token": "c", field: " "}
    with pytest.raises(ValueError, match=field):
        LwaCredentials(**values)


async def test_client_reads_credentials_from_env(
    mock_api: aioresponses, monkeypatch: pytest.MonkeyPatch, make_client: ClientFactory
) -> None:
    monkeypatch.setenv("SPAPI_CLIENT_ID", "env-id")
    monkeypatch.setenv("SPAPI_CLIENT_SECRET", "env-secret")
    monkeypatch.setenv("SPAPI_REFRESH_TOKEN", "env-refresh")
    lwa_ok(mock_api)
    expect(mock_api, "GET", payload=JOB)
    client = make_client(credentials=None)
    await client.service_jobs.get("job-1")
    (call,) = mock_api.requests[("POST", aiohttp.client.URL(TOKEN_URL))]
    assert form(call)["client_id"] == "env-id"
    assert form(call)["refresh_token"] == "env-refresh"


def test_client_without_any_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SPAPI_CLIENT_ID", "SPAPI_CLIENT_SECRET", "SPAPI_REFRESH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="SPAPI_CLIENT_ID"):
        ServicesClient()


async def test_access_token_provider_replaces_lwa(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    handed_out: list[str] = []

    async def provider() -> str:
        token = f"Atza|mine-{len(handed_out)}"
        handed_out.append(token)
        return token

    sent = expect(mock_api, "GET", payload=JOB, repeat=True)
    client = make_client(access_token_provider=provider)
    await client.service_jobs.get("job-1")
    await client.service_jobs.get("job-1")
    assert token_posts(mock_api) == 0
    assert [s.headers["x-amz-access-token"] for s in sent] == ["Atza|mine-0", "Atza|mine-1"]


# --- the API says the token is no good ----------------------------------------------

EXPIRED = {
    "errors": [
        {
            "code": "Unauthorized",
            "message": "Access to requested resource is denied.",
            "details": "The access token you provided has expired.",
        }
    ]
}
UNAUTHORIZED_JOB = {
    "errors": [
        {
            "code": "UnauthorizedAction",
            "message": "Not authorized to access this resource. Please check your input again.",
            "details": "",
        }
    ]
}


def answers(m: aioresponses, *responses: tuple[int, Any]) -> list[str]:
    """Answer API GETs in order; return the token each request carried."""
    tokens: list[str] = []
    queue = list(responses)

    def callback(url: Any, **kwargs: Any) -> CallbackResult:
        tokens.append(kwargs["headers"]["x-amz-access-token"])
        status, payload = queue.pop(0)
        return CallbackResult(status=status, payload=payload)

    m.add(
        aiohttp.client.URL("https://api.test/service/v1/serviceJobs/job-1"),
        "GET",
        callback=callback,
        repeat=True,
    )
    return tokens


async def test_expired_token_is_refreshed_once(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    mock_api.post(TOKEN_URL, payload={"access_token": "Atza|old", "expires_in": 3600})
    mock_api.post(TOKEN_URL, payload={"access_token": "Atza|new", "expires_in": 3600})
    tokens = answers(mock_api, (403, EXPIRED), (200, JOB), (200, JOB))
    client = make_client()
    job = await client.service_jobs.get("job-1")
    assert job.service_job_id == "job-1"
    await client.service_jobs.get("job-1")
    assert tokens == ["Atza|old", "Atza|new", "Atza|new"]
    assert token_posts(mock_api) == 2


async def test_second_expired_answer_raises(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    mock_api.post(TOKEN_URL, payload={"access_token": "Atza|old", "expires_in": 3600})
    mock_api.post(TOKEN_URL, payload={"access_token": "Atza|new", "expires_in": 3600})
    tokens = answers(mock_api, (403, EXPIRED), (403, EXPIRED))
    client = make_client()
    with pytest.raises(ForbiddenError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.errors[0].details == "The access token you provided has expired."
    assert tokens == ["Atza|old", "Atza|new"]
    assert token_posts(mock_api) == 2


async def test_forbidden_job_is_not_retried(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    tokens = answers(mock_api, (403, UNAUTHORIZED_JOB))
    client = make_client()
    with pytest.raises(ForbiddenError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.codes == ("UnauthorizedAction",)
    assert len(tokens) == 1
    assert token_posts(mock_api) == 1


def test_token_source_repr_hides_the_token() -> None:
    tokens = TokenSource(
        LwaCredentials("id", CLIENT_SECRET, REFRESH_TOKEN),
        sender=AiohttpSender(aiohttp.ClientSession),
        timer=LoopTimer(),
    )
    tokens._token = ACCESS_TOKEN
    for secret in SECRETS:
        assert secret not in repr(tokens)


async def test_lwa_redirect_is_not_followed(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    elsewhere = "https://elsewhere.test/collect"
    mock_api.post(TOKEN_URL, status=307, headers={"Location": elsewhere})
    mock_api.post(elsewhere, payload={"access_token": "x"})
    client = make_client()
    with pytest.raises(AuthenticationError) as caught:
        await client.service_jobs.get("job-1")
    assert caught.value.status_code == 307
    assert ("POST", aiohttp.client.URL(elsewhere)) not in mock_api.requests


async def test_one_token_cache_serves_several_clients_of_a_seller(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    expect(mock_api, "GET", payload=JOB, repeat=True)
    shared = MemoryTokenCache()
    first = make_client(token_cache=shared)
    second = make_client(token_cache=shared)
    await asyncio.gather(first.service_jobs.get("job-1"), second.service_jobs.get("job-1"))
    assert token_posts(mock_api) == 1  # one exchange for both
    assert "Atza" not in repr(shared)


async def test_a_refused_token_is_dropped_from_the_shared_cache(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    mock_api.post(TOKEN_URL, payload={"access_token": "Atza|old", "expires_in": 3600})
    mock_api.post(TOKEN_URL, payload={"access_token": "Atza|new", "expires_in": 3600})
    refused = {"errors": [{"code": "Unauthorized", "message": "The access token has expired"}]}
    expect(mock_api, "GET", status=403, payload=refused)
    sent = expect(mock_api, "GET", payload=JOB, repeat=True)
    shared = MemoryTokenCache()
    await make_client(token_cache=shared).service_jobs.get("job-1")
    # A second client of the seller asks the cache and gets the new token, not the old.
    await make_client(token_cache=shared).service_jobs.get("job-1")
    assert [s.headers["x-amz-access-token"] for s in sent] == ["Atza|new", "Atza|new"]
    assert token_posts(mock_api) == 2


def test_the_token_cache_argument_is_checked() -> None:
    with pytest.raises(TypeError, match="token_cache: expected a TokenCache"):
        ServicesClient(LwaCredentials("i", "s", "r"), token_cache={})  # type: ignore[arg-type]
