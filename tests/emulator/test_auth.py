"""Login with Amazon: the token exchange, and the token check on every API call."""

from __future__ import annotations

import aiohttp
import pytest

from spapi_services.emulator import FakeClock, ServicesEmulator

from ._helpers import Api, StartEmulator

GET = "getServiceJobByServiceJobId"


async def test_good_exchange_issues_a_bearer_token(api: Api, emu: ServicesEmulator) -> None:
    status, body = await api.exchange()
    assert status == 200
    assert body["access_token"].startswith("Atza|")
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] == emu.credentials.refresh_token
    assert emu.lwa_exchanges == 2  # the fixture's login and this one
    assert emu.traffic.tokens_issued == 2


async def test_json_body_is_accepted_like_amazons_java_client(
    session: aiohttp.ClientSession, emu: ServicesEmulator
) -> None:
    creds = emu.credentials
    payload = {
        "grant_type": "refresh_token",
        "refresh_token": creds.refresh_token,
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
    }
    async with session.post(emu.token_url, json=payload) as response:
        assert response.status == 200
    assert "<redacted>" in (emu.requests[-1].body or "")
    assert creds.client_secret not in (emu.requests[-1].body or "")


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_id": "amzn1.application-oa2-client.nope"}, 401, "invalid_client"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_secret": "café…"}, 401, "invalid_client"),  # not ASCII: still just wrong
        ({"refresh_token": "Atzr|unknown"}, 400, "invalid_grant"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"grant_type": ""}, 400, "invalid_request"),
        ({"refresh_token": ""}, 400, "invalid_request"),
        ({"client_secret": ""}, 400, "invalid_request"),
    ],
)
async def test_refused_exchanges_answer_like_lwa(
    api: Api, emu: ServicesEmulator, form: dict[str, str], status: int, error: str
) -> None:
    got, body = await api.exchange(**form)
    assert got == status
    assert body["error"] == error
    assert body["error_description"]
    assert emu.count("token", status) == 1


async def test_unreadable_body_is_invalid_request(
    session: aiohttp.ClientSession, emu: ServicesEmulator
) -> None:
    async with session.post(
        emu.token_url, data=b"{not json", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"] == "invalid_request"


async def test_secrets_never_enter_the_request_log(api: Api, emu: ServicesEmulator) -> None:
    job_id = next(iter(emu.store.jobs))
    await api.call(GET, {"serviceJobId": job_id})
    token_record, api_record = emu.requests[0], emu.requests[-1]
    assert token_record.operation == "token"
    assert emu.credentials.client_secret not in (token_record.body or "")
    assert emu.credentials.refresh_token not in (token_record.body or "")
    assert "client_id=amzn1.application-oa2-client." in (token_record.body or "")
    assert api_record.headers["x-amz-access-token"] == "<redacted>"
    assert api.token not in repr(emu.requests)


@pytest.mark.parametrize(
    ("token", "details"),
    [
        (None, "Access token is missing in the request header."),
        ("Atza|made-up", "The access token you provided is revoked, malformed or invalid."),
    ],
)
async def test_missing_or_unknown_token_is_403(
    api: Api, emu: ServicesEmulator, token: str | None, details: str
) -> None:
    answer = await api.call(GET, {"serviceJobId": "1"}, token=token)
    assert answer.status == 403
    assert answer.json == {
        "errors": [
            {
                "code": "Unauthorized",
                "message": "Access to requested resource is denied.",
                "details": details,
            }
        ]
    }
    assert answer.headers["x-amzn-RequestId"]
    assert "x-amzn-RateLimit-Limit" not in answer.headers


async def test_expired_token_says_so(
    session: aiohttp.ClientSession, start_emulator: StartEmulator, clock: FakeClock
) -> None:
    emu = await start_emulator(token_ttl=60)
    api = Api(session, emu)
    await api.login()
    job_id = next(iter(emu.store.jobs))
    assert (await api.call(GET, {"serviceJobId": job_id})).status == 200
    clock.advance(60)
    answer = await api.call(GET, {"serviceJobId": job_id})
    assert answer.status == 403
    assert answer.errors[0]["details"] == "The access token you provided has expired."
    await api.login()
    assert (await api.call(GET, {"serviceJobId": job_id})).status == 200


async def test_expire_and_revoke_all(api: Api, emu: ServicesEmulator) -> None:
    job_id = next(iter(emu.store.jobs))
    emu.auth.expire_all()
    assert "expired" in (await api.call(GET, {"serviceJobId": job_id})).errors[0]["details"]
    emu.auth.revoke_all()
    assert "invalid" in (await api.call(GET, {"serviceJobId": job_id})).errors[0]["details"]


async def test_credentials_come_from_the_seed(start_emulator: StartEmulator) -> None:
    one = await start_emulator(seed=3)
    two = await start_emulator(seed=3)
    three = await start_emulator(seed=4)
    assert one.credentials == two.credentials
    assert one.credentials != three.credentials
    assert one.credentials.refresh_token.startswith("Atzr|")
    assert "client_secret=***" in repr(one.credentials)
