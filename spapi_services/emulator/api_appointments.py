"""The appointment operations: add, reschedule, assign resources, record fulfilment.

The checks follow the sandbox's 422 cases, in its words: times must parse and be in UTC,
the job must exist and be open, a job has at most one active appointment, a start lies
in the future but within 365 days.  A reschedule creates a new appointment that points
at the old one (which is cancelled) and unassigns its technicians, with the sandbox's
``RESOURCES_UNASSIGNED`` warning.  A reschedule reason must look like the sandbox's valid
one (``R`` and digits: ``R1``).  With ``strict_slots``, a start must also be a free hourly
slot of the store.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from .capacity import appointment_slots, pieces
from .context import Handler, ServiceContext
from .replies import (
    EMPTY_OBJECT,
    NO_CONTENT,
    ApiError,
    Reply,
    error_entry,
    invalid_input,
    json_reply,
    unprocessable,
)
from .store import AppointmentRecord, JobRecord, ResourceRecord
from .times import format_datetime, is_utc, parse_time
from .validation import Call

__all__ = ["RESCHEDULE_REASON", "AppointmentsApi"]

#: Reschedule reason codes the emulator accepts (the sandbox's valid code is ``R1``).
RESCHEDULE_REASON = re.compile(r"R[0-9]+")
_CLOSED = ("COMPLETED", "CANCELLED")
_NOT_FULFILLABLE = ("COMPLETED", "CANCELLED", "NOT_FULFILLABLE", "PAYMENT_DECLINED")
_MAX_AHEAD = timedelta(days=365)
_AGAIN = "Please check the input again"


class AppointmentsApi:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def handlers(self) -> dict[str, Handler]:
        return {
            "addAppointmentForServiceJobByServiceJobId": self.add,
            "rescheduleAppointmentForServiceJobByServiceJobId": self.reschedule,
            "assignAppointmentResources": self.assign,
            "setAppointmentFulfillmentData": self.fulfil,
        }

    # --- add and reschedule ---------------------------------------------------------

    def add(self, call: Call) -> Reply:
        job_id = call.path["serviceJobId"]
        start = _appointment_start(call.body["appointmentTime"]["startTime"])
        job = self._open_job(job_id, "No job exist with jobId : {}")
        if job.active_appointment() is not None:
            raise _refused(job_id, "Job already has an active appointmentId.")
        duration = call.body["appointmentTime"].get("durationInMinutes") or job.duration
        self._check_start(job, start, int(duration))
        appointment = AppointmentRecord(self._new_id(job_id), "ACTIVE", start, int(duration))
        job.appointments.append(appointment)
        if job.status == "PENDING_SCHEDULE":
            job.status = "NOT_SERVICED"
        self.ctx.store.touch_job(job)
        return json_reply({"appointmentId": appointment.appointment_id})

    def reschedule(self, call: Call) -> Reply:
        job_id, appointment_id = call.path["serviceJobId"], call.path["appointmentId"]
        start = _appointment_start(call.body["appointmentTime"]["startTime"])
        job = self._open_job(job_id, "No job exist with jobId : {}")
        old = job.appointment(appointment_id)
        if old is None:
            raise _refused(job_id, f"No appointment exists with appointmentId {appointment_id}.")
        if old.status != "ACTIVE":
            raise unprocessable(
                f"Appointment metadata update is not allowed for appointmentId {appointment_id}"
            )
        if not RESCHEDULE_REASON.fullmatch(call.body["rescheduleReasonCode"]):
            raise _refused(job_id, "Appointment reschedule reason code is not valid.")
        duration = int(call.body["appointmentTime"].get("durationInMinutes") or old.duration)
        self._check_start(job, start, duration, ignore=old)
        new = AppointmentRecord(self._new_id(job_id), "ACTIVE", start, duration)
        new.rescheduled_appointment_id = old.appointment_id
        old.status = "CANCELLED"
        job.appointments.append(new)
        self.ctx.store.touch_job(job)
        body: dict[str, Any] = {"appointmentId": new.appointment_id}
        if old.technicians:
            ids = ",".join(tid for tid, _ in old.technicians)
            body["warnings"] = [
                {"code": "RESOURCES_UNASSIGNED", "message": f"Unassigned resources : {ids}"}
            ]
        return json_reply(body)

    def _open_job(self, job_id: str, missing: str) -> JobRecord:
        job = self.ctx.store.job(job_id)
        if job is None:
            raise unprocessable(missing.format(job_id))
        if job.status in _CLOSED:
            raise unprocessable(
                f"Operation not allowed on job with jobId : {job_id} and jobState : {job.status}"
            )
        return job

    def _check_start(
        self,
        job: JobRecord,
        start: datetime,
        duration: int,
        ignore: AppointmentRecord | None = None,
    ) -> None:
        now = self.ctx.clock.now()
        if start <= now:
            raise _refused(job.service_job_id, "Start time of appointment should be in the future.")
        if start - now > _MAX_AHEAD:
            raise _refused(
                job.service_job_id,
                "Start time for appointment is beyond the maximum allowed period of 365 days.",
            )
        if self.ctx.strict_slots and not self._slot_free(job, start, duration, ignore):
            raise _refused(job.service_job_id, "Appointment slot is not available.")

    def _slot_free(
        self, job: JobRecord, start: datetime, duration: int, ignore: AppointmentRecord | None
    ) -> bool:
        if start.minute or start.second or start.microsecond:
            return False
        shop = self.ctx.store.resources[job.store_id]
        end = start + timedelta(minutes=duration)
        slots = appointment_slots(pieces(self.ctx.store, shop, start, end), start, end, duration)
        # The appointment being moved still holds its own slot; do not count it against itself.
        freed = ignore is not None and ignore.start < end and ignore.end > start
        return bool(slots) and slots[0]["capacity"] + (1 if freed else 0) > 0

    def _new_id(self, job_id: str) -> str:
        uid = self.ctx.store.new_uuid()
        return f"{job_id}_{uid}" if len(job_id) + len(uid) < 100 else uid

    # --- resources ------------------------------------------------------------------

    def assign(self, call: Call) -> Reply:
        job_id, appointment_id = call.path["serviceJobId"], call.path["appointmentId"]
        job = self._open_job(job_id, "No job exists with jobId : {}")
        appointment = job.appointment(appointment_id)
        if appointment is None:
            raise unprocessable(
                f"Failed to Update Appointment for jobId : {job_id}, appointmentId : "
                f"{appointment_id}, reason : No appointment exists with appointmentId: "
                f"{appointment_id}"
            )
        if appointment.status != "ACTIVE":
            raise unprocessable(
                f"Appointment metadata update is not allowed for appointmentId {appointment_id}"
            )
        store = self.ctx.store
        wanted = [r["resourceId"] for r in call.body["resources"] if r.get("resourceId")]
        unknown = [
            rid
            for rid in wanted
            if rid not in store.resources or store.resources[rid].kind != "TECHNICIAN"
        ]
        if unknown:
            raise unprocessable(
                *(f"Invalid resourceId : {rid} provided in the input." for rid in unknown)
            )
        technicians = [store.resources[rid] for rid in dict.fromkeys(wanted)]
        home = store.stores[job.store_id].marketplace_id
        problems = _unfit(job, appointment, technicians, home, self._marketplace_of)
        if problems:
            raise ApiError(422, problems)
        warnings = self._overbooked(job, appointment, technicians)
        appointment.technicians = [(t.resource_id, t.name) for t in technicians]
        store.touch_job(job)
        if warnings:
            return json_reply({"payload": {"warnings": warnings}})
        return EMPTY_OBJECT

    def _marketplace_of(self, tech: ResourceRecord) -> str:
        return self.ctx.store.stores[tech.store_id].marketplace_id

    def _overbooked(
        self, job: JobRecord, appointment: AppointmentRecord, techs: list[ResourceRecord]
    ) -> list[dict[str, str]]:
        store = self.ctx.store
        busy = []
        for tech in techs:
            clash = any(
                other is not appointment
                and other.status == "ACTIVE"
                and other.start < appointment.end
                and other.end > appointment.start
                and any(tid == tech.resource_id for tid, _ in other.technicians)
                for other_job in store.jobs_at_store(tech.store_id)
                for other in other_job.appointments
            ) or any(
                s < appointment.end and e > appointment.start
                for r in store.reservations_of(tech.resource_id)
                for s, e in r.window.occurrences(appointment.start, appointment.end)
            )
            if clash:
                busy.append(tech.resource_id)
        if not busy:
            return []
        return [
            {
                "code": "RESOURCES_OVERBOOKED",
                "message": "Resources overbooked for this time window.",
                "details": ",".join(busy),
            }
        ]

    # --- fulfilment -----------------------------------------------------------------

    def fulfil(self, call: Call) -> Reply:
        job_id, appointment_id = call.path["serviceJobId"], call.path["appointmentId"]
        body = call.body
        artifacts = ("estimatedArrivalTime", "fulfillmentTime", "appointmentResources")
        if not any(body.get(k) is not None for k in (*artifacts, "fulfillmentDocuments")):
            raise invalid_input("No fulfillment artifacts provided in JSON payload.")
        store = self.ctx.store
        job = store.job(job_id)
        if job is None:
            raise unprocessable(f"No job exist with jobId : {job_id}")
        if job.status in _NOT_FULFILLABLE:
            raise unprocessable(
                f"Job with id {job_id} can not be updated. "
                "Please check if the job is in valid status."
            )
        appointment = job.appointment(appointment_id)
        if appointment is None:
            raise unprocessable(
                f"Appointment with id {appointment_id} is not present in the job. {_AGAIN}."
            )
        if appointment.status == "CANCELLED":
            raise unprocessable(
                f"Appointment with appointment id {appointment_id} is not valid to update. {_AGAIN}"
            )
        messages: list[str] = []
        resources = body.get("appointmentResources") or []
        ids = [r.get("resourceId") for r in resources]
        if any(not rid for rid in ids):
            messages.append(f"One or more resources provided is invalid. {_AGAIN}.")
        elif any(rid not in store.resources for rid in ids):
            messages.append(
                f"One or more resources provided does not exist or is deleted. {_AGAIN}."
            )
        if body.get("fulfillmentTime") is not None:
            messages.extend(_fulfilment_time(body["fulfillmentTime"], self.ctx.clock.now()))
        if body.get("estimatedArrivalTime") is not None:
            messages.extend(_arrival_time(body["estimatedArrivalTime"]))
        for document in body.get("fulfillmentDocuments") or []:
            problem = self.ctx.vault.verify(
                document.get("uploadDestinationId"), document.get("contentSha256")
            )
            if problem is not None and problem not in messages:
                messages.append(problem)
        if messages:
            raise unprocessable(*messages)
        self._record_fulfilment(job, appointment, body)
        return NO_CONTENT

    def _record_fulfilment(
        self, job: JobRecord, appointment: AppointmentRecord, body: dict[str, Any]
    ) -> None:
        store = self.ctx.store
        appointment.fulfillment = {**(appointment.fulfillment or {}), **body}
        poa: dict[str, Any] = dict(appointment.poa or {})
        poa["appointmentTime"] = {
            "startTime": format_datetime(appointment.start),
            "durationInMinutes": appointment.duration,
        }
        resources = [r["resourceId"] for r in body.get("appointmentResources") or []]
        if resources:
            poa["technicians"] = [
                {"technicianId": rid, "name": store.resources[rid].name} for rid in resources
            ]
        if body.get("fulfillmentDocuments"):
            poa["uploadTime"] = format_datetime(self.ctx.clock.now())
            poa["poaType"] = "POA_RECEIPT"
            technicians = poa.get("technicians") or [
                {"technicianId": t} for t, _ in appointment.technicians
            ]
            if technicians:
                poa["uploadingTechnician"] = technicians[0]["technicianId"]
        appointment.poa = poa
        store.touch_job(job)


# --- helpers ---------------------------------------------------------------------------


def _refused(job_id: str, reason: str) -> ApiError:
    return unprocessable(f"Failed to add appointment for jobId : {job_id}, reason : {reason}")


def _appointment_start(text: str) -> datetime:
    try:
        start = parse_time(text)
    except ValueError:
        raise unprocessable(f"Failed to parse ISO8601 input: {text}") from None
    if not is_utc(start):
        raise unprocessable(f"ISO8601 time {text} is not in UTC.")
    return start


def _unfit(
    job: JobRecord,
    appointment: AppointmentRecord,
    techs: list[ResourceRecord],
    marketplace_id: str,
    marketplace_of: Callable[[ResourceRecord], str],
) -> list[dict[str, str]]:
    """The sandbox's RESOURCES_* errors, one per kind of problem, naming the resources."""
    checks: tuple[tuple[str, str, Callable[[ResourceRecord], bool]], ...] = (
        (
            "RESOURCES_MISMATCHED_SERVICE_LOCATION_TYPE",
            "Resources do not have same service location type as job.",
            lambda t: job.location_type not in t.location_types,
        ),
        (
            "RESOURCES_MISSING_REQUIRED_SKILLS",
            f"Resources Missing required {','.join(job.required_skills)} skills.",
            lambda t: not set(job.required_skills) <= t.skills,
        ),
        (
            "RESOURCES_NOT_AVAILABLE_IN_LOCATION",
            "Resources are not available in the store.",
            lambda t: t.store_id != job.store_id and marketplace_of(t) == marketplace_id,
        ),
        (
            "RESOURCES_NOT_REGISTERED_UNDER_MERCHANT",
            "Resources are not registered under this Merchant.",
            lambda t: marketplace_of(t) != marketplace_id,
        ),
        (
            "RESOURCES_BACKGROUND_CHECK_INCOMPLETE",
            "Resources background check is incomplete.",
            lambda t: not t.background_checked,
        ),
        (
            "RESOURCES_NOT_AVAILABLE_IN_TIME_WINDOW",
            "Resources do not have sufficient available capacity.",
            lambda t: not t.covers(appointment.start, appointment.end),
        ),
    )
    errors = []
    for code, message, failing in checks:
        names = [t.resource_id for t in techs if failing(t)]
        if names:
            errors.append(error_entry(code, f"{message} Applicable resources: {','.join(names)}"))
    return errors


def _fulfilment_time(times: dict[str, Any], now: datetime) -> list[str]:
    """The first problem with the actual start and end, in the sandbox's order of checks."""
    if not times.get("startTime"):
        return [f"Appointment start time is required. {_AGAIN}."]
    if not times.get("endTime"):
        return [f"Appointment end time is required. {_AGAIN}."]
    parsed = []
    for text in (times["startTime"], times["endTime"]):
        try:
            parsed.append(parse_time(text))
        except ValueError:
            return [
                f"Could not parse given time input {text}. Please provide time in ISO8601 format"
            ]
    start, end = parsed
    if start > now:
        return [f"Appointment start time should not be in future. {_AGAIN}"]
    if end > now:
        return [f"Appointment end time should not be in future. {_AGAIN}"]
    if end < start:
        return [f"Appointment end time should be after start time. {_AGAIN}."]
    for text, value in zip((times["startTime"], times["endTime"]), parsed, strict=True):
        if not is_utc(value):
            return [f"ISO8601 time {text} is not in UTC format. Please provide time in UTC"]
    return []


def _arrival_time(times: dict[str, Any]) -> list[str]:
    if not times.get("startTime") or not times.get("endTime"):
        return [
            "Failed to process input. Reason: ETA start and end time both are mandatory field "
            f"as part of estimatedArrivalTime object. {_AGAIN}"
        ]
    parsed = []
    for text in (times["startTime"], times["endTime"]):
        try:
            value = parse_time(text)
        except ValueError:
            return [
                f"Could not parse given time input {text}. Please provide time in ISO8601 format"
            ]
        if not is_utc(value):
            return [f"ISO8601 time {text} is not in UTC format. Please provide time in UTC"]
        parsed.append(value)
    if parsed[1] < parsed[0]:
        return [
            f"Failed to process input. Reason: ETA end time should be after start time. {_AGAIN}"
        ]
    return []
