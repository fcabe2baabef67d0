"""Helpers of the Redis tests."""

from __future__ import annotations

import logging

import pytest


class Clock:
    """A monotonic clock that moves only when told (times the retries of Redis)."""

    def __init__(self) -> None:
        self.seconds = 1_000.0

    def __call__(self) -> float:
        return self.seconds

    def advance(self, seconds: float) -> None:
        self.seconds += seconds


def records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    """The spapi_services.redis records of exactly ``level``."""
    return [r for r in caplog.records if r.name == "spapi_services.redis" and r.levelno == level]
