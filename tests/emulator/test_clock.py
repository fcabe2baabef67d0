"""The emulator's clocks: a world at a chosen moment, with time still passing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from _emulators import NOW

from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.clock import ShiftedClock


class Ticks:
    """Stands for ``time.monotonic`` (which a ShiftedClock runs on): moves only when told."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks(monkeypatch: pytest.MonkeyPatch) -> Ticks:
    fake = Ticks()
    monkeypatch.setattr(time, "monotonic", fake)
    return fake


def test_a_shifted_clock_starts_at_its_moment_and_runs(ticks: Ticks) -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    clock = ShiftedClock(NOW.astimezone(india))
    assert clock.now() == NOW
    assert clock.now().tzinfo is UTC
    ticks.now += 90.5
    assert clock.now() == NOW + timedelta(seconds=90.5)
    assert clock.monotonic() == 590.5


def test_a_shifted_clock_needs_an_aware_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        ShiftedClock(datetime(2026, 6, 17, 12))


def test_an_emulator_at_a_moment_builds_its_world_around_that_day(ticks: Ticks) -> None:
    emu = ServicesEmulator(jobs=30, seed=2, at=NOW)
    assert emu.clock.now() == NOW
    midnight = NOW.replace(hour=0)
    assert max(j.last_updated for j in emu.store.jobs.values()) <= midnight
    same = ServicesEmulator(jobs=30, seed=2, clock=FakeClock(NOW))
    assert [j.to_wire() for j in emu.store.jobs.values()] == [
        j.to_wire() for j in same.store.jobs.values()
    ]
    ticks.now += 3600
    assert emu.clock.now() == NOW + timedelta(hours=1)


def test_a_moment_or_a_clock_not_both() -> None:
    with pytest.raises(ValueError, match="at: give a clock or a start time, not both"):
        ServicesEmulator(jobs=1, at=NOW, clock=FakeClock(NOW))
