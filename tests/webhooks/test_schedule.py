"""What each answer means, and when a delivery is tried again: the pure parts."""

from __future__ import annotations

import random

import pytest

from spapi_services.webhooks import DEFAULT_DELAYS, AttemptOutcome, RetrySchedule, outcome_of


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, AttemptOutcome.DELIVERED),
        (202, AttemptOutcome.DELIVERED),
        (204, AttemptOutcome.DELIVERED),
        (299, AttemptOutcome.DELIVERED),
        (301, AttemptOutcome.FAILED),
        (302, AttemptOutcome.FAILED),
        (308, AttemptOutcome.FAILED),
        (400, AttemptOutcome.FAILED),
        (401, AttemptOutcome.FAILED),
        (404, AttemptOutcome.FAILED),
        (410, AttemptOutcome.GONE),
        (429, AttemptOutcome.SLOW_DOWN),
        (500, AttemptOutcome.FAILED),
        (502, AttemptOutcome.SLOW_DOWN),
        (503, AttemptOutcome.SLOW_DOWN),
        (504, AttemptOutcome.SLOW_DOWN),
        (None, AttemptOutcome.FAILED),
    ],
)
def test_each_status_means_what_the_specification_says(
    status: int | None, outcome: AttemptOutcome
) -> None:
    assert outcome_of(status) is outcome


def test_the_default_schedule_is_ten_attempts_over_about_three_days() -> None:
    schedule = RetrySchedule()
    hours = [d / 3600 for d in DEFAULT_DELAYS]

    assert schedule.attempts == 10
    assert hours[:4] == [0, 5 / 3600, 5 / 60, 0.5]
    assert hours[4:] == [2, 5, 10, 14, 20, 24]
    assert 70 < sum(hours) < 80


def test_each_wait_follows_the_schedule_within_its_jitter_then_the_delivery_is_given_up() -> None:
    schedule = RetrySchedule()
    rng = random.Random(7)
    for failed in range(1, 10):
        waits = [schedule.next_delay(failed, rng=rng) for _ in range(200)]
        nominal = DEFAULT_DELAYS[failed]
        assert all(w is not None and 0.8 * nominal <= w <= 1.2 * nominal for w in waits)
        assert len(set(waits)) > 150  # jittered: failed together, not retried together
    assert schedule.next_delay(10, rng=rng) is None
    assert schedule.next_delay(11) is None
    assert schedule.first_delay(rng) == 0.0


def test_a_schedule_without_jitter_waits_exactly() -> None:
    schedule = RetrySchedule(delays=(0, 1, 2), jitter=0)

    assert [schedule.next_delay(n) for n in (1, 2, 3)] == [1.0, 2.0, None]


def test_retry_after_is_obeyed_when_longer_than_the_schedule_and_capped() -> None:
    schedule = RetrySchedule(jitter=0, max_retry_after=3600)

    assert schedule.next_delay(1, retry_after=120) == 120  # the schedule says 5 s
    assert schedule.next_delay(2, retry_after=120) == 300  # the schedule says longer
    assert schedule.next_delay(1, retry_after=10 * 86400) == 3600


def test_slow_down_holds_the_endpoint_back_as_long_as_retry_after_says_or_a_little() -> None:
    schedule = RetrySchedule(slow_down=5, max_retry_after=600)

    assert schedule.endpoint_pause(AttemptOutcome.SLOW_DOWN, 30) == 30
    assert schedule.endpoint_pause(AttemptOutcome.SLOW_DOWN, None) == 5
    assert schedule.endpoint_pause(AttemptOutcome.SLOW_DOWN, 9999) == 600
    assert schedule.endpoint_pause(AttemptOutcome.FAILED, 30) == 0
    assert schedule.endpoint_pause(AttemptOutcome.DELIVERED, None) == 0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"delays": ()}, "delays: give at least one"),
        ({"delays": (0, -1)}, r"delays\[1\]: must be a finite number of seconds >= 0"),
        ({"delays": (0, float("nan"))}, r"delays\[1\]"),
        ({"jitter": 1.0}, "jitter: must be at least 0 and less than 1"),
        ({"max_retry_after": float("inf")}, "max_retry_after: must be a finite number"),
        ({"slow_down": -1}, "slow_down: must be a finite number"),
    ],
)
def test_a_bad_schedule_is_refused_naming_the_field(options: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        RetrySchedule(**options)  # type: ignore[arg-type]
