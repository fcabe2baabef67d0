"""Each of the 17 operations, set up to succeed against a seeded emulator.

A :class:`Scenario` picks what its call needs from the emulator's store (an open job, an
active appointment with a qualified technician, a reservation...), makes the call through
the SDK, and, for the operations that create something, counts on the emulator's own state
how many times the call took effect.  The fault matrix, the soak and the secrets tests all
drive these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from spapi_services import ServicesClient
from spapi_services._routes import ROUTES
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.store import JobRecord
from spapi_services.models import AvailabilityRecord, Reservation, ReservationType

#: Wednesday noon, UTC: the fake clock of every reliability world.
NOW = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)
US = "ATVPDKIKX0DER"

State = dict[str, Any]


@attrs.frozen
class Scenario:
    """One operation: what it needs, the SDK call, and how often it took effect.

    ``effects`` exists for the operations that are not idempotent: it reads the emulator's
    store (appointments on the job, reservations, upload destinations), never our counters.
    """

    operation_id: str
    prepare: Callable[[ServicesEmulator], State]
    call: Callable[[ServicesClient, State], Awaitable[Any]]
    effects: Callable[[ServicesEmulator, State], int] | None = None

    @property
    def idempotent(self) -> bool:
        return ROUTES[self.operation_id].idempotent


# --- picking things from the seeded world --------------------------------------------


def _jobs(emu: ServicesEmulator, status: str) -> list[JobRecord]:
    return [j for j in emu.store.find_jobs(status=status) if j.marketplace_id == US]


def open_job(emu: ServicesEmulator) -> JobRecord:
    """A US job waiting for its first appointment."""
    return _jobs(emu, "PENDING_SCHEDULE")[0]


def booked_job(emu: ServicesEmulator, *, staffed: bool = False) -> JobRecord:
    """A US job with an active appointment (and, if ``staffed``, a technician for it)."""
    for job in _jobs(emu, "NOT_SERVICED"):
        appointment = job.active_appointment()
        if appointment is None:
            continue
        if not staffed or emu.store.qualified_resources(job, appointment):
            return job
    raise AssertionError("the seeded world has no such job")


def technician_id(emu: ServicesEmulator) -> str:
    return next(r.resource_id for r in emu.store.resources.values() if r.kind == "TECHNICIAN")


def _window(days: int, hours: int = 1) -> AvailabilityRecord:
    start = NOW.replace(hour=9) + timedelta(days=days)
    return AvailabilityRecord(start_time=start, end_time=start + timedelta(hours=hours), capacity=1)


# --- the 17 ---------------------------------------------------------------------------


def _prepare_job(emu: ServicesEmulator) -> State:
    return {"job": open_job(emu).service_job_id}


def _prepare_booked(emu: ServicesEmulator) -> State:
    job = booked_job(emu, staffed=True)
    appointment = job.active_appointment()
    assert appointment is not None
    technician = emu.store.qualified_resources(job, appointment)[0]
    return {
        "job": job.service_job_id,
        "appointment": appointment.appointment_id,
        "technician": technician.resource_id,
        "appointments": len(job.appointments),
    }


def _prepare_add(emu: ServicesEmulator) -> State:
    job = open_job(emu)
    return {"job": job.service_job_id, "appointments": len(job.appointments)}


def _appointments_added(emu: ServicesEmulator, state: State) -> int:
    return len(emu.store.jobs[state["job"]].appointments) - int(state["appointments"])


def _prepare_resource(emu: ServicesEmulator) -> State:
    return {"resource": technician_id(emu), "reservations": len(emu.store.reservations)}


def _prepare_reservation(emu: ServicesEmulator) -> State:
    reservation = next(iter(emu.store.reservations.values()))
    return {"reservation": reservation.reservation_id, "resource": reservation.resource_id}


def _reservations_made(emu: ServicesEmulator, state: State) -> int:
    return len(emu.store.reservations) - int(state["reservations"])


def _prepare_store(emu: ServicesEmulator) -> State:
    shop = next(s for s in emu.store.stores.values() if s.marketplace_id == US and s.services)
    return {"store": shop.store_id, "asin": next(iter(shop.services))}


def _prepare_destination(emu: ServicesEmulator) -> State:
    return {"destinations": len(emu.vault.destinations)}


def _destinations_made(emu: ServicesEmulator, state: State) -> int:
    return len(emu.vault.destinations) - int(state["destinations"])


async def _all_pages(pages: Any) -> list[Any]:
    return [page async for page in pages]


def _scenarios() -> dict[str, Scenario]:
    tomorrow = NOW + timedelta(days=1)
    found = [
        Scenario(
            "getServiceJobByServiceJobId",
            _prepare_job,
            lambda c, s: c.service_jobs.get(s["job"]),
        ),
        Scenario(
            "cancelServiceJobByServiceJobId",
            _prepare_job,
            lambda c, s: c.service_jobs.cancel(s["job"], reason_code="V1"),
        ),
        Scenario(
            "completeServiceJobByServiceJobId",
            _prepare_job,
            lambda c, s: c.service_jobs.complete(s["job"]),
        ),
        Scenario(
            "getServiceJobs",
            lambda emu: {},
            lambda c, s: c.service_jobs.list_page(
                created_after=NOW - timedelta(days=3650), marketplace_id=US
            ),
        ),
        Scenario(
            "addAppointmentForServiceJobByServiceJobId",
            _prepare_add,
            lambda c, s: c.appointments.add(
                s["job"], start_time=NOW + timedelta(days=3), duration_minutes=60
            ),
            _appointments_added,
        ),
        Scenario(
            "rescheduleAppointmentForServiceJobByServiceJobId",
            _prepare_booked,
            lambda c, s: c.appointments.reschedule(
                s["job"],
                s["appointment"],
                start_time=NOW + timedelta(days=5),
                reason_code="R1",
                duration_minutes=60,
            ),
            _appointments_added,
        ),
        Scenario(
            "assignAppointmentResources",
            _prepare_booked,
            lambda c, s: c.appointments.assign_resources(
                s["job"], s["appointment"], [s["technician"]]
            ),
        ),
        Scenario(
            "setAppointmentFulfillmentData",
            _prepare_booked,
            lambda c, s: c.appointments.set_fulfillment_data(
                s["job"],
                s["appointment"],
                fulfillment_time=(NOW - timedelta(hours=2), NOW - timedelta(hours=1)),
            ),
        ),
        Scenario(
            "getRangeSlotCapacity",
            _prepare_resource,
            lambda c, s: _all_pages(
                c.schedules.range_capacity(
                    s["resource"], start_time=tomorrow, end_time=tomorrow + timedelta(days=1)
                )
            ),
        ),
        Scenario(
            "getFixedSlotCapacity",
            _prepare_resource,
            lambda c, s: _all_pages(
                c.schedules.fixed_capacity(
                    s["resource"],
                    start_time=tomorrow,
                    end_time=tomorrow + timedelta(days=1),
                    slot_duration=30,
                )
            ),
        ),
        Scenario(
            "updateSchedule",
            _prepare_resource,
            lambda c, s: c.schedules.update(s["resource"], [_window(30, hours=8)]),
        ),
        Scenario(
            "createReservation",
            _prepare_resource,
            lambda c, s: c.reservations.create(
                s["resource"], Reservation(type=ReservationType.BREAK, availability=_window(20))
            ),
            _reservations_made,
        ),
        Scenario(
            "updateReservation",
            _prepare_reservation,
            lambda c, s: c.reservations.update(
                s["reservation"],
                s["resource"],
                Reservation(type=ReservationType.TRAINING, availability=_window(21)),
            ),
        ),
        Scenario(
            "cancelReservation",
            _prepare_reservation,
            lambda c, s: c.reservations.cancel(s["reservation"]),
        ),
        Scenario(
            "getAppointmmentSlotsByJobId",
            _prepare_job,
            lambda c, s: c.appointments.slots_for_job(s["job"], marketplace_id=US),
        ),
        Scenario(
            "getAppointmentSlots",
            _prepare_store,
            lambda c, s: c.appointments.slots(asin=s["asin"], store_id=s["store"]),
        ),
        Scenario(
            "createServiceDocumentUploadDestination",
            _prepare_destination,
            lambda c, s: c.documents.create_upload_destination(
                content_type="PDF", content_length=1000
            ),
            _destinations_made,
        ),
    ]
    return {s.operation_id: s for s in found}


SCENARIOS = _scenarios()
assert set(SCENARIOS) == set(ROUTES), "every operation needs a scenario"
