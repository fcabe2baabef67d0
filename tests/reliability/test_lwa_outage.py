"""Login with Amazon down: calls fail fast and clearly, then recover on their own.

The token endpoint refuses connections, drops them, hangs, or answers 5xx.  A call then
fails with :class:`AuthenticationError` after a bounded number of exchanges (four: one and
three retries), its back-off sleeps recorded rather than slept; concurrent calls share
one failing exchange instead of each retrying on its own; and nothing is remembered of the
outage: once the endpoint is back, the next call exchanges a token and succeeds.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from spapi_services import ApiConnectionError, AuthenticationError, TokenEndpointUnreachableError
from spapi_services.emulator import ServicesEmulator

from .conftest import MakeClient, Wire

TOKEN_PATH = "/auth/o2/token"
EXCHANGES = 4  # TokenSource: the first attempt and three retries

OUTAGES = {
    "503": {"error_rate": 1.0, "error_status": 503},
    "500-html": {"error_rate": 1.0, "error_status": 500, "html": True},
    "dropped": {"drop_rate": 1.0},
}


def _job(emu: ServicesEmulator) -> str:
    return next(iter(emu.store.jobs))


@pytest.mark.parametrize("outage", OUTAGES)
async def test_an_outage_fails_after_bounded_retries_then_recovers(
    outage: str,
    emu: ServicesEmulator,
    make_client: MakeClient,
    wire: Wire,
    sdk_sleeps: list[float],
) -> None:
    client = make_client(emu, session=wire.session)
    emu.faults.set("token", **OUTAGES[outage])
    with pytest.raises(AuthenticationError) as caught:
        await client.service_jobs.get(_job(emu))
    assert emu.lwa_exchanges == EXCHANGES
    assert wire.attempts[TOKEN_PATH] == EXCHANGES
    assert len(sdk_sleeps) == EXCHANGES - 1
    assert sdk_sleeps == sorted(sdk_sleeps)  # backing off, not hammering
    assert sum(sdk_sleeps) < 4  # a few seconds of back-off in all, then a clear answer
    assert f"Gave up after {EXCHANGES} attempts." in caught.value.__notes__
    assert caught.value.status_code == (None if outage == "dropped" else int(outage[:3]))
    assert wire.api_attempts == 0  # no API request without a token

    emu.faults.clear("token")
    assert (await client.service_jobs.get(_job(emu))).service_job_id == _job(emu)
    assert emu.lwa_exchanges == EXCHANGES + 1


async def test_an_endpoint_nobody_listens_on(
    emu: ServicesEmulator, make_client: MakeClient, wire: Wire, sdk_sleeps: list[float]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(
        emu, session=wire.session, token_url=f"http://127.0.0.1:{port}/auth/o2/token"
    )
    with pytest.raises(
        TokenEndpointUnreachableError, match=r"could not reach 127\.0\.0\.1"
    ) as caught:
        await client.service_jobs.get(_job(emu))
    # The network, not the credentials: both kinds of handler catch it.
    assert isinstance(caught.value, AuthenticationError)
    assert isinstance(caught.value, ApiConnectionError)
    assert caught.value.host == "127.0.0.1"
    assert wire.attempts[TOKEN_PATH] == EXCHANGES
    assert len(sdk_sleeps) == EXCHANGES - 1
    assert caught.value.status_code is None
    assert emu.count() == 0


async def test_an_endpoint_that_hangs_times_out_each_attempt(
    emu: ServicesEmulator, make_client: MakeClient, wire: Wire, sdk_sleeps: list[float]
) -> None:
    emu.faults.set("token", latency=0.6, count=EXCHANGES)
    client = make_client(emu, session=wire.session, timeout=0.1)
    with pytest.raises(
        AuthenticationError,
        match=r"could not reach 127\.0\.0\.1 \(timed out waiting for the answer\)",
    ):
        await client.service_jobs.get(_job(emu))
    assert wire.attempts[TOKEN_PATH] == EXCHANGES
    assert (await client.service_jobs.get(_job(emu))).service_job_id == _job(emu)


async def test_concurrent_calls_share_one_failing_exchange(
    emu: ServicesEmulator, make_client: MakeClient, wire: Wire, sdk_sleeps: list[float]
) -> None:
    client = make_client(emu, session=wire.session)
    emu.faults.set("token", error_rate=1.0, error_status=503)
    calls = [client.service_jobs.get(_job(emu)) for _ in range(25)]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, AuthenticationError) for o in outcomes)
    assert emu.lwa_exchanges == EXCHANGES  # one exchange's retries, not one per call
    emu.faults.clear("token")
    recovered = await asyncio.gather(*[client.service_jobs.get(_job(emu)) for _ in range(25)])
    assert len(recovered) == 25
    assert emu.lwa_exchanges == EXCHANGES + 1


async def test_a_throttled_exchange_is_retried_and_succeeds(
    emu: ServicesEmulator, make_client: MakeClient, sdk_sleeps: list[float]
) -> None:
    emu.faults.set("token", error_rate=1.0, error_status=429, count=2)
    client = make_client(emu)
    assert (await client.service_jobs.get(_job(emu))).service_job_id == _job(emu)
    assert emu.lwa_exchanges == 3
    assert len(sdk_sleeps) == 2


async def test_an_outage_when_the_token_expires_mid_session(
    emu: ServicesEmulator, make_client: MakeClient, sdk_sleeps: list[float]
) -> None:
    client = make_client(emu)
    await client.service_jobs.get(_job(emu))
    emu.auth.expire_all()  # the API now says "expired": the SDK must exchange again
    emu.faults.set("token", error_rate=1.0, error_status=503)
    with pytest.raises(AuthenticationError):
        await client.service_jobs.get(_job(emu))
    assert emu.lwa_exchanges == 1 + EXCHANGES
    emu.faults.clear("token")
    assert (await client.service_jobs.get(_job(emu))).service_job_id == _job(emu)
    assert emu.count("getServiceJobByServiceJobId", 403) == 1  # one rejection, then a new token
