"""The emulator's world, in memory: jobs and their appointments, stores, resources,
their schedules and reservations.

Records are mutable and hold wire-ready data.  A job caches its own JSON, because the
single-job GET is the hottest path a client has; anything that changes a job goes through
:meth:`Store.touch_job`, which moves its (internal, unpublished) last-updated time and
drops the cache.  Tests may change records directly and then call ``touch_job``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

import attrs

from .clock import Clock
from .replies import dump
from .times import format_datetime

__all__ = [
    "AppointmentRecord",
    "AvailabilityWindow",
    "JobMaker",
    "JobRecord",
    "ReservationRecord",
    "ResourceRecord",
    "Store",
    "StoreRecord",
]

_DAY = timedelta(days=1)
WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


@attrs.define(slots=True, eq=False)
class AvailabilityWindow:
    """A stretch of time with a capacity, repeated daily until ``recurrence_end`` if set.

    Day filters are read in the window's own UTC offset, as the caller wrote it.
    """

    start: datetime
    end: datetime
    capacity: int = 1
    recurrence_end: datetime | None = None
    days_of_week: frozenset[int] | None = None
    """0 is Monday."""
    days_of_month: frozenset[int] | None = None

    def occurrences(self, lo: datetime, hi: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Each occurrence that overlaps ``[lo, hi)``, clipped to it."""
        length = self.end - self.start
        if length <= timedelta(0):
            return
        if self.recurrence_end is None:
            if self.start < hi and self.end > lo:
                yield max(self.start, lo), min(self.end, hi)
            return
        # Jump straight to the first day that can overlap the window.
        skip = max(0, (lo - length - self.start) // _DAY)
        day = self.start + skip * _DAY
        while day < hi and day < self.recurrence_end:
            end = day + length
            if end > lo and self._matches(day):
                yield max(day, lo), min(end, hi)
            day += _DAY

    def _matches(self, day: datetime) -> bool:
        if self.days_of_week is not None and day.weekday() not in self.days_of_week:
            return False
        return self.days_of_month is None or day.day in self.days_of_month

    def overlaps(self, other: AvailabilityWindow) -> bool:
        """Whether the two windows' spans (first start to last end) overlap."""
        mine_end = self.recurrence_end or self.end
        theirs_end = other.recurrence_end or other.end
        return self.start < theirs_end and other.start < mine_end

    def to_wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "startTime": format_datetime(self.start),
            "endTime": format_datetime(self.end),
        }
        if self.recurrence_end is not None:
            recurrence: dict[str, Any] = {"endTime": format_datetime(self.recurrence_end)}
            if self.days_of_week is not None:
                recurrence["daysOfWeek"] = [WEEKDAYS[d] for d in sorted(self.days_of_week)]
            if self.days_of_month is not None:
                recurrence["daysOfMonth"] = sorted(self.days_of_month)
            data["recurrence"] = recurrence
        data["capacity"] = self.capacity
        return data


@attrs.define(slots=True, eq=False)
class ReservationRecord:
    """Time taken out of a resource's capacity."""

    reservation_id: str
    resource_id: str
    type: str
    window: AvailabilityWindow

    def to_wire(self) -> dict[str, Any]:
        return {
            "reservationId": self.reservation_id,
            "type": self.type,
            "availability": self.window.to_wire(),
        }


@attrs.define(slots=True, eq=False)
class ResourceRecord:
    """A technician, or a store taken as a whole (both can carry schedules)."""

    resource_id: str
    name: str
    store_id: str
    kind: str  # "TECHNICIAN" or "STORE"
    skills: frozenset[str] = frozenset()
    location_types: frozenset[str] = frozenset()
    background_checked: bool = True
    schedule: list[AvailabilityWindow] = attrs.Factory(list)

    def covers(self, start: datetime, end: datetime) -> bool:
        """Whether one stretch of the schedule holds all of ``[start, end)``."""
        return any(
            s <= start and e >= end
            for window in self.schedule
            for s, e in window.occurrences(start, end + _DAY)
        )


@attrs.define(slots=True, eq=False)
class StoreRecord:
    store_id: str
    marketplace_id: str
    name: str
    services: dict[str, int]
    """ASIN of each service offered -> minutes an appointment for it takes."""
    technicians: list[str] = attrs.Factory(list)
    scheduling_type: str = "REAL_TIME_SCHEDULING"


@attrs.define(slots=True, eq=False)
class AppointmentRecord:
    """One appointment of a job, and whatever was recorded about its fulfilment."""

    appointment_id: str
    status: str
    start: datetime
    duration: int
    technicians: list[tuple[str, str]] = attrs.Factory(list)
    """(technician id, name) pairs."""
    rescheduled_appointment_id: str | None = None
    poa: dict[str, Any] | None = None
    fulfillment: dict[str, Any] | None = None
    """The last fulfilment data set (times, resources, document ids), as received."""

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration)

    def to_wire(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "appointmentId": self.appointment_id,
            "appointmentStatus": self.status,
            "appointmentTime": {
                "startTime": format_datetime(self.start),
                "durationInMinutes": self.duration,
            },
        }
        if self.technicians:
            data["assignedTechnicians"] = [
                {"technicianId": tid, "name": name} for tid, name in self.technicians
            ]
        if self.rescheduled_appointment_id:
            data["rescheduledAppointmentId"] = self.rescheduled_appointment_id
        if self.poa is not None:
            data["poa"] = self.poa
        return data


@attrs.define(slots=True, eq=False)
class JobRecord:
    """A service job.  ``details`` holds the parts that never change, already on the wire."""

    service_job_id: str
    status: str
    created: datetime
    last_updated: datetime
    marketplace_id: str
    store_id: str
    service_order_id: str
    asin: str
    required_skills: tuple[str, ...]
    location_type: str
    duration: int
    product_order_ids: tuple[str, ...] = ()
    tracking_ids: tuple[str, ...] = ()
    details: dict[str, Any] = attrs.Factory(dict)
    appointments: list[AppointmentRecord] = attrs.Factory(list)
    _json: bytes | None = None
    _fragment: str | None = None

    def active_appointment(self) -> AppointmentRecord | None:
        for appointment in self.appointments:
            if appointment.status == "ACTIVE":
                return appointment
        return None

    def appointment(self, appointment_id: str) -> AppointmentRecord | None:
        for appointment in self.appointments:
            if appointment.appointment_id == appointment_id:
                return appointment
        return None

    def invalidate(self) -> None:
        """Drop the cached JSON (after changing the record by hand)."""
        self._json = None
        self._fragment = None

    def to_wire(self) -> dict[str, Any]:
        """The job as ``ServiceJob`` JSON."""
        d = self.details
        data: dict[str, Any] = {
            "createTime": format_datetime(self.created),
            "serviceJobId": self.service_job_id,
            "serviceJobStatus": self.status,
            "scopeOfWork": d["scopeOfWork"],
            "seller": d["seller"],
            "serviceJobProvider": d["serviceJobProvider"],
            "preferredAppointmentTimes": d["preferredAppointmentTimes"],
        }
        if self.appointments:
            data["appointments"] = [a.to_wire() for a in self.appointments]
        data["serviceOrderId"] = self.service_order_id
        if self.product_order_ids:
            data["productOrderIds"] = list(self.product_order_ids)
        if self.tracking_ids:
            data["trackingIds"] = list(self.tracking_ids)
        data["marketplaceId"] = self.marketplace_id
        data["storeId"] = self.store_id
        for key in ("buyer", "associatedItems", "serviceLocation", "payments"):
            if key in d:
                data[key] = d[key]
        return data

    def fragment(self) -> str:
        """The job's JSON text, cached until the job changes."""
        text = self._fragment
        if text is None:
            text = self._fragment = dump(self.to_wire()).decode()
        return text

    def payload_json(self) -> bytes:
        """``{"payload": <job>}`` as bytes, cached until the job changes."""
        body = self._json
        if body is None:
            body = self._json = f'{{"payload":{self.fragment()}}}'.encode()
        return body


#: Every status a service job can have.
JOB_STATUSES = (
    "NOT_SERVICED",
    "CANCELLED",
    "COMPLETED",
    "PENDING_SCHEDULE",
    "NOT_FULFILLABLE",
    "HOLD",
    "PAYMENT_DECLINED",
)


class JobMaker(Protocol):
    """What makes new jobs for a store: the generator that seeded it."""

    markets: Any
    """The marketplaces it has stores in, by id."""

    def new_job(
        self, *, marketplace_id: str | None, status: str | None, created: datetime
    ) -> JobRecord:
        """A job created at ``created``, added to the store."""
        ...

    def book(self, job: JobRecord, now: datetime) -> AppointmentRecord:
        """An active appointment for ``job`` after ``now``, added to it."""
        ...


class Store:
    """Everything the live emulator knows, with the lookups its handlers need."""

    def __init__(self, clock: Clock, seed: int = 0) -> None:
        self.jobs: dict[str, JobRecord] = {}
        self.stores: dict[str, StoreRecord] = {}
        self.resources: dict[str, ResourceRecord] = {}
        self.reservations: dict[str, ReservationRecord] = {}
        self.seller_id = ""
        self.maker: JobMaker | None = None
        """The generator of the seeded world, which :meth:`new_job` draws from."""
        self._clock = clock
        self._seed = seed
        self._rng = random.Random(f"ids:{seed}")
        self._next_reservation = 1000
        self._by_store: dict[str, list[JobRecord]] | None = None

    def clear(self) -> None:
        """Empty the store, as new (identifiers start again from the seed)."""
        self.__init__(self._clock, self._seed)  # type: ignore[misc]

    # --- jobs -----------------------------------------------------------------------

    def add_job(self, job: JobRecord) -> None:
        self.jobs[job.service_job_id] = job
        self._by_store = None

    def job(self, service_job_id: str) -> JobRecord | None:
        return self.jobs.get(service_job_id)

    def new_job(
        self,
        *,
        marketplace_id: str | None = None,
        status: str | None = None,
        created: datetime | None = None,
    ) -> JobRecord:
        """Create a job now, drawn like the seeded ones, and return it.

        It is made by the generator that seeded the store (a store, a service, a buyer,
        items, an appointment that fits its status), from a sequence of draws of its own:
        the same seed and the same calls give the same jobs.  Its creation and last-update
        times are ``created`` (default: the clock's now, to the millisecond).

        :param marketplace_id: where the job is (default: drawn as the seed draws them).
        :param status: its status (default: ``NOT_SERVICED`` or ``PENDING_SCHEDULE``,
            as a new job on Amazon is).
        :param created: when it was created (an aware datetime).
        """
        maker = self.maker
        if maker is None:
            raise RuntimeError(
                "new_job: this store was not seeded (a static emulator has no world)"
            )
        if marketplace_id is not None and marketplace_id not in maker.markets:
            raise ValueError(
                f"marketplace_id: {marketplace_id!r} is not one of the emulator's "
                f"marketplaces ({', '.join(maker.markets)})"
            )
        if status is not None and status not in JOB_STATUSES:
            raise ValueError(f"status: {status!r} is not a job status ({', '.join(JOB_STATUSES)})")
        if created is None:
            created = self._clock.now()
        elif not isinstance(created, datetime) or created.utcoffset() is None:
            raise ValueError("created: must be an aware datetime")
        job = maker.new_job(marketplace_id=marketplace_id, status=status, created=created)
        self._by_store = None
        return job

    def touch_job(self, job: JobRecord | str, when: datetime | None = None) -> JobRecord:
        """Mark a job as changed now (or at ``when``): bump last-updated, drop its cache."""
        record = self.jobs[job] if isinstance(job, str) else job
        record.last_updated = when or self._clock.now()
        record.invalidate()
        return record

    def set_job_status(self, service_job_id: str, status: str) -> JobRecord:
        """Put a job in ``status`` (for tests that need a job in a given state)."""
        record = self.jobs[service_job_id]
        record.status = status
        return self.touch_job(record)

    def find_jobs(
        self, *, status: str | None = None, marketplace_id: str | None = None
    ) -> list[JobRecord]:
        """Jobs with the given status and/or marketplace, oldest first."""
        found = [
            job
            for job in self.jobs.values()
            if (status is None or job.status == status)
            and (marketplace_id is None or job.marketplace_id == marketplace_id)
        ]
        return sorted(found, key=lambda j: (j.created, j.service_job_id))

    def jobs_at_store(self, store_id: str) -> list[JobRecord]:
        if self._by_store is None:
            index: dict[str, list[JobRecord]] = {}
            for job in self.jobs.values():
                index.setdefault(job.store_id, []).append(job)
            self._by_store = index
        return self._by_store.get(store_id, [])

    # --- resources ------------------------------------------------------------------

    def qualified_resources(
        self, job: JobRecord | str, appointment: AppointmentRecord | str | None = None
    ) -> list[ResourceRecord]:
        """Technicians that may be assigned to ``job``: its store, skills, location type,
        a background check, and (given an appointment) a schedule covering its time."""
        record = self.jobs[job] if isinstance(job, str) else job
        if isinstance(appointment, str):
            appointment = record.appointment(appointment)
        store = self.stores[record.store_id]
        return [
            tech
            for tech in (self.resources[t] for t in store.technicians)
            if set(record.required_skills) <= tech.skills
            and record.location_type in tech.location_types
            and tech.background_checked
            and (appointment is None or tech.covers(appointment.start, appointment.end))
        ]

    def busy_intervals(self, resource: ResourceRecord) -> list[tuple[datetime, datetime]]:
        """Active appointments that take up ``resource``: a technician's own, or a store's."""
        spans: list[tuple[datetime, datetime]] = []
        for job in self.jobs_at_store(resource.store_id):
            for appointment in job.appointments:
                if appointment.status != "ACTIVE":
                    continue
                if resource.kind == "STORE" or any(
                    tid == resource.resource_id for tid, _ in appointment.technicians
                ):
                    spans.append((appointment.start, appointment.end))
        return spans

    def reservations_of(self, resource_id: str) -> list[ReservationRecord]:
        return [r for r in self.reservations.values() if r.resource_id == resource_id]

    # --- identifiers ----------------------------------------------------------------

    def new_uuid(self) -> str:
        """A random-looking UUID, reproducible for a given seed and sequence of calls."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def new_reservation_id(self) -> str:
        self._next_reservation += 1
        return str(self._next_reservation)
