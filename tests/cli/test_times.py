"""How the command line reads times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spapi_services.cli._times import parse_when

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
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05+02:00", datetime(2026, 1, 2, 1, 4, 5, tzinfo=UTC)),
    ],
)
def test_times_people_type(text: str, expected: datetime) -> None:
    assert parse_when(text, now=NOW) == expected


def test_a_time_that_is_not_one_says_what_would_do() -> None:
    with pytest.raises(ValueError, match=r"ISO 8601.*30d"):
        parse_when("yesterday-ish", now=NOW)
