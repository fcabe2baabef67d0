"""A world that moves: new jobs arrive and open jobs change status at set rates.

``ServicesEmulator(activity=Activity(created_per_minute=6, updated_per_minute=30))``
gives every seller's world a stream of changes, so a change feed, a sync under load or
a dashboard can be shown, tested and measured.  The changes are evenly spaced on the
emulator's clock: the ``k``-th new job of a world is created ``k`` intervals after the
emulator started, and stamped with that instant, whenever it is applied.  Which job
moves, and to which status, is drawn from the seed.  So the same seed, clock and rates
always give the same changes at the same instants, and a test drives them with a
:class:`~spapi_services.emulator.FakeClock`, without sleeping.

Changes are applied when they are due and someone looks: before each API request of
the seller (so every answer sees the world as of its own instant) and on
:meth:`ServicesEmulator.run_activity <spapi_services.emulator.ServicesEmulator.run_activity>`,
which tests call before reading ``emu.store`` directly.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque
from datetime import datetime, timedelta

import attrs

from .catalog import MARKETPLACES
from .clock import Clock
from .store import JobRecord, Store

__all__ = ["Activity", "ActivityChange", "WorldActivity"]

#: Where an open job may go next, and how likely each move is.  Closed jobs stay closed.
MOVES: dict[str, tuple[tuple[str, int], ...]] = {
    "PENDING_SCHEDULE": (("NOT_SERVICED", 4), ("CANCELLED", 1)),
    "NOT_SERVICED": (("COMPLETED", 6), ("CANCELLED", 1), ("HOLD", 1)),
    "HOLD": (("NOT_SERVICED", 3), ("CANCELLED", 1)),
    "PAYMENT_DECLINED": (("PENDING_SCHEDULE", 3), ("CANCELLED", 1)),
}
#: Draws of a random job before looking through them all for an open one.
_TRIES = 32
_SPEC = re.compile(r"\s*(created|updated)\s*=\s*([^,\s]+)\s*")


def _rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a number of changes a minute, got {value!r}")
    if value < 0:
        raise ValueError(f"{name}: must be zero or more, got {value!r}")
    return float(value)


def _created_rate(value: object) -> float:
    return _rate("created_per_minute", value)


def _updated_rate(value: object) -> float:
    return _rate("updated_per_minute", value)


@attrs.frozen(kw_only=True)
class Activity:
    """How fast each emulated seller's world changes (``ServicesEmulator(activity=...)``).

    :param created_per_minute: new jobs a minute, each in a marketplace drawn as the
        seeded ones are (or ``marketplace_id``), in ``NOT_SERVICED`` or
        ``PENDING_SCHEDULE``.
    :param updated_per_minute: status moves a minute, each of an open job drawn at
        random (pending ones get scheduled, scheduled ones completed, cancelled or put on
        hold...); when no job is open, the move is skipped.
    :param marketplace_id: the marketplace new jobs are created in (default: drawn).
    """

    #: New jobs a minute in each seller's world.
    created_per_minute: float = attrs.field(default=0.0, converter=_created_rate)
    #: Status moves of open jobs a minute in each seller's world.
    updated_per_minute: float = attrs.field(default=0.0, converter=_updated_rate)
    #: The marketplace new jobs are created in (``None``: drawn as the seeded jobs' are).
    marketplace_id: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.created_per_minute == 0 and self.updated_per_minute == 0:
            raise ValueError(
                "Activity: give created_per_minute or updated_per_minute (changes a minute)"
            )
        known = [m.marketplace_id for m in MARKETPLACES]
        if self.marketplace_id is not None and self.marketplace_id not in known:
            raise ValueError(
                f"marketplace_id: {self.marketplace_id!r} is not one of the emulator's "
                f"marketplaces ({', '.join(known)})"
            )

    @classmethod
    def parse(cls, text: str) -> Activity:
        """An activity from its command-line form: ``created=6,updated=30`` (a minute).

        Either part may be left out (``updated=120``); the names are the arguments'
        without ``_per_minute``.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("activity: give created=N and/or updated=N (changes a minute)")
        rates: dict[str, float] = {}
        for part in text.split(","):
            match = _SPEC.fullmatch(part)
            if match is None:
                raise ValueError(
                    f"activity: {part.strip()!r} is not created=N or updated=N "
                    "(changes a minute), e.g. created=6,updated=30"
                )
            name, value = match.groups()
            if name in rates:
                raise ValueError(f"activity: {name} is given twice")
            try:
                rates[name] = float(value)
            except ValueError:
                raise ValueError(f"activity: {name}={value} is not a number") from None
        return cls(
            created_per_minute=rates.get("created", 0.0),
            updated_per_minute=rates.get("updated", 0.0),
        )


@attrs.frozen(kw_only=True)
class ActivityChange:
    """One change the activity made: a job created, or a job's status moved."""

    kind: str
    """``"created"`` or ``"updated"``."""
    #: The job created or moved.
    service_job_id: str
    status: str
    """The job's status after the change."""
    previous_status: str | None
    """Its status before (``None`` for a new job)."""
    #: The job's marketplace.
    marketplace_id: str
    time: datetime
    """The instant of the change on the emulator's clock: the job's last-update time."""


class WorldActivity:
    """The changes of one seller's world, applied as they fall due.

    :param activity: the rates.
    :param store: the seller's world (seeded: new jobs are made like the seeded ones).
    :param clock: the emulator's clock.
    :param seed: the seed of the draws (the seller's world seed).
    :param log_size: how many changes :attr:`log` keeps.
    """

    def __init__(
        self, activity: Activity, store: Store, clock: Clock, seed: int, log_size: int = 10_000
    ) -> None:
        self.activity = activity
        self.log: deque[ActivityChange] = deque(maxlen=log_size)
        """The latest changes, oldest first."""
        self.created = 0
        """New jobs so far."""
        self.updated = 0
        """Status moves so far (skipped moves not counted)."""
        self._store = store
        self._clock = clock
        self._seed = seed
        self._intervals = {
            kind: 60.0 / rate
            for kind, rate in (
                ("created", activity.created_per_minute),
                ("updated", activity.updated_per_minute),
            )
            if rate > 0
        }
        self.start()

    def start(self) -> None:
        """Count the intervals from now (the changes so far are kept)."""
        self._origin = self._clock.monotonic()
        self._wall = self._clock.now()
        self._next = dict.fromkeys(self._intervals, 1)
        self._rng = random.Random(f"activity:{self._seed}")
        self._ids: list[str] = []

    def run(self) -> int:
        """Apply every change due by the clock's now, in order; how many were due."""
        now = self._clock.monotonic() - self._origin
        applied = 0
        while True:
            kind, offset = self._due()
            if offset > now:
                return applied
            self._next[kind] += 1
            when = self._wall + timedelta(seconds=offset)
            if kind == "created":
                self._create(when)
            else:
                self._move(when)
            applied += 1

    def _due(self) -> tuple[str, float]:
        """The next change: its kind and its offset from the start (new jobs first on a tie)."""
        return min(
            ((kind, self._next[kind] * interval) for kind, interval in self._intervals.items()),
            key=lambda item: (item[1], item[0] != "created"),
        )

    def _create(self, when: datetime) -> None:
        job = self._store.new_job(marketplace_id=self.activity.marketplace_id, created=when)
        self.created += 1
        self.log.append(
            ActivityChange(
                kind="created",
                service_job_id=job.service_job_id,
                status=job.status,
                previous_status=None,
                marketplace_id=job.marketplace_id,
                time=job.created,
            )
        )

    def _move(self, when: datetime) -> None:
        job = self._open_job()
        if job is None:
            return
        rng = self._rng
        previous = job.status
        targets, weights = zip(*MOVES[previous], strict=True)
        status = rng.choices(targets, weights=weights)[0]
        _follow(job, status, when, self._store)
        job.status = status
        stamp = when.replace(microsecond=when.microsecond // 1000 * 1000)
        self._store.touch_job(job, max(stamp, job.last_updated))
        self.updated += 1
        self.log.append(
            ActivityChange(
                kind="updated",
                service_job_id=job.service_job_id,
                status=status,
                previous_status=previous,
                marketplace_id=job.marketplace_id,
                time=job.last_updated,
            )
        )

    def _open_job(self) -> JobRecord | None:
        """An open job drawn at random (the same draws for the same world and seed)."""
        jobs = self._store.jobs
        if len(self._ids) != len(jobs):
            self._ids = list(jobs)  # jobs are only ever added
        ids, rng = self._ids, self._rng
        if not ids:
            return None
        for _ in range(_TRIES):
            job = jobs.get(ids[rng.randrange(len(ids))])
            if job is not None and job.status in MOVES:
                return job
        start = rng.randrange(len(ids))
        for i in range(len(ids)):
            job = jobs.get(ids[(start + i) % len(ids)])
            if job is not None and job.status in MOVES:
                return job
        return None


def _follow(job: JobRecord, status: str, when: datetime, store: Store) -> None:
    """Bring a job's appointments in line with its new status."""
    active = job.active_appointment()
    if status in ("COMPLETED", "CANCELLED"):
        if active is not None:
            active.status = status
    elif status == "NOT_SERVICED" and active is None and store.maker is not None:
        store.maker.book(job, when)
