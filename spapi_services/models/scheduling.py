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

    end_time: datetime
    days_of_week: Sequence[DayOfWeek] | None = None
    days_of_month: Sequence[int] | None = bounded(item_minimum=1, item_maximum=31)


@attrs.frozen(kw_only=True)
class AvailabilityRecord(ApiModel):
    """A window of time in which a resource can take ``capacity`` jobs at once."""

    start_time: datetime
    end_time: datetime
    recurrence: Recurrence | None = None
    capacity: int | None = bounded(minimum=1)


@attrs.frozen(kw_only=True)
class Reservation(ApiModel):
    """Time taken out of a resource's schedule (an appointment, travel, a break...)."""

    type: ReservationType
    availability: AvailabilityRecord
    reservation_id: str | None = None


@attrs.frozen(kw_only=True)
class UpdateScheduleRequest(ApiModel):
    """Body of a request that replaces a resource's working hours.

    The API refuses an empty list, so at least one record is required.
    """

    schedules: Sequence[AvailabilityRecord] = bounded(required=True, min_items=1)


@attrs.frozen(kw_only=True)
class CreateReservationRequest(ApiModel):
    """Body of a request that reserves a block of a resource's time.

    Unlike the schedule and capacity calls, these carry the resource id in the body.
    """

    resource_id: str = bounded(required=True, min_length=1, max_length=100)
    reservation: Reservation


@attrs.frozen(kw_only=True)
class UpdateReservationRequest(ApiModel):
    """Body of a request that changes a reservation (its id goes in the path)."""

    resource_id: str = bounded(required=True, min_length=1, max_length=100)
    reservation: Reservation


@attrs.frozen(kw_only=True)
class UpdateScheduleRecord(ApiModel):
    """A schedule entry the API had something to say about."""

    availability: AvailabilityRecord | None = None
    warnings: tuple[ApiWarning, ...] | None = None
    errors: tuple[Error, ...] | None = None


@attrs.frozen(kw_only=True)
class CreateReservationRecord(ApiModel):
    """The reservation as created, with any warnings or per-record errors."""

    reservation: Reservation | None = None
    warnings: tuple[ApiWarning, ...] | None = None
    errors: tuple[Error, ...] | None = None


@attrs.frozen(kw_only=True)
class UpdateReservationRecord(ApiModel):
    """The reservation as updated, with any warnings or per-record errors."""

    reservation: Reservation | None = None
    warnings: tuple[ApiWarning, ...] | None = None
    errors: tuple[Error, ...] | None = None


@attrs.frozen(kw_only=True)
class RangeSlotCapacityQuery(ApiModel):
    """Body of a capacity query that merges equal neighbouring slots into ranges."""

    start_date_time: datetime
    end_date_time: datetime
    capacity_types: Sequence[CapacityType] | None = None


@attrs.frozen(kw_only=True)
class FixedSlotCapacityQuery(ApiModel):
    """Body of a capacity query in slots of a fixed number of minutes."""

    start_date_time: datetime
    end_date_time: datetime
    capacity_types: Sequence[CapacityType] | None = None
    slot_duration: int | None = bounded(minimum=5, maximum=360, multiple_of=5)


@attrs.frozen(kw_only=True)
class RangeSlot(ApiModel):
    """A stretch of time with one capacity figure."""

    start_date_time: datetime | None = None
    end_date_time: datetime | None = None
    capacity: int | None = None


@attrs.frozen(kw_only=True)
class RangeCapacity(ApiModel):
    """The ranges of one capacity type."""

    capacity_type: CapacityType | None = None
    slots: tuple[RangeSlot, ...] | None = None


@attrs.frozen(kw_only=True)
class RangeSlotCapacity(ApiModel):
    """One page of range capacity for a resource."""

    resource_id: str | None = None
    capacities: tuple[RangeCapacity, ...] | None = None
    next_page_token: str | None = None


@attrs.frozen(kw_only=True)
class FixedSlot(ApiModel):
    """Capacity figures for one fixed-length slot; only the requested types are set."""

    start_date_time: datetime | None = None
    scheduled_capacity: int | None = None
    available_capacity: int | None = None
    encumbered_capacity: int | None = None
    reserved_capacity: int | None = None


@attrs.frozen(kw_only=True)
class FixedSlotCapacity(ApiModel):
    """One page of fixed-slot capacity for a resource."""

    resource_id: str | None = None
    slot_duration: int | None = None
    capacities: tuple[FixedSlot, ...] | None = None
    next_page_token: str | None = None
