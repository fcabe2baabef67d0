"""A resource's working hours, reservations of its time, and the capacity that results."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs

from ._base import ApiModel, bounded
from .common import ApiWarning, Error
from .enums import CapacityType, DayOfWeek, ReservationType

__all__ = [
    "AvailabilityRecord",
    "CreateReservationRecord",
    "CreateReservationRequest",
    "FixedSlot",
    "FixedSlotCapacity",
    "FixedSlotCapacityQuery",
    "RangeCapacity",
    "RangeSlot",
    "RangeSlotCapacity",
    "RangeSlotCapacityQuery",
    "Recurrence",
    "Reservation",
    "UpdateReservationRecord",
    "UpdateReservationRequest",
    "UpdateScheduleRecord",
    "UpdateScheduleRequest",
]


@attrs.frozen(kw_only=True)
class Recurrence(ApiModel):
    """How an availability repeats, and until when."""

    #: When the repetition stops.
    end_time: datetime
    #: The weekdays on which it repeats.
    days_of_week: Sequence[DayOfWeek] | None = None
    #: The days of the month on which it repeats.
    days_of_month: Sequence[int] | None = bounded(item_minimum=1, item_maximum=31)


@attrs.frozen(kw_only=True)
class AvailabilityRecord(ApiModel):
    """A window of time in which a resource can take ``capacity`` jobs at once."""

    #: When the window starts.
    start_time: datetime
    #: When the window ends.
    end_time: datetime
    #: How the window repeats; left out, it does not.
    recurrence: Recurrence | None = None
    #: How many jobs the resource can take at once in the window.
    capacity: int | None = bounded(minimum=1)


@attrs.frozen(kw_only=True)
class Reservation(ApiModel):
    """Time taken out of a resource's schedule (an appointment, travel, a break...)."""

    #: Why the time is reserved (an appointment, travel, a break...).
    type: ReservationType
    #: The time reserved.
    availability: AvailabilityRecord
    #: The reservation's id; set by the API, left out when creating one.
    reservation_id: str | None = None


@attrs.frozen(kw_only=True)
class UpdateScheduleRequest(ApiModel):
    """Body of a request that replaces a resource's working hours.

    The API refuses an empty list, so at least one record is required.
    """

    #: The resource's working hours, replacing what it had.
    schedules: Sequence[AvailabilityRecord] = bounded(required=True, min_items=1)


@attrs.frozen(kw_only=True)
class CreateReservationRequest(ApiModel):
    """Body of a request that reserves a block of a resource's time.

    Unlike the schedule and capacity calls, these carry the resource id in the body.
    """

    #: The resource whose time is reserved.
    resource_id: str = bounded(required=True, min_length=1, max_length=100)
    #: What to reserve.
    reservation: Reservation


@attrs.frozen(kw_only=True)
class UpdateReservationRequest(ApiModel):
    """Body of a request that changes a reservation (its id goes in the path)."""

    #: The resource whose time is reserved.
    resource_id: str = bounded(required=True, min_length=1, max_length=100)
    #: The reservation as it should now be.
    reservation: Reservation


@attrs.frozen(kw_only=True)
class UpdateScheduleRecord(ApiModel):
    """A schedule entry the API had something to say about."""

    #: The schedule entry concerned.
    availability: AvailabilityRecord | None = None
    #: Notes about it that did not stop the update.
    warnings: tuple[ApiWarning, ...] | None = None
    #: Problems with it.
    errors: tuple[Error, ...] | None = None


@attrs.frozen(kw_only=True)
class CreateReservationRecord(ApiModel):
    """The reservation as created, with any warnings or per-record errors."""

    #: The reservation as created, with its id.
    reservation: Reservation | None = None
    #: Notes that did not stop it.
    warnings: tuple[ApiWarning, ...] | None = None
    #: Problems with this reservation.
    errors: tuple[Error, ...] | None = None


@attrs.frozen(kw_only=True)
class UpdateReservationRecord(ApiModel):
    """The reservation as updated, with any warnings or per-record errors."""

    #: The reservation as updated.
    reservation: Reservation | None = None
    #: Notes that did not stop it.
    warnings: tuple[ApiWarning, ...] | None = None
    #: Problems with this reservation.
    errors: tuple[Error, ...] | None = None


@attrs.frozen(kw_only=True)
class RangeSlotCapacityQuery(ApiModel):
    """Body of a capacity query that merges equal neighbouring slots into ranges."""

    #: The start of the period to report on.
    start_date_time: datetime
    #: The end of the period to report on.
    end_date_time: datetime
    #: Which figures to report.
    capacity_types: Sequence[CapacityType] | None = None


@attrs.frozen(kw_only=True)
class FixedSlotCapacityQuery(ApiModel):
    """Body of a capacity query in slots of a fixed number of minutes."""

    #: The start of the period to report on.
    start_date_time: datetime
    #: The end of the period to report on.
    end_date_time: datetime
    #: Which figures to report.
    capacity_types: Sequence[CapacityType] | None = None
    #: The length of each slot, in minutes.
    slot_duration: int | None = bounded(minimum=5, maximum=360, multiple_of=5)


@attrs.frozen(kw_only=True)
class RangeSlot(ApiModel):
    """A stretch of time with one capacity figure."""

    #: When the range starts.
    start_date_time: datetime | None = None
    #: When the range ends.
    end_date_time: datetime | None = None
    #: The capacity throughout the range.
    capacity: int | None = None


@attrs.frozen(kw_only=True)
class RangeCapacity(ApiModel):
    """The ranges of one capacity type."""

    #: Which figure the ranges give.
    capacity_type: CapacityType | None = None
    #: The ranges, in time order.
    slots: tuple[RangeSlot, ...] | None = None


@attrs.frozen(kw_only=True)
class RangeSlotCapacity(ApiModel):
    """One page of range capacity for a resource."""

    #: The resource reported on.
    resource_id: str | None = None
    #: The ranges, one entry per capacity type asked for.
    capacities: tuple[RangeCapacity, ...] | None = None
    #: The token of the next page; ``None`` on the last.
    next_page_token: str | None = None


@attrs.frozen(kw_only=True)
class FixedSlot(ApiModel):
    """Capacity figures for one fixed-length slot; only the requested types are set."""

    #: When the slot starts.
    start_date_time: datetime | None = None
    #: The capacity the resource's schedule gives the slot.
    scheduled_capacity: int | None = None
    #: What is still free in the slot.
    available_capacity: int | None = None
    #: What appointments already take.
    encumbered_capacity: int | None = None
    #: What reservations take.
    reserved_capacity: int | None = None


@attrs.frozen(kw_only=True)
class FixedSlotCapacity(ApiModel):
    """One page of fixed-slot capacity for a resource."""

    #: The resource reported on.
    resource_id: str | None = None
    #: The length of each slot, in minutes.
    slot_duration: int | None = None
    #: The slots of this page, in time order.
    capacities: tuple[FixedSlot, ...] | None = None
    #: The token of the next page; ``None`` on the last.
    next_page_token: str | None = None
