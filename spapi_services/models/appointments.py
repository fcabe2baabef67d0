"""Booking, rescheduling and staffing appointments, recording their fulfilment, and free slots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from ._base import ApiModel, bounded
from .common import ApiWarning, DateTimeRange, Error
from .enums import SchedulingType

__all__ = [
    "AddAppointmentRequest",
    "AppointmentResource",
    "AppointmentResult",
    "AppointmentSlot",
    "AppointmentSlotReport",
    "AppointmentTimeInput",
    "AssignAppointmentResourcesRequest",
    "AssignAppointmentResourcesResult",
    "FulfillmentDocument",
    "FulfillmentTime",
    "RescheduleAppointmentRequest",
    "SetAppointmentFulfillmentDataRequest",
]


@attrs.frozen(kw_only=True)
class AppointmentTimeInput(ApiModel):
    """The time asked for when booking or moving an appointment (UTC)."""

    #: When the appointment should start (timezone-aware; sent in UTC).
    start_time: datetime
    #: How long it should last, in minutes.
    duration_in_minutes: int | None = bounded(minimum=1)


@attrs.frozen(kw_only=True)
class AddAppointmentRequest(ApiModel):
    """Body of a request to book an appointment."""

    #: When to book the appointment.
    appointment_time: AppointmentTimeInput


@attrs.frozen(kw_only=True)
class RescheduleAppointmentRequest(ApiModel):
    """Body of a request to move an appointment, with the reason for the move."""

    #: The new time.
    appointment_time: AppointmentTimeInput
    #: Why the appointment moves, as one of Amazon's reason codes.
    reschedule_reason_code: str = bounded(required=True, min_length=1)


@attrs.frozen(kw_only=True)
class AppointmentResult(ApiModel):
    """What booking or rescheduling returns: the new appointment's id, and any notes.

    A reschedule always returns a *new* appointment id; the old one is kept on the job as
    ``rescheduled_appointment_id`` of the new appointment.
    """

    #: The id of the appointment booked; after a reschedule, a new id.
    appointment_id: str | None = None
    #: Notes about the change that did not stop it.
    warnings: tuple[ApiWarning, ...] | None = None
    #: Problems the API reports beside the result.
    errors: tuple[Error, ...] | None = None


@attrs.frozen(kw_only=True)
class AppointmentResource(ApiModel):
    """A resource (technician) to put on an appointment."""

    #: The resource's (technician's) id.
    resource_id: str | None = bounded(min_length=1, max_length=100)


@attrs.frozen(kw_only=True)
class AssignAppointmentResourcesRequest(ApiModel):
    """Body of a request that sets who carries out an appointment."""

    #: Who carries out the appointment.
    resources: Sequence[AppointmentResource] = bounded(required=True, min_items=1)


@attrs.frozen(kw_only=True)
class AssignAppointmentResourcesResult(ApiModel):
    """The payload of a successful assignment: only warnings, if any."""

    #: Notes about the assignment that did not stop it (an overbooked technician, say).
    warnings: tuple[ApiWarning, ...] | None = None


@attrs.frozen(kw_only=True)
class FulfillmentTime(ApiModel):
    """When the work actually started and ended (UTC)."""

    #: When the work started.
    start_time: datetime | None = None
    #: When the work ended.
    end_time: datetime | None = None


@attrs.frozen(kw_only=True)
class FulfillmentDocument(ApiModel):
    """An uploaded document to cite as proof of the work.

    ``content_sha256`` is the base64 SHA-256 of the file; :meth:`Documents.upload` returns
    one of these ready to pass to ``set_fulfillment_data(documents=[...])``.
    """

    #: The id of the upload destination the document was uploaded to.
    upload_destination_id: str | None = bounded(min_length=1)
    #: The base64 SHA-256 of the document as uploaded.
    content_sha256: str | None = bounded(min_length=1)


@attrs.frozen(kw_only=True)
class SetAppointmentFulfillmentDataRequest(ApiModel):
    """Body of a request that records how an appointment was fulfilled."""

    #: The window in which the technician expected to arrive.
    estimated_arrival_time: DateTimeRange | None = None
    #: When the work was actually done.
    fulfillment_time: FulfillmentTime | None = None
    #: Who did the work.
    appointment_resources: Sequence[AppointmentResource] | None = None
    #: Uploaded documents that prove it.
    fulfillment_documents: Sequence[FulfillmentDocument] | None = None


@attrs.frozen(kw_only=True)
class AppointmentSlot(ApiModel):
    """A bookable window and how many more appointments it can take."""

    #: When the slot starts.
    start_time: datetime | None = None
    #: When the slot ends.
    end_time: datetime | None = None
    #: How many more appointments the slot can take.
    capacity: int | None = None


@attrs.frozen(kw_only=True)
class AppointmentSlotReport(ApiModel):
    """The free appointment slots of a job or of a store's product."""

    #: Whether the slots can be booked in real time.
    scheduling_type: SchedulingType | None = None
    #: The start of the period the report covers.
    start_time: datetime | None = None
    #: The end of the period the report covers.
    end_time: datetime | None = None
    #: The free slots in that period.
    appointment_slots: tuple[AppointmentSlot, ...] | None = None
