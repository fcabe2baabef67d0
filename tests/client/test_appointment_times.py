"""An appointment's start, booked or moved: refused before sending when Amazon would
refuse it (in the past, beyond 365 days), naming ``start_time``, on the clock that
fulfilment times are checked on, with the same minute's allowance; an emulator judges by
its own clock and refuses the same in Amazon's words."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from aioresponses import aioresponses

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.errors import UnprocessableEntityError
from spapi_services.resources.appointments import FUTURE_ALLOWANCE, MAX_BOOKING_AHEAD

from ._helpers import ClientFactory, expect, lwa_ok

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
LIVE = "https://sellingpartnerapi-na.amazon.com"
LIVE_PATTERN = re.compile(r"^https://sellingpartnerapi-na\.amazon\.com/")


@pytest.fixture
def live(make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch) -> ServicesClient:
    """A client of Amazon's live host whose clock reads T0 (a fake: nothing sleeps)."""
    client = make_client(endpoint=LIVE)
    monkeypatch.setattr(client, "_utcnow", lambda: T0)
    return client


async def test_a_past_start_is_refused_naming_start_time_before_sending(
    mock_api: aioresponses, live: ServicesClient
) -> None:
    past = T0 - timedelta(hours=2)
    with pytest.raises(ValueError, match=r"^start_time: ") as caught:
        await live.appointments.add("job", start_time=past)
    assert str(caught.value) == (
        "start_time: 2026-03-01T07:30:00Z is in the past (this machine's clock says "
        "2026-03-01T09:30:00Z); an appointment must start in the future: Amazon refuses a "
        "past start"
    )
    with pytest.raises(ValueError, match=r"^start_time: .* is in the past"):
        await live.appointments.reschedule("job", "appt", start_time=past, reason_code="R1")
    assert mock_api.requests == {}


async def test_a_start_beyond_365_days_is_refused_naming_start_time(
    mock_api: aioresponses, live: ServicesClient
) -> None:
    far = T0 + MAX_BOOKING_AHEAD + timedelta(days=1)
    with pytest.raises(ValueError, match=r"^start_time: 2027-03-02T09:30:00Z is more than 365"):
        await live.appointments.add("job", start_time=far)
    with pytest.raises(ValueError, match="at most 365 days ahead"):
        await live.appointments.reschedule("job", "appt", start_time=far, reason_code="R1")
    assert mock_api.requests == {}


async def test_starts_within_the_allowance_and_the_year_are_sent(
    mock_api: aioresponses, live: ServicesClient
) -> None:
    lwa_ok(mock_api)
    answer = {"payload": {"appointmentId": "appt-2"}}
    sent = expect(mock_api, "POST", payload=answer, repeat=True, url=LIVE_PATTERN)
    # A clock a minute ahead of Amazon's: a start that is just "now" there is still taken.
    await live.appointments.add("job", start_time=T0 - FUTURE_ALLOWANCE)
    await live.appointments.add("job", start_time=T0 + MAX_BOOKING_AHEAD)
    assert [s.json["appointmentTime"]["startTime"] for s in sent] == [
        "2026-03-01T09:29:00Z",
        "2027-03-01T09:30:00Z",
    ]


async def test_the_sandbox_and_other_hosts_keep_their_own_clock(
    mock_api: aioresponses, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The static sandbox matches requests with fixed past dates; a proxy or an emulator
    # may run its world at another date: the server judges the start there.
    lwa_ok(mock_api)
    answer = {"payload": {"appointmentId": "appt-2"}}
    sent = expect(mock_api, "POST", payload=answer, repeat=True, url=re.compile(".*"))
    past = T0 - timedelta(days=30)
    for options in ({"sandbox": True, "endpoint": None}, {}):
        client = make_client(**options)
        monkeypatch.setattr(client, "_utcnow", lambda: T0)
        await client.appointments.add("job", start_time=past)
    assert len(sent) == 2
    assert "sandbox.sellingpartnerapi-na.amazon.com" in str(sent[0].url)


async def test_the_emulator_refuses_a_past_start_in_amazons_words() -> None:
    async with ServicesEmulator(jobs=20, seed=4, enforce_limits=False) as emu:
        job = next(j for j in emu.store.jobs.values() if j.status == "PENDING_SCHEDULE")
        async with ServicesClient(
            emu.credentials,
            endpoint=emu.url,
            token_url=emu.token_url,
            marketplace_id=job.marketplace_id,
        ) as client:
            with pytest.raises(UnprocessableEntityError, match="should be in the future"):
                await client.appointments.add(
                    job.service_job_id, start_time=emu.clock.now() - timedelta(hours=1)
                )
            with pytest.raises(UnprocessableEntityError, match="maximum allowed period of 365"):
                await client.appointments.add(
                    job.service_job_id, start_time=emu.clock.now() + timedelta(days=400)
                )
        assert emu.count("addAppointmentForServiceJobByServiceJobId", 422) == 2
