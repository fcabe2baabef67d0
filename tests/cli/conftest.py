"""Fixtures for the CLI tests: an emulator serving from a thread of its own, and a runner.

The commands run their coroutines with ``asyncio.run``, which needs a thread with no
running loop, so the emulator cannot share the test's loop: it gets a thread and a loop
of its own for the whole module, and the tests look at its store between commands.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import click.testing
import pytest

from spapi_services.cli import cli
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.store import AppointmentRecord, JobRecord, ResourceRecord

US = "ATVPDKIKX0DER"


class EmulatorThread:
    """An emulator running on its own event loop in a daemon thread."""

    def __init__(self, **options: Any) -> None:
        self.emulator = ServicesEmulator(**options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> ServicesEmulator:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.emulator.start(), self._loop).result(10)
        return self.emulator

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[ServicesEmulator]:
    """One emulator for a module's tests (200 jobs, no throttling); tests use distinct jobs."""
    reference = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    with EmulatorThread(jobs=200, seed=11, enforce_limits=False, reference_time=reference) as emu:
        yield emu


@pytest.fixture
def new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is New York's while the test runs."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


class Runner:
    """Runs ``spapi-services`` against the emulator, as a user with the env set would."""

    def __init__(self, emulator: ServicesEmulator) -> None:
        creds = emulator.credentials
        self.env = {
            "SPAPI_CLIENT_ID": creds.client_id,
            "SPAPI_CLIENT_SECRET": creds.client_secret,
            "SPAPI_REFRESH_TOKEN": creds.refresh_token,
            "SPAPI_ENDPOINT": emulator.url,
            "SPAPI_TOKEN_URL": emulator.token_url,
            "SPAPI_MARKETPLACE_ID": US,
        }
        self._runner = click.testing.CliRunner()

    def __call__(
        self, *args: str, env: dict[str, str | None] | None = None
    ) -> click.testing.Result:
        merged: dict[str, str | None] = {**self.env, **(env or {})}
        return self._runner.invoke(cli, list(args), env=merged, catch_exceptions=False)


@pytest.fixture
def run(emulator: ServicesEmulator) -> Runner:
    return Runner(emulator)


# --- finding things in the seeded world -------------------------------------------------


def jobs_in(emu: ServicesEmulator, status: str, taken: set[str]) -> JobRecord:
    """A US job in ``status`` that no other test has used (it is marked as taken)."""
    for job in emu.store.find_jobs(status=status, marketplace_id=US):
        if job.service_job_id not in taken:
            taken.add(job.service_job_id)
            return job
    raise AssertionError(f"no unused {status} job left")


def staffable(
    emu: ServicesEmulator, taken: set[str]
) -> tuple[JobRecord, AppointmentRecord, ResourceRecord]:
    """An open US job with a future active appointment, and a technician who can take it."""
    now = emu.clock.now()
    for job in emu.store.find_jobs(status="NOT_SERVICED", marketplace_id=US):
        appointment = job.active_appointment()
        if job.service_job_id in taken or appointment is None or appointment.start <= now:
            continue
        qualified = emu.store.qualified_resources(job, appointment)
        if qualified:
            taken.add(job.service_job_id)
            return job, appointment, qualified[0]
    raise AssertionError("no staffable job in the seeded world")


@pytest.fixture(scope="module")
def taken() -> set[str]:
    """Job ids the module's tests have used already."""
    return set()
