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

    start_time: datetime
    duration_in_minutes: int | None = bounded(minimum=1)


@attrs.frozen(kw_only=True)
class AddAppointmentRequest(ApiModel):
    """Body of a request to book an appointment."""

    appointment_time: AppointmentTimeInput


@attrs.frozen(kw_only=True)
class RescheduleAppointmentRequest(ApiModel):
    """Body of a request to move an appointment, with the reason for the move."""

    appointment_time: AppointmentTimeInput
    reschedule_reason_code: str = bounded(required=True, min_length=1)


@attrs.frozen(kw_only=True)
class AppointmentResult(ApiModel):
    """What booking or rescheduling returns: the new appointment's id, and any notes.

    A reschedule always returns a *new* appointment id; the old one is kept on the job as
    ``rescheduled_appointment_id`` of the new appointment.
    """

    appointment_id: str | None = None
    warnings: tuple[ApiWarning, ...] | None = None
    errors: tuple[Error, ...] | None = None


@attrs.frozen(kw_only=True)
class AppointmentResource(ApiModel):
    """A resource (technician) to put on an appointment."""

    resource_id: str | None = bounded(min_length=1, max_length=100)


@attrs.frozen(kw_only=True)
class AssignAppointmentResourcesRequest(ApiModel):
    """Body of a request that sets who carries out an appointment."""

    resources: Sequence[AppointmentResource] = bounded(required=True, min_items=1)


@attrs.frozen(kw_only=True)
class AssignAppointmentResourcesResult(ApiModel):
    """The payload of a successful assignment: only warnings, if any."""

    warnings: tuple[ApiWarning, ...] | None = None


@attrs.frozen(kw_only=True)
class FulfillmentTime(ApiModel):
    """When the work actually started and ended (UTC)."""

    start_time: datetime | None = None
    end_time: datetime | None = None


@attrs.frozen(kw_only=True)
class FulfillmentDocument(ApiModel):
    """An uploaded document to cite as proof of the work.

    ``content_sha256`` is the base64 SHA-256 of the file; :meth:`Documents.upload` returns
    one of these ready to pass to ``set_fulfillment_data(documents=[...])``.
    """

    upload_destination_id: str | None = bounded(min_length=1)
    content_sha256: str | None = bounded(min_length=1)


@attrs.frozen(kw_only=True)
class SetAppointmentFulfillmentDataRequest(ApiModel):
    """Body of a request that records how an appointment was fulfilled."""

    estimated_arrival_time: DateTimeRange | None = None
    fulfillment_time: FulfillmentTime | None = None
    appointment_resources: Sequence[AppointmentResource] | None = None
    fulfillment_documents: Sequence[FulfillmentDocument] | None = None


@attrs.frozen(kw_only=True)
class AppointmentSlot(ApiModel):
    """A bookable window and how many more appointments it can take."""

    start_time: datetime | None = None
    end_time: datetime | None = None
    capacity: int | None = None


@attrs.frozen(kw_only=True)
class AppointmentSlotReport(ApiModel):
    """The free appointment slots of a job or of a store's product."""

    scheduling_type: SchedulingType | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    appointment_slots: tuple[AppointmentSlot, ...] | None = None
