"""Usage plans: token buckets per selling partner and operation, on the emulator's clock."""

from __future__ import annotations

import aiohttp
import pytest

from spapi_services.emulator import FakeClock, LwaCredentials, ServicesEmulator

from ._helpers import Api, StartEmulator

GET = "getServiceJobByServiceJobId"
ASSIGN = "assignAppointmentResources"
QUOTA = {
    "errors": [
        {
            "code": "QuotaExceeded",
            "message": "You exceeded your quota for the requested resource.",
            "details": "",
        }
    ]
}


@pytest.fixture
async def limited(start_emulator: StartEmulator, session: aiohttp.ClientSession) -> Api:
    emu = await start_emulator(enforce_limits=True)
    api = Api(session, emu)
    await api.login()
    return api


async def assign(api: Api) -> int:
    # Throttling comes before any other check, so a nonsense call is enough.
    answer = await api.call(
        ASSIGN, {"serviceJobId": "j", "appointmentId": "a"}, body={"resources": [{}]}
    )
    if answer.status == 429:
        assert answer.json == QUOTA
        assert "x-amzn-RateLimit-Limit" not in answer.headers
    return answer.status


async def test_burst_then_429_then_refill(limited: Api, clock: FakeClock) -> None:
    statuses = [await assign(limited) for _ in range(3)]
    assert statuses == [422, 422, 429]  # assignAppointmentResources: rate 1, burst 2
    clock.advance(0.5)
    assert await assign(limited) == 429
    clock.advance(0.5)
    assert await assign(limited) == 422
    assert limited.emu.count(ASSIGN, 429) == 2


async def test_buckets_are_per_operation(limited: Api, clock: FakeClock) -> None:
    for _ in range(2):
        await assign(limited)
    assert await assign(limited) == 429
    job_id = next(iter(limited.emu.store.jobs))
    for _ in range(40):  # getServiceJobByServiceJobId: burst 40
        assert (await limited.call(GET, {"serviceJobId": job_id})).status == 200
    assert (await limited.call(GET, {"serviceJobId": job_id})).status == 429


async def test_buckets_are_per_selling_partner(
    limited: Api, session: aiohttp.ClientSession
) -> None:
    emu = limited.emu
    emu.auth.add_refresh_token("Atzr|second-seller")
    other = Api(session, emu)
    await other.login(refresh_token="Atzr|second-seller")
    for _ in range(2):
        await assign(limited)
    assert await assign(limited) == 429
    assert await assign(other) == 422


async def test_auth_comes_before_throttling(limited: Api) -> None:
    for _ in range(2):
        await assign(limited)
    answer = await limited.call(
        ASSIGN, {"serviceJobId": "j", "appointmentId": "a"}, body={}, token=None
    )
    assert answer.status == 403


async def test_limits_can_be_switched_off_scaled_and_overridden(
    start_emulator: StartEmulator, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    emu = await start_emulator(enforce_limits=True, rate_scale=10)
    api = Api(session, emu)
    await api.login()
    assert [await assign(api) for _ in range(3)] == [422, 422, 429]
    clock.advance(0.1)  # ten times the published refill rate
    assert await assign(api) == 422
    answer = await api.call(GET, {"serviceJobId": "nope"})
    assert answer.headers["x-amzn-RateLimit-Limit"] == "200.0"
    emu.limits.set(GET, rate=0.5, burst=1)
    assert (await api.call(GET, {"serviceJobId": "nope"})).headers[
        "x-amzn-RateLimit-Limit"
    ] == "0.5"
    assert (await api.call(GET, {"serviceJobId": "nope"})).status == 429
    emu.limits.enforce = False
    assert [await assign(api) for _ in range(5)] == [422] * 5
    with pytest.raises(ValueError, match="rate_scale"):
        ServicesEmulator(rate_scale=0)


async def test_rejected_requests_still_spend_their_token(limited: Api) -> None:
    # A 400 costs a token like any other request, as Amazon counts them.
    for _ in range(2):
        await limited.call(ASSIGN, {"serviceJobId": "x" * 101, "appointmentId": "a"}, body={})
    assert await assign(limited) == 429


def test_credentials_are_the_sdks_own_class() -> None:
    from spapi_services import LwaCredentials as Public

    assert LwaCredentials is Public


async def test_the_plan_is_metered_on_arrival_before_faults_and_latency(limited: Api) -> None:
    # A gateway throttles a request as it arrives; the backend's trouble comes after.
    limited.emu.faults.set(ASSIGN, error_rate=1.0, error_status=503)
    statuses = [await assign(limited) for _ in range(3)]
    assert statuses == [503, 503, 429]  # burst 2 admitted (and failed), the third refused
    assert limited.emu.count(ASSIGN, 429) == 1
