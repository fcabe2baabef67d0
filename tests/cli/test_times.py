"""How the command line reads times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spapi_services.cli._times import parse_when, read_time

NOW = datetime(2026, 3, 4, 15, 30, 45, 123000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("30d", datetime(2026, 2, 2, 15, 30, tzinfo=UTC)),
        ("+2h", datetime(2026, 3, 4, 17, 30, tzinfo=UTC)),
        ("90m", datetime(2026, 3, 4, 14, 0, tzinfo=UTC)),
        ("1w", datetime(2026, 2, 25, 15, 30, tzinfo=UTC)),
        ("10s", NOW - timedelta(seconds=10)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05+02:00", datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)),
    ],
)
def test_times_people_type(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


def test_a_time_that_is_not_one_says_what_would_do() -> None:
    with pytest.raises(ValueError, match=r"ISO 8601.*30d"):
        parse_when("yesterday-ish", now=NOW)


# --- a time without an offset is local time, never silently UTC ----------------------------


@pytest.mark.usefixtures("new_york")
@pytest.mark.parametrize(
    ("text", "instant", "zone"),
    [
        ("2026-12-01T09:00", datetime(2026, 12, 1, 14, 0, tzinfo=UTC), "EST, UTC-05:00"),
        ("2026-07-01T09:00", datetime(2026, 7, 1, 13, 0, tzinfo=UTC), "EDT, UTC-04:00"),
        ("2026-12-01 09:00:30", datetime(2026, 12, 1, 14, 0, 30, tzinfo=UTC), "EST, UTC-05:00"),
        ("2026-12-01", datetime(2026, 12, 1, 5, 0, tzinfo=UTC), "EST, UTC-05:00"),
    ],
)
def test_a_time_without_an_offset_is_local_time(text: str, instant: datetime, zone: str) -> None:
    reading = read_time(text, now=NOW)
    assert reading.instant == instant
    assert reading.zone == zone


@pytest.mark.usefixtures("new_york")
@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-12-01T09:00Z", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01T09:00+00:00", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("2026-12-01T04:00-05:00", datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("+2h", datetime(2026, 3, 4, 17, 30, tzinfo=UTC)),
        ("now", NOW),
    ],
)
def test_a_time_with_an_offset_is_not_read_in_the_local_zone(text: str, instant: datetime) -> None:
    reading = read_time(text, now=NOW)
    assert reading.zone is None
    assert reading.instant == instant


@pytest.mark.usefixtures("new_york")
def test_a_local_time_the_clocks_skip_is_refused() -> None:
    with pytest.raises(ValueError, match=r"does not exist in the local time zone.*offset"):
        read_time("2026-03-08T02:30", now=NOW)


@pytest.mark.usefixtures("new_york")
def test_a_local_time_that_happens_twice_is_refused_offering_both_offsets() -> None:
    with pytest.raises(ValueError, match=r"happens twice") as refused:
        read_time("2026-11-01T01:30", now=NOW)
    assert "2026-11-01T01:30-04:00 or 2026-11-01T01:30-05:00" in str(refused.value)
