"""The feed's date comes from the client's timer when the timer declares it can tell it.

``WallClockTimer`` is the declaration (a timer with ``utcnow()``); the SDK's own timer and
the tests' fake timers are ones.  A timer that is not gets the system's date, read once
and moved on by its monotonic clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from _emulators import NOW
from _timers import ManualTimer, RecordingTimer

from spapi_services import ServicesClient, Timer, WallClockTimer
from spapi_services._timing import LoopTimer, WallClock
from spapi_services.emulator import FakeClock
from spapi_services.feed import DEFAULT_OVERLAP, MARGIN

from .conftest import US, RunOver, ScriptTimer, World, run

LIST = "getServiceJobs"


class BareTimer:
    """A timer with only what :class:`Timer` requires; its clock moves when told."""

    def __init__(self) -> None:
        self.clock = 50.0

    def now(self) -> float:
        return self.clock

    async def sleep(self, seconds: float) -> None:
        self.clock += seconds


class NaiveTimer(BareTimer):
    def utcnow(self) -> datetime:
        return datetime(2026, 6, 17, 12, 0)  # no zone: not a moment


def test_the_sdks_and_the_tests_timers_declare_a_date() -> None:
    for timer in (LoopTimer(), RecordingTimer(), ManualTimer(), ScriptTimer(FakeClock(NOW))):
        assert isinstance(timer, WallClockTimer), type(timer).__name__
    bare: Timer = BareTimer()
    assert not isinstance(bare, WallClockTimer)


def test_a_fake_timers_date_moves_with_its_clock() -> None:
    timer = ManualTimer(date=NOW)
    clock = WallClock(timer)
    assert clock.now() == NOW
    timer.advance(90)
    assert clock.now() == NOW + timedelta(seconds=90)


def test_a_timer_without_a_date_gets_the_systems_moved_by_its_clock() -> None:
    timer = BareTimer()
    clock = WallClock(timer)
    before = datetime.now(UTC)
    first = clock.now()
    assert before <= first <= datetime.now(UTC)
    timer.clock += 3600.5
    assert clock.now() - first == timedelta(seconds=3600.5)


def test_a_date_without_a_zone_is_refused_naming_the_method() -> None:
    with pytest.raises(TypeError, match=r"NaiveTimer.utcnow\(\): must return an aware datetime"):
        WallClock(NaiveTimer()).now()


class Polls(ManualTimer):
    """A manual timer that ends the run (``RunOver``) at its ``limit``-th sleep."""

    def __init__(self, limit: int, date: datetime) -> None:
        super().__init__(date=date)
        self.limit = limit

    async def sleep(self, seconds: float) -> None:
        if len(self) + 1 >= self.limit:
            raise RunOver
        await super().sleep(seconds)


async def test_a_feeds_windows_follow_the_timers_date(world: World) -> None:
    # The client's timer tells a date an hour behind the emulator's clock: the feed's
    # windows are dated by the timer, not by the system or the server.
    behind = NOW - timedelta(hours=1)
    timer = Polls(3, date=behind)
    client = ServicesClient(
        world.emu.credentials,
        endpoint=world.emu.url,
        token_url=world.emu.token_url,
        marketplace_id=US,
        timer=timer,
        rate_limits=False,
    )
    async with client:
        changes = await run(client.service_jobs.changes(interval=600))

    assert changes == []
    asked = [r.query["lastUpdatedAfter"] for r in world.emu.requests if r.operation == LIST]
    starts = [datetime.fromisoformat(a.replace("Z", "+00:00")) for a in asked]
    # The first two polls ask from the start; the third from the second poll's start
    # (600 s on the timer's date) less the margin and the overlap.
    assert starts == [behind, behind, behind + timedelta(seconds=600) - MARGIN - DEFAULT_OVERLAP]
