"""Appointments of a service job: book, move, staff, record fulfilment, find free slots."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from yarl import URL

from .. import _ids, _serde
from .._ids import AppointmentRef, JobRef, ResourceRef
from .._validation import (
    check_datetime,
    check_id,
    check_int,
    check_items,
    check_request,
    check_string,
)
from ..models.appointments import (
    AddAppointmentRequest,
    AppointmentResource,
    AppointmentResult,
    AppointmentSlotReport,
    AppointmentTimeInput,
    AssignAppointmentResourcesRequest,
    AssignAppointmentResourcesResult,
    FulfillmentDocument,
    FulfillmentTime,
    RescheduleAppointmentRequest,
    SetAppointmentFulfillmentDataRequest,
)
from ..models.common import ApiWarning, DateTimeRange
from ._base import Resource

__all__ = ["Appointments"]

_ADD = "addAppointmentForServiceJobByServiceJobId"
_RESCHEDULE = "rescheduleAppointmentForServiceJobByServiceJobId"
_ASSIGN = "assignAppointmentResources"
_FULFILL = "setAppointmentFulfillmentData"
_SLOTS_FOR_JOB = "getAppointmmentSlotsByJobId"
_SLOTS = "getAppointmentSlots"

#: The widest window a slot search may cover.
MAX_SLOT_WINDOW = timedelta(days=90)

#: How far past this machine's clock a fulfilment time may reach before it is refused as
#: in the future, and how far before it an appointment's start may lie before it is refused
#: as in the past: room for a clock a little off Amazon's, no more.
FUTURE_ALLOWANCE = timedelta(minutes=1)

#: How far ahead an appointment may be booked (Amazon refuses a start beyond it).
MAX_BOOKING_AHEAD = timedelta(days=365)


class Appointments(Resource):
    """Book, reschedule and staff appointments; record fulfilment; find free slots."""

    async def add(
        self,
        service_job_id: JobRef,
        *,
        start_time: datetime,
        duration_minutes: int | None = None,
    ) -> AppointmentResult:
        """Book an appointment for a job; the result holds the new appointment's id.

        ``start_time`` must lie in the future, and at most 365 days ahead
        (:data:`MAX_BOOKING_AHEAD`): Amazon refuses any other (HTTP 422).  For Amazon's
        live hosts it is checked here first against this machine's clock, with a
        minute's allowance for clocks that differ (:data:`FUTURE_ALLOWANCE`), and
        refused with a ``ValueError`` naming ``start_time``.  Elsewhere the server's
        clock is the judge: the static sandbox replays fixed past dates, and an emulator
        may run its world at another date (the local one refuses a past start itself, in
        Amazon's words).

        Not retried after an ambiguous failure (a timeout, a 503): it might have been
        booked already.  Fetch the job to see before trying again.
        """
        job_id = _ids.job_id(service_job_id)
        body = AddAppointmentRequest(
            appointment_time=_appointment_time(start_time, duration_minutes, self._live_now())
        )
        return await self._result(
            _ADD, AppointmentResult, path={"serviceJobId": job_id}, body=_serde.unstructure(body)
        )

    async def reschedule(
        self,
        service_job_id: JobRef,
        appointment_id: AppointmentRef,
        *,
        start_time: datetime,
        reason_code: str,
        duration_minutes: int | None = None,
    ) -> AppointmentResult:
        """Move an appointment.  The API gives the moved appointment a *new* id.

        ``start_time`` is checked as :meth:`add` checks it: in the future, at most 365
        days ahead.
        """
        job_id = _ids.job_id(service_job_id)
        appt_id = _ids.appointment_id(appointment_id)
        check_string("reason_code", reason_code, min_length=1)
        body = RescheduleAppointmentRequest(
            appointment_time=_appointment_time(start_time, duration_minutes, self._live_now()),
            reschedule_reason_code=reason_code,
        )
        check_request(body, "body")
        return await self._result(
            _RESCHEDULE,
            AppointmentResult,
            path={"serviceJobId": job_id, "appointmentId": appt_id},
            body=_serde.unstructure(body),
        )

    async def assign_resources(
        self,
        service_job_id: JobRef,
        appointment_id: AppointmentRef,
        resource_ids: Iterable[ResourceRef],
    ) -> list[ApiWarning]:
        """Put technicians (resources) on an appointment; returns the API's warnings.

        ``resource_ids`` replaces the appointment's technicians: their resource ids, or
        records carrying them (anything with ``resource_id``, such as the emulator's
        ``qualified_resources(job)``, or ``technician_id``, such as a job's
        ``Technician``).  ``service_job_id`` and ``appointment_id`` may likewise be the
        ``ServiceJob`` and the ``AppointmentResult`` (or ``Appointment``) themselves.
        """
        job_id = _ids.job_id(service_job_id)
        appt_id = _ids.appointment_id(appointment_id)
        resources = _resources("resource_ids", resource_ids)
        body = AssignAppointmentResourcesRequest(resources=resources)
        result = await self._payload(
            _ASSIGN,
            AssignAppointmentResourcesResult,
            path={"serviceJobId": job_id, "appointmentId": appt_id},
            body=_serde.unstructure(body),
            empty=AssignAppointmentResourcesResult,
        )
        return list(result.warnings or ())

    async def set_fulfillment_data(
        self,
        service_job_id: JobRef,
        appointment_id: AppointmentRef,
        *,
        fulfillment_time: FulfillmentTime | tuple[datetime, datetime] | None = None,
        resources: Iterable[ResourceRef] | None = None,
        documents: Iterable[FulfillmentDocument] | None = None,
        estimated_arrival_time: DateTimeRange | tuple[datetime, datetime] | None = None,
    ) -> None:
        """Record how an appointment was fulfilled: when, by whom, with which documents.

        Give at least one of the four.  Times are ``(start, end)`` pairs of aware
        datetimes, or the models; ``documents`` are what :meth:`Documents.upload` returns.

        ``fulfillment_time`` is when the work was really done, so it is recorded after the
        visit: Amazon refuses a start or an end in the future (HTTP 422).  Both ends are
        checked here first against this machine's clock, with a minute's allowance for
        clocks that differ (:data:`FUTURE_ALLOWANCE`), and a later one is a ``ValueError``
        naming the end.  ``estimated_arrival_time`` is the window in which the technician
        is expected, so it may lie ahead.
        """
        job_id = _ids.job_id(service_job_id)
        appt_id = _ids.appointment_id(appointment_id)
        if (
            fulfillment_time is None
            and resources is None
            and documents is None
            and estimated_arrival_time is None
        ):
            raise ValueError(
                "set_fulfillment_data: give at least one of fulfillment_time, resources, "
                "documents or estimated_arrival_time"
            )
        body = SetAppointmentFulfillmentDataRequest(
            fulfillment_time=_fulfillment_time(fulfillment_time, self._client._utcnow()),
            estimated_arrival_time=_arrival_time(estimated_arrival_time),
            appointment_resources=(
                _resources("resources", resources) if resources is not None else None
            ),
            fulfillment_documents=(_documents(documents) if documents is not None else None),
        )
        check_request(body, "body")
        await self._send(
            _FULFILL,
            path={"serviceJobId": job_id, "appointmentId": appt_id},
            body=_serde.unstructure(body),
        )

    def _live_now(self) -> datetime | None:
        """The time now where the API runs on real time (Amazon's live hosts), else
        ``None``: a sandbox or an emulator keeps a clock of its own."""
        host = (URL(self._client.base_url).host or "").lower().rstrip(".")
        live = host.endswith(".amazon.com") and not host.startswith("sandbox.")
        return self._client._utcnow() if live else None

    async def slots_for_job(
        self,
        service_job_id: JobRef,
        *,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        marketplace_id: str | None = None,
    ) -> AppointmentSlotReport:
        """Free appointment slots for a job, optionally within a window of up to 90 days."""
        job_id = _ids.job_id(service_job_id)
        query = _slot_window(start_time, end_time)
        query["marketplaceIds"] = self._marketplace(marketplace_id)
        # No payload (``{}``) is a report of no slots: the payload is optional.
        return await self._payload(
            _SLOTS_FOR_JOB,
            AppointmentSlotReport,
            path={"serviceJobId": job_id},
            query=query,
            empty=AppointmentSlotReport,
        )

    async def slots(
        self,
        *,
        asin: str,
        store_id: str,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
        marketplace_id: str | None = None,
    ) -> AppointmentSlotReport:
        """Free appointment slots for a product at a store."""
        query = _slot_window(start_time, end_time)
        query["asin"] = check_string("asin", asin, min_length=1)
        query["storeId"] = check_id("store_id", store_id, carried_as=("store_id",))
        query["marketplaceIds"] = self._marketplace(marketplace_id)
        return await self._payload(
            _SLOTS, AppointmentSlotReport, query=query, empty=AppointmentSlotReport
        )


def _appointment_time(
    start_time: datetime, duration_minutes: int | None, now: datetime | None
) -> AppointmentTimeInput:
    check_datetime("start_time", start_time)
    if now is not None:
        _check_start(start_time, now)
    if duration_minutes is not None:
        check_int("duration_minutes", duration_minutes, minimum=1)
    return AppointmentTimeInput(start_time=start_time, duration_in_minutes=duration_minutes)


def _check_start(start_time: datetime, now: datetime) -> None:
    """A start Amazon would take: in the future (give or take the allowance), at most
    365 days ahead."""
    if start_time < now - FUTURE_ALLOWANCE:
        raise ValueError(
            f"start_time: {_utc(start_time)} is in the past (this machine's clock says "
            f"{_utc(now)}); an appointment must start in the future: Amazon refuses a past "
            "start"
        )
    if start_time > now + MAX_BOOKING_AHEAD + FUTURE_ALLOWANCE:
        raise ValueError(
            f"start_time: {_utc(start_time)} is more than 365 days ahead (this machine's "
            f"clock says {_utc(now)}); Amazon books appointments at most 365 days ahead"
        )


def _resources(name: str, resource_ids: Iterable[ResourceRef]) -> list[AppointmentResource]:
    ids = [
        _ids.resource_id(value, f"{name}[{index}]")
        for index, value in enumerate(check_items(name, resource_ids, min_items=1))
    ]
    for index, resource_id in enumerate(ids):
        if resource_id in ids[:index]:
            raise ValueError(f"{name}[{index}]: {resource_id!r} is listed twice")
    return [AppointmentResource(resource_id=r) for r in ids]


def _documents(documents: Iterable[FulfillmentDocument]) -> Sequence[FulfillmentDocument]:
    items = check_items("documents", documents, min_items=1)
    for index, document in enumerate(items):
        if not isinstance(document, FulfillmentDocument):
            raise TypeError(
                f"documents[{index}]: expected a FulfillmentDocument, got {type(document).__name__}"
            )
    return items


def _pair(name: str, value: object) -> tuple[datetime, datetime]:
    """A ``(start, end)`` pair of aware datetimes.  Its ends are named as a model's fields
    are (``fulfillment_time.start_time``), with where they stand in the pair."""
    if not (isinstance(value, tuple) and len(value) == 2):
        raise TypeError(f"{name}: expected a (start, end) pair, got {type(value).__name__}")
    ends = []
    for index, which in enumerate(("start_time", "end_time")):
        try:
            ends.append(check_datetime(f"{name}.{which}", value[index]))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{exc} (given as {name}[{index}])") from None
    return ends[0], ends[1]


def _fulfillment_time(
    value: FulfillmentTime | tuple[datetime, datetime] | None, now: datetime
) -> FulfillmentTime | None:
    if value is None:
        return None
    names = ("fulfillment_time.start_time", "fulfillment_time.end_time")
    if not isinstance(value, FulfillmentTime):
        start, end = _pair("fulfillment_time", value)
        value = FulfillmentTime(start_time=start, end_time=end)
    # The API needs both ends (it answers 422 without either); a zero-length visit is its
    # call to judge, an end before the start is not.
    if value.start_time is None or value.end_time is None:
        missing = names[0] if value.start_time is None else names[1]
        raise ValueError(f"{missing}: both ends of the visit are required")
    check_datetime(names[0], value.start_time)
    check_datetime(names[1], value.end_time)
    if value.end_time < value.start_time:
        raise ValueError("fulfillment_time: the end must not be before the start")
    for which, when in zip(names, (value.start_time, value.end_time), strict=True):
        if when > now + FUTURE_ALLOWANCE:
            raise ValueError(
                f"{which}: {_utc(when)} is in the future (this machine's "
                f"clock says {_utc(now)}); it is when the work was done, so record it after "
                "the visit: Amazon refuses a future fulfilment time"
            )
    return value


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _arrival_time(
    value: DateTimeRange | tuple[datetime, datetime] | None,
) -> DateTimeRange | None:
    if value is None:
        return None
    if not isinstance(value, DateTimeRange):
        start, end = _pair("estimated_arrival_time", value)
        value = DateTimeRange(start_time=start, end_time=end)
    check_datetime("estimated_arrival_time.start_time", value.start_time)
    check_datetime("estimated_arrival_time.end_time", value.end_time)
    if value.end_time < value.start_time:
        raise ValueError("estimated_arrival_time: the end must not be before the start")
    return value


def _slot_window(start_time: datetime | None, end_time: datetime | None) -> dict[str, object]:
    if (start_time is None) != (end_time is None):
        raise ValueError("start_time / end_time: give both or neither")
    if start_time is None or end_time is None:
        return {}
    check_datetime("start_time", start_time)
    check_datetime("end_time", end_time)
    if end_time <= start_time:
        raise ValueError("end_time: must be after start_time")
    if end_time - start_time > MAX_SLOT_WINDOW:
        raise ValueError("end_time: the window may span at most 90 days")
    return {"startTime": start_time, "endTime": end_time}
