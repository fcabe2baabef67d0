"""The feed's tests: an emulator on a fake clock, a client whose timer moves that clock,
and a script of changes made to the emulator's store at given moments.

No test sleeps: when the feed (or the client's retry loop) waits, :class:`ScriptTimer`
moves the emulator's :class:`FakeClock` forward instead, making each scripted change at
its moment on the way, and ends the run by raising :class:`RunOver` from the wait that
would pass the end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import attrs
import pytest
import pytest_asyncio
from _emulators import NOW, emulators

from spapi_services import ServicesClient
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.store import JobRecord, Store
from spapi_services.feed import JobChange, JobFeed, _feed

US = "ATVPDKIKX0DER"


class RunOver(Exception):
    """The scripted run reached its end (raised from the wait that would pass it)."""


class ScriptTimer:
    """The client's timer, on the emulator's fake clock, with scripted events."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.events: list[tuple[datetime, int, Callable[[], None]]] = []
        self.end: datetime | None = None
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.clock.monotonic()

    def utcnow(self) -> datetime:
        return self.clock.now()

    def at(self, seconds: float, action: Callable[[], None]) -> None:
        """Do ``action`` when the clock reaches ``seconds`` from now."""
        when = self.clock.now() + timedelta(seconds=seconds)
        self.events.append((when, len(self.events), action))
        self.events.sort(key=lambda e: (e[0], e[1]))

    def stop_after(self, seconds: float) -> None:
        self.end = self.clock.now() + timedelta(seconds=seconds)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        target = self.clock.now() + timedelta(seconds=seconds)
        while self.events and self.events[0][0] <= target:
            when, _, action = self.events.pop(0)
            self._advance_to(when)
            action()
        if self.end is not None and target > self.end:
            self._advance_to(self.end)
            raise RunOver
        self._advance_to(target)
        await asyncio.sleep(0)

    def _advance_to(self, moment: datetime) -> None:
        gap = (moment - self.clock.now()).total_seconds()
        if gap > 0:
            self.clock.advance(gap)


@attrs.define
class World:
    """An emulator, its fake clock, and a client timed by the script."""

    emu: ServicesEmulator
    timer: ScriptTimer
    client: ServicesClient
    names: dict[str, str] = attrs.field(factory=dict)
    """The test's names for the jobs it created (``"NEW-1"``), to their ids."""

    @property
    def store(self) -> Store:
        return self.emu.store

    def client_for(self, **options: object) -> ServicesClient:
        """Another client of the same seller on the same script."""
        return ServicesClient(
            self.emu.credentials,
            endpoint=self.emu.url,
            token_url=self.emu.token_url,
            marketplace_id=US,
            timer=self.timer,
            rate_limits=False,
            **options,  # type: ignore[arg-type]
        )

    def jobs(self, status: str | None = None) -> list[JobRecord]:
        return self.store.find_jobs(status=status, marketplace_id=US)

    def id(self, job: str) -> str:
        """The id of a job, given its id or the name the test created it under."""
        return self.names.get(job, job)

    def named(self, job_id: str) -> str:
        """The name the test created a job under, or its id."""
        return next((name for name, known in self.names.items() if known == job_id), job_id)

    def touch(self, job: str, status: str) -> Callable[[], None]:
        """An action that puts a job (an id or a created job's name) in ``status``."""
        return lambda: self.store.set_job_status(self.id(job), status)

    def touch_only(self, job: str) -> Callable[[], None]:
        """An action that bumps a job's update time without changing its content."""
        return lambda: self.store.touch_job(self.id(job))

    def create(self, name: str, status: str = "NOT_SERVICED") -> Callable[[], None]:
        """An action that creates a job now (``store.new_job``) in the watched
        marketplace; the test calls it ``name``."""

        def action() -> None:
            job = self.store.new_job(marketplace_id=US, status=status)
            self.names[name] = job.service_job_id

        return action

    def summary(self, changes: list[JobChange]) -> list[tuple[str, str, str]]:
        """(kind, the test's name for the job or its id, status) of each change."""
        return [(kind, self.named(job_id), status) for kind, job_id, status in summary(changes)]


async def run(feed: JobFeed, limit: int | None = None) -> list[JobChange]:
    """The changes a feed yields until the script ends (or ``limit`` of them, then break)."""
    seen: list[JobChange] = []
    try:
        async for change in feed:
            seen.append(change)
            if limit is not None and len(seen) >= limit:
                break
    except RunOver:
        pass
    return seen


def summary(changes: list[JobChange]) -> list[tuple[str, str, str]]:
    """(kind, job id, status) of each change."""
    return [
        (c.kind.value, c.job.service_job_id or "", str(c.job.service_job_status)) for c in changes
    ]


@contextlib.asynccontextmanager
async def open_world(**options: object) -> AsyncIterator[World]:
    """An emulator on a fake clock at :data:`NOW`, and a client on a script timer."""
    clock = FakeClock(NOW)
    timer = ScriptTimer(clock)
    async with emulators(jobs=40, seed=11, clock=clock, **options) as start:
        emu = await start()
        client = ServicesClient(
            emu.credentials,
            endpoint=emu.url,
            token_url=emu.token_url,
            marketplace_id=US,
            timer=timer,
            # The client's own buckets run on the event loop's real clock, which stands
            # nearly still in a scripted run: the emulator's plans, on the fake clock,
            # still meter every request.
            rate_limits=False,
        )
        async with client:
            yield World(emu, timer, client)


@pytest.fixture(autouse=True)
def whole_interval_phase(monkeypatch: pytest.MonkeyPatch) -> Callable[[], float]:
    """Every feed's second poll a whole interval after its first, as all the others, so
    the scripted tests can name each poll's moment (``test_phase`` checks the drawn
    phase); the real draw is returned for the tests that want it."""
    drawn = _feed._phase
    monkeypatch.setattr(_feed, "_phase", lambda: 1.0)
    return drawn


@pytest_asyncio.fixture
async def world() -> AsyncIterator[World]:
    async with open_world() as made:
        yield made
