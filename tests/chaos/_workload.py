"""What the emulator does during a campaign: its jobs change, its answers go wrong.

* :class:`Versions` remembers every version of every job the emulator served, with
  when it was made (the job's last-updated time): the invariants compare the mirror
  with it, and the audit of every write is read against it.
* :class:`JobChanges` changes jobs (a new status) and adds new ones while the chaos
  lasts, at seeded moments, preferring the sellers a fault is hurting right now.
* :class:`ActivityWatch` records the changes the emulator's own activity makes (new
  jobs, status moves, applied as each seller's requests come in), and ends it.
* :class:`ApiTrouble` lays the campaign's API faults over one another (latency adds
  up; the most recent error fault wins) and sets the result on the emulator.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import attrs

from spapi_services import _serde
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.activity import WorldActivity
from spapi_services.emulator.store import JobRecord, Store
from spapi_services.models.jobs import ServiceJob
from spapi_services.sync._sink import job_record

__all__ = ["ActivityWatch", "ApiTrouble", "JobChanges", "Version", "Versions", "normalized"]

#: The statuses a changed job cycles through.
STATUSES = (
    "NOT_SERVICED",
    "PENDING_SCHEDULE",
    "HOLD",
    "CANCELLED",
    "COMPLETED",
    "NOT_FULFILLABLE",
    "PAYMENTS_DECLINED",
)


def normalized(record: dict[str, Any]) -> dict[str, Any]:
    """A job's JSON as the mirror stores it: read by the SDK's model and written back."""
    job = _serde.structure(record, ServiceJob)
    loaded: dict[str, Any] = json.loads(_serde.dumps(job_record(job)))
    return loaded


@attrs.frozen
class Version:
    """One version of a job: when it was made, and its JSON as the mirror would store it."""

    updated: datetime
    record: dict[str, Any] = attrs.field(repr=False, eq=False)


class Versions:
    """Every version of every job of every seller, oldest first."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], list[Version]] = {}
        self.marketplace: dict[tuple[str, str], str] = {}

    def record(self, seller_id: str, job: JobRecord) -> None:
        """Note the job's current version (call after every change)."""
        key = (seller_id, job.service_job_id)
        self.jobs.setdefault(key, []).append(Version(job.last_updated, normalized(job.to_wire())))
        self.marketplace[key] = job.marketplace_id

    def current(self, key: tuple[str, str]) -> int:
        """The index of the job's newest version."""
        return len(self.jobs[key]) - 1

    def at(self, key: tuple[str, str], moment: datetime) -> int | None:
        """The index of the version in force before ``moment``; None if not made yet."""
        found = None
        for index, version in enumerate(self.jobs[key]):
            if version.updated < moment:
                found = index
        return found

    def which(self, key: tuple[str, str], stored: dict[str, Any]) -> int | None:
        """The index of the version ``stored`` is (the newest equal one); None if none."""
        versions = self.jobs.get(key, [])
        for index in range(len(versions) - 1, -1, -1):
            if versions[index].record == stored:
                return index
        return None

    def of_seller(self, seller_id: str) -> Iterable[tuple[str, str]]:
        """The keys of one seller's jobs."""
        return (key for key in self.jobs if key[0] == seller_id)


class JobChanges:
    """Jobs changed and added in the emulator at seeded moments while the chaos lasts.

    ``hurt`` names the sellers a fault is acting on right now; half the changes go to
    one of them when there are any (a stale write needs a job that changed while its
    old copy was held).
    """

    def __init__(
        self,
        emulator: ServicesEmulator,
        versions: Versions,
        rng: random.Random,
        *,
        every: float,
        new_share: float,
        hurt: Callable[[], list[str]],
    ) -> None:
        self.emulator = emulator
        self.versions = versions
        self.rng = rng
        self.every = every
        self.new_share = new_share
        self.hurt = hurt
        self.changed = 0
        self.added = 0
        self.log: list[str] = []

    async def run(self, until: Callable[[], bool], clock: Callable[[], float]) -> None:
        """Change jobs until ``until()`` is true."""
        while not until():
            await asyncio.sleep(self.rng.expovariate(1 / self.every))
            if until():
                return
            self.step(clock())

    def step(self, moment: float) -> None:
        """One change: a job's new status, or a new job."""
        sellers = self.emulator.sellers
        hurt = self.hurt()
        if hurt and self.rng.random() < 0.5:
            seller_id = self.rng.choice(sorted(hurt))
        else:
            seller_id = f"S{self.rng.randrange(len(sellers)):02d}"
        store = sellers[int(seller_id[1:])].store
        if self.rng.random() < self.new_share:
            job = store.new_job()
            self.added += 1
            what = f"new job {job.service_job_id} ({job.marketplace_id})"
        else:
            job = store.jobs[self.rng.choice(sorted(store.jobs))]
            status = self.rng.choice([s for s in STATUSES if s != job.status])
            store.set_job_status(job.service_job_id, status)
            self.changed += 1
            what = f"job {job.service_job_id} -> {status}"
        self.versions.record(seller_id, job)
        self.log.append(f"{moment:8.2f}s  {job.last_updated.isoformat()}  {seller_id}  {what}")


class ActivityWatch:
    """Every seller's jobs as the campaign starts, and every change the emulator's own
    :class:`~spapi_services.emulator.Activity` makes, recorded in ``versions`` the moment
    it is applied (the activity applies what fell due just before a seller's request is
    answered, so no answer can show a version the campaign has not recorded).

    Give it to :meth:`World.start <._world.World.start>` as ``watch``; :meth:`stop` ends
    the activity (at the heal: the final round syncs a world that holds still).
    """

    def __init__(self, versions: Versions, clock: Callable[[], float]) -> None:
        self.versions = versions
        self.clock = clock
        self.created = 0
        self.updated = 0
        self.log: list[str] = []

    def __call__(self, emulator: ServicesEmulator) -> None:
        for seller in emulator.sellers:
            seller_id = f"S{seller.index:02d}"
            for job in seller.store.jobs.values():
                self.versions.record(seller_id, job)
            if seller.activity is not None:
                self._follow(seller_id, seller.activity, seller.store)

    def _follow(self, seller_id: str, activity: WorldActivity, store: Store) -> None:
        run = activity.run

        def run_and_record() -> int:
            before = activity.created + activity.updated
            due = run()
            made = activity.created + activity.updated - before
            if made:
                changes = list(itertools.islice(reversed(activity.log), made))[::-1]
                for change in changes:
                    what = "new job" if change.kind == "created" else "job"
                    self.log.append(
                        f"{self.clock():8.2f}s  {change.time.isoformat()}  {seller_id}  "
                        f"activity: {what} {change.service_job_id} -> {change.status}"
                    )
                self.created += sum(1 for c in changes if c.kind == "created")
                self.updated += sum(1 for c in changes if c.kind == "updated")
                for job_id in dict.fromkeys(c.service_job_id for c in changes):
                    self.versions.record(seller_id, store.jobs[job_id])
            return due

        activity.run = run_and_record  # type: ignore[method-assign]

    def stop(self, emulator: ServicesEmulator) -> None:
        """Apply what is due, then no more changes from the activity."""
        for seller in emulator.sellers:
            if seller.activity is not None:
                seller.activity.run()
                seller.activity = None


@attrs.define
class ApiTrouble:
    """The API faults in force, laid over one another and set on the emulator."""

    emulator: ServicesEmulator
    base_latency: float
    layers: dict[str, dict[str, Any]] = attrs.Factory(dict)
    token_layers: dict[str, dict[str, Any]] = attrs.Factory(dict)

    def add(self, name: str, *, token: bool = False, **fault: Any) -> None:
        """Add a named layer (its ``Fault`` fields) and apply."""
        (self.token_layers if token else self.layers)[name] = fault
        self.apply()

    def remove(self, name: str) -> None:
        """Remove a named layer and apply."""
        self.layers.pop(name, None)
        self.token_layers.pop(name, None)
        self.apply()

    def clear(self) -> None:
        """Only the base latency left."""
        self.layers.clear()
        self.token_layers.clear()
        self.apply()

    def apply(self) -> None:
        faults = self.emulator.faults
        faults.set("*", **_combined(self.layers.values(), self.base_latency))
        if self.token_layers:
            faults.set("token", **_combined(self.token_layers.values(), 0.0))
        else:
            faults.clear("token")


def _combined(layers: Iterable[dict[str, Any]], base_latency: float) -> dict[str, Any]:
    fault: dict[str, Any] = {"latency": base_latency}
    for layer in layers:
        fault["latency"] += layer.get("latency", 0.0)
        fault["jitter"] = fault.get("jitter", 0.0) + layer.get("jitter", 0.0)
        if "error_rate" in layer:  # the most recent error fault wins
            fault.update(
                error_rate=layer["error_rate"],
                error_status=layer.get("error_status", 503),
                html=layer.get("html", False),
            )
    return fault


def moment_before(moment: datetime, margin: float) -> datetime:
    """``moment`` less ``margin`` seconds (the invariants' allowance for clock edges)."""
    return moment - timedelta(seconds=margin)
