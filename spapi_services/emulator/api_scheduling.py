"""Schedules, reservations and capacity of service resources (technicians or stores).

A new availability record replaces the existing records it overlaps, with the sandbox's
``ScheduleOverride`` warning.  Reservations take capacity away; capacity is reported as
ranges or fixed slots, paged by ``nextPageToken`` (an opaque token bound to the resource
and the query) over windows of a week or of 288 slots.  As in the sandbox, an unknown
resource in a schedule or reservation request is a 200 whose body carries ``errors``, and
the capacity operations word their 400s as "This is invalid input" with the reasons in
``details``.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from .capacity import fixed_slots, pieces, range_slots
from .context import Handler, ServiceContext
from .replies import (
    EMPTY_OBJECT,
    NO_CONTENT,
    ApiError,
    Reply,
    error_entry,
    invalid_input,
    json_reply,
)
from .store import WEEKDAYS, AvailabilityWindow, ReservationRecord, ResourceRecord
from .times import parse_time
from .tokens import InvalidPageToken
from .validation import Call

__all__ = ["SchedulingApi", "window_from_wire"]

_RANGE_PAGE = timedelta(days=7)
_FIXED_PAGE_SLOTS = 288
_DEFAULT_SLOT_MINUTES = 30
_OVERRIDE = "This AvailabilityRecord will override the current schedule as the time-ranges overlap"


def window_from_wire(data: dict[str, Any], where: str) -> AvailabilityWindow:
    """An ``AvailabilityRecord`` read into a window; ValueError naming the bad field."""

    def when(value: Any, name: str) -> datetime:
        try:
            return parse_time(value)
        except ValueError:
            raise ValueError(f"{where}.{name} is not a valid ISO 8601 date-time") from None

    start, end = when(data["startTime"], "startTime"), when(data["endTime"], "endTime")
    if end <= start:
        raise ValueError(f"{where}.endTime must be after {where}.startTime")
    window = AvailabilityWindow(start, end, int(data.get("capacity") or 1))
    recurrence = data.get("recurrence")
    if recurrence is not None:
        window.recurrence_end = when(recurrence["endTime"], "recurrence.endTime")
        if window.recurrence_end < start:
            raise ValueError(f"{where}.recurrence.endTime must not be before {where}.startTime")
        if recurrence.get("daysOfWeek"):
            window.days_of_week = frozenset(WEEKDAYS.index(d) for d in recurrence["daysOfWeek"])
        if recurrence.get("daysOfMonth"):
            window.days_of_month = frozenset(int(d) for d in recurrence["daysOfMonth"])
    return window


def _bad_resource() -> Reply:
    # The sandbox answers an unknown resource with a 200 that carries errors.
    return json_reply(
        {"errors": [error_entry("InvalidInput", "Invalid request parameters: [resourceId]")]}
    )


def _capacity_error(*reasons: str, status: int = 400) -> ApiError:
    return ApiError(
        status,
        [
            error_entry(
                "InvalidInput",
                "This is invalid input",
                f"Received the following errors: [{', '.join(reasons)}]",
            )
        ],
    )


class SchedulingApi:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def handlers(self) -> dict[str, Handler]:
        return {
            "updateSchedule": self.update_schedule,
            "createReservation": self.create_reservation,
            "updateReservation": self.update_reservation,
            "cancelReservation": self.cancel_reservation,
            "getRangeSlotCapacity": self.range_capacity,
            "getFixedSlotCapacity": self.fixed_capacity,
        }

    # --- schedules --------------------------------------------------------------------

    def update_schedule(self, call: Call) -> Reply:
        resource = self.ctx.store.resources.get(call.path["resourceId"])
        if resource is None:
            return _bad_resource()
        try:
            windows = [
                window_from_wire(item, f"schedules[{i}]")
                for i, item in enumerate(call.body["schedules"])
            ]
        except ValueError as exc:
            raise invalid_input(
                "Missing or invalid request parameters: [schedules]", str(exc)
            ) from None
        records = []
        kept = list(resource.schedule)
        for window in windows:
            overlapping = [old for old in kept if old.overlaps(window)]
            if overlapping:
                kept = [old for old in kept if not old.overlaps(window)]
                records.append(
                    {
                        "availability": window.to_wire(),
                        "warnings": [{"code": "ScheduleOverride", "message": _OVERRIDE}],
                    }
                )
        resource.schedule = kept + windows
        return json_reply({"payload": records}) if records else EMPTY_OBJECT

    # --- reservations ---------------------------------------------------------------

    def create_reservation(self, call: Call) -> Reply:
        existing = call.body["reservation"].get("reservationId")
        if existing:
            # The model: a reservation that names an id is an update of that reservation.
            return self._save(existing, call.body)
        return self._save(None, call.body)

    def update_reservation(self, call: Call) -> Reply:
        return self._save(call.path["reservationId"], call.body)

    def _save(self, reservation_id: str | None, body: dict[str, Any]) -> Reply:
        store = self.ctx.store
        if reservation_id is not None and reservation_id not in store.reservations:
            raise ApiError(
                404,
                [
                    error_entry(
                        "InvalidInput", f"Could not find reservation with ID: [{reservation_id}]"
                    )
                ],
            )
        resource = store.resources.get(body["resourceId"])
        if resource is None:
            return _bad_resource()
        reservation = body["reservation"]
        try:
            window = window_from_wire(reservation["availability"], "reservation.availability")
        except ValueError as exc:
            raise invalid_input(
                "Missing or invalid request parameters: [reservation]", str(exc)
            ) from None
        record = ReservationRecord(
            reservation_id=reservation_id or store.new_reservation_id(),
            resource_id=resource.resource_id,
            type=reservation["type"],
            window=window,
        )
        store.reservations[record.reservation_id] = record
        return json_reply({"payload": {"reservation": record.to_wire()}})

    def cancel_reservation(self, call: Call) -> Reply:
        reservation_id = call.path["reservationId"]
        if self.ctx.store.reservations.pop(reservation_id, None) is None:
            raise ApiError(404, [error_entry("InvalidInput", "Reservation does not exist")])
        return NO_CONTENT

    # --- capacity -------------------------------------------------------------------

    def range_capacity(self, call: Call) -> Reply:
        resource, start, end, kinds = self._capacity_query(call)
        page_start = self._page_start(call, start, end)
        page_end = min(page_start + _RANGE_PAGE, end)
        parts = pieces(self.ctx.store, resource, page_start, page_end)
        body: dict[str, Any] = {
            "resourceId": resource.resource_id,
            "capacities": range_slots(parts, kinds),
        }
        self._next(call, body, page_end, end)
        return json_reply(body)

    def fixed_capacity(self, call: Call) -> Reply:
        resource, start, end, kinds = self._capacity_query(call)
        minutes = call.body.get("slotDuration")
        minutes = _DEFAULT_SLOT_MINUTES if minutes is None else int(minutes)
        if not 5 <= minutes <= 360 or minutes % 5:
            raise _capacity_error(
                "Slot duration is not valid, it should be a multiple of 5 and within allowed range."
            )
        page_start = self._page_start(call, start, end)
        page_end = min(page_start + _FIXED_PAGE_SLOTS * timedelta(minutes=minutes), end)
        parts = pieces(self.ctx.store, resource, page_start, page_end)
        body: dict[str, Any] = {
            "resourceId": resource.resource_id,
            "slotDuration": minutes,
            "capacities": fixed_slots(parts, kinds, page_start, page_end, minutes),
        }
        self._next(call, body, page_end, end)
        return json_reply(body)

    def _capacity_query(self, call: Call) -> tuple[ResourceRecord, datetime, datetime, list[str]]:
        body = call.body
        if not body.get("startDateTime") or not body.get("endDateTime"):
            raise _capacity_error("startDateTime or endDateTime are not present")
        times = []
        for name in ("startDateTime", "endDateTime"):
            try:
                times.append(parse_time(body[name]))
            except ValueError:
                raise _capacity_error(f"{name} is not a valid ISO date/time object") from None
        start, end = times
        if end <= start:
            raise _capacity_error("endDateTime should be after Start Time")
        resource = self.ctx.store.resources.get(call.path["resourceId"])
        if resource is None:
            raise _capacity_error(f"Resource {call.path['resourceId']} does not exist", status=404)
        kinds = list(dict.fromkeys(body.get("capacityTypes") or ["SCHEDULED_CAPACITY"]))
        return resource, start, end, kinds

    def _fingerprint(self, call: Call) -> str:
        query = {"r": call.path["resourceId"], "o": call.operation, "b": call.body}
        return hashlib.sha256(json.dumps(query, sort_keys=True).encode()).hexdigest()[:16]

    def _page_start(self, call: Call, start: datetime, end: datetime) -> datetime:
        token = call.query.get("nextPageToken")
        if token is None:
            return start
        try:
            cursor = self.ctx.page_tokens.decode(token)
            if cursor.get("f") != self._fingerprint(call):
                raise InvalidPageToken("The page token belongs to a different query.")
            resume = parse_time(cursor["s"])
        except (InvalidPageToken, KeyError, TypeError, ValueError) as exc:
            raise _capacity_error(f"nextPageToken is not valid: {exc}") from None
        if not start <= resume < end:
            raise _capacity_error("nextPageToken is not valid for this time range")
        return resume

    def _next(self, call: Call, body: dict[str, Any], page_end: datetime, end: datetime) -> None:
        if page_end < end:
            body["nextPageToken"] = self.ctx.page_tokens.encode(
                {"f": self._fingerprint(call), "s": page_end.isoformat()}
            )
