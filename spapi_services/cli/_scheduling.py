"""``documents upload``, ``schedules update``, ``reservations create|update|cancel`` and
``capacity range|fixed``."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from .. import _serde
from .._upload import CONTENT_TYPES_HELP
from ..errors import ResponseDecodeError
from ..models.appointments import FulfillmentDocument
from ..models.enums import CapacityType, DayOfWeek, ReservationType
from ..models.scheduling import (
    AvailabilityRecord,
    CreateReservationRecord,
    FixedSlotCapacity,
    RangeSlotCapacity,
    Recurrence,
    Reservation,
    UpdateReservationRecord,
    UpdateScheduleRecord,
)
from ._app import (
    Argument,
    Group,
    Option,
    Show,
    call_api,
    collect,
    confirm,
    json_option,
    json_or,
)
from ._output import Output, plural
from ._times import TIME

__all__ = ["capacity", "documents", "reservations", "schedules"]

F = TypeVar("F", bound=Callable[..., Any])

_DAYS = {d.value[:3]: d for d in DayOfWeek}


# --- documents ------------------------------------------------------------------------


@click.group(cls=Group)
def documents() -> None:
    """Fulfilment documents (proof of appointment)."""


@documents.command("upload")
@click.argument(
    "file",
    cls=Argument,
    sdk_names=("document",),
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option(
    "--content-type",
    metavar="TYPE",
    help=f"File type: {CONTENT_TYPES_HELP} (default: from the suffix or the first bytes).",
)
@click.option(
    "--encrypt/--no-encrypt",
    default=True,
    show_default=True,
    help="Encrypt the bytes before sending (--no-encrypt is not for normal use).",
)
@json_option
def upload(file: Path, content_type: str | None, encrypt: bool) -> None:
    """Upload a document; prints the UPLOAD_ID:SHA256 to cite in `fulfillment set`."""

    def show(out: Output, doc: FulfillmentDocument) -> None:
        # The id is longer than a terminal is wide: each value on a line of its own,
        # never broken, so a copy gets it whole.
        out.fields(
            f"Uploaded {file.name}",
            [
                ("upload destination id", doc.upload_destination_id),
                ("content SHA-256", doc.content_sha256),
            ],
        )
        out.say("Cite it in `fulfillment set` with:")
        out.say(f"  --document {doc.upload_destination_id}:{doc.content_sha256}")

    call_api(
        lambda client: client.documents.upload(file, content_type=content_type, encrypt=encrypt),
        json_or(show),
    )


# --- availability options shared by schedules and reservations -----------------------


def _availability_options(fn: F) -> F:
    for option in reversed(
        [
            click.option("--start", "start_time", type=TIME, help="Start of the time."),
            click.option("--end", "end_time", type=TIME, help="End of the time."),
            click.option("--capacity", type=click.IntRange(min=1), help="Jobs at once."),
            click.option(
                "--repeat-until",
                type=TIME,
                cls=Option,
                sdk_names=("recurrence.end_time", "recurrence"),
                help="Repeat daily until this time (a recurrence).",
            ),
            click.option(
                "--days",
                cls=Option,
                sdk_names=("days_of_week",),
                metavar="MON,TUE,...",
                help="With --repeat-until: only these weekdays.",
            ),
            click.option(
                "--days-of-month",
                metavar="1,15,...",
                help="With --repeat-until: only these days of the month.",
            ),
        ]
    ):
        fn = option(fn)
    return fn


def _availability(
    start_time: datetime | None,
    end_time: datetime | None,
    capacity: int | None,
    repeat_until: datetime | None,
    days: str | None,
    days_of_month: str | None,
) -> AvailabilityRecord:
    if start_time is None or end_time is None:
        raise click.UsageError("give --start and --end")
    if (days or days_of_month) and repeat_until is None:
        raise click.UsageError("--days and --days-of-month need --repeat-until")
    recurrence = None
    if repeat_until is not None:
        recurrence = Recurrence(
            end_time=repeat_until,
            days_of_week=_weekdays(days) if days else None,
            days_of_month=_month_days(days_of_month) if days_of_month else None,
        )
    return AvailabilityRecord(
        start_time=start_time, end_time=end_time, recurrence=recurrence, capacity=capacity
    )


def _weekdays(text: str) -> list[DayOfWeek]:
    days = []
    for part in filter(None, (p.strip().upper() for p in text.split(","))):
        day = _DAYS.get(part[:3])
        if day is None:
            raise click.BadParameter(f"{part!r} is not a weekday (MON..SUN)", param_hint="--days")
        days.append(day)
    return days


def _month_days(text: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: expected numbers such as 1,15", param_hint="--days-of-month"
        ) from None


def _records_from_file(path: Path) -> list[AvailabilityRecord]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--file") from None
    if isinstance(data, dict) and "schedules" in data:
        data = data["schedules"]
    try:
        return _serde.structure(data, list[AvailabilityRecord])
    except ResponseDecodeError as exc:
        problems = "; ".join(exc.problems) or str(exc)
        raise click.BadParameter(
            f"{path}: not a list of availability records: {problems}", param_hint="--file"
        ) from None


# --- schedules ------------------------------------------------------------------------


@click.group(cls=Group)
def schedules() -> None:
    """A resource's working hours."""


@schedules.command("update")
@click.argument("resource_id")
@_availability_options
@click.option(
    "--file",
    "records_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON list of records ({"startTime", "endTime", "capacity", "recurrence"}).',
)
@json_option
def update_schedule(
    resource_id: str,
    start_time: datetime | None,
    end_time: datetime | None,
    capacity: int | None,
    repeat_until: datetime | None,
    days: str | None,
    days_of_month: str | None,
    records_file: Path | None,
) -> None:
    """Replace a resource's schedule with one record (options) or many (--file)."""
    if records_file is not None:
        if start_time or end_time:
            raise click.UsageError("give either --file or --start/--end, not both")
        records = _records_from_file(records_file)
    else:
        records = [_availability(start_time, end_time, capacity, repeat_until, days, days_of_month)]

    def show(out: Output, notes: list[UpdateScheduleRecord]) -> None:
        if out.as_json:
            out.json({"ok": True, "records": notes})
            return
        out.done(f"schedule of {resource_id} set ({plural(len(records), 'record')})")
        for note in notes:
            out.warnings(note.warnings, note.errors)

    call_api(lambda client: client.schedules.update(resource_id, records), show)


# --- reservations ---------------------------------------------------------------------


@click.group(cls=Group)
def reservations() -> None:
    """Reserve a resource's time; change or cancel reservations."""


_TYPE = click.option(
    "--type",
    "reservation_type",
    cls=Option,
    sdk_names=("reservation.type",),
    type=click.Choice([t.value for t in ReservationType], case_sensitive=False),
    required=True,
    help="Why the time is reserved.",
)


def _reservation(verb: str) -> Show[CreateReservationRecord | UpdateReservationRecord]:
    return json_or(lambda out, record: _show_reservation(out, record, verb))


def _show_reservation(
    out: Output, record: CreateReservationRecord | UpdateReservationRecord, verb: str
) -> None:
    res = record.reservation
    avail = res.availability if res else None
    out.fields(
        f"Reservation {verb}",
        [
            ("reservation id", res.reservation_id if res else None),
            ("type", res.type if res else None),
            ("start", avail.start_time if avail else None),
            ("end", avail.end_time if avail else None),
            ("capacity", avail.capacity if avail else None),
        ],
    )
    out.warnings(record.warnings, record.errors)


@reservations.command("create")
@click.argument("resource_id")
@_TYPE
@_availability_options
@json_option
def create_reservation(
    resource_id: str,
    reservation_type: str,
    start_time: datetime | None,
    end_time: datetime | None,
    capacity: int | None,
    repeat_until: datetime | None,
    days: str | None,
    days_of_month: str | None,
) -> None:
    """Reserve a block of a resource's time."""
    availability = _availability(start_time, end_time, capacity, repeat_until, days, days_of_month)
    reservation = Reservation(
        type=ReservationType(reservation_type.upper()), availability=availability
    )
    call_api(
        lambda client: client.reservations.create(resource_id, reservation),
        _reservation("created"),
    )


@reservations.command("update")
@click.argument("reservation_id")
@click.argument("resource_id")
@_TYPE
@_availability_options
@json_option
def update_reservation(
    reservation_id: str,
    resource_id: str,
    reservation_type: str,
    start_time: datetime | None,
    end_time: datetime | None,
    capacity: int | None,
    repeat_until: datetime | None,
    days: str | None,
    days_of_month: str | None,
) -> None:
    """Change a reservation's type or time."""
    availability = _availability(start_time, end_time, capacity, repeat_until, days, days_of_month)
    reservation = Reservation(
        type=ReservationType(reservation_type.upper()), availability=availability
    )
    call_api(
        lambda client: client.reservations.update(reservation_id, resource_id, reservation),
        _reservation("updated"),
    )


@reservations.command("cancel")
@click.argument("reservation_id")
@json_option
def cancel_reservation(reservation_id: str) -> None:
    """Cancel a reservation."""
    call_api(
        lambda client: client.reservations.cancel(reservation_id),
        confirm(f"cancelled reservation {reservation_id}"),
    )


# --- capacity -------------------------------------------------------------------------


@click.group(cls=Group)
def capacity() -> None:
    """A resource's capacity over time."""


_CAPACITY_TYPES = click.option(
    "--type",
    "capacity_types",
    multiple=True,
    type=click.Choice([c.value for c in CapacityType], case_sensitive=False),
    help="Which figures (repeat for several; default: the API's).",
)


_WINDOW_START = click.option(
    "--start",
    "start_time",
    type=TIME,
    cls=Option,
    sdk_names=("start_date_time",),
    required=True,
    help="Window start.",
)
_WINDOW_END = click.option(
    "--end",
    "end_time",
    type=TIME,
    cls=Option,
    sdk_names=("end_date_time",),
    required=True,
    help="Window end.",
)


def _types(values: Sequence[str]) -> list[str] | None:
    return [v.upper() for v in values] or None


@capacity.command("range")
@click.argument("resource_id")
@_WINDOW_START
@_WINDOW_END
@_CAPACITY_TYPES
@json_option
def range_capacity(
    resource_id: str, start_time: datetime, end_time: datetime, capacity_types: Sequence[str]
) -> None:
    """Capacity in ranges of equal capacity, all pages."""

    def show(out: Output, pages: list[RangeSlotCapacity]) -> None:
        rows = [
            (c.capacity_type, s.start_date_time, s.end_date_time, s.capacity)
            for page in pages
            for c in page.capacities or ()
            for s in c.slots or ()
        ]
        out.table(f"Capacity of {resource_id}", ["type", "start", "end", "capacity"], rows)

    call_api(
        lambda client: collect(
            client.schedules.range_capacity(
                resource_id,
                start_time=start_time,
                end_time=end_time,
                capacity_types=_types(capacity_types),
            )
        ),
        json_or(show),
    )


@capacity.command("fixed")
@click.argument("resource_id")
@_WINDOW_START
@_WINDOW_END
@click.option("--slot-duration", type=int, help="Minutes per slot (5..360, a multiple of 5).")
@_CAPACITY_TYPES
@json_option
def fixed_capacity(
    resource_id: str,
    start_time: datetime,
    end_time: datetime,
    slot_duration: int | None,
    capacity_types: Sequence[str],
) -> None:
    """Capacity in fixed-length slots, all pages."""

    def show(out: Output, pages: list[FixedSlotCapacity]) -> None:
        rows = [
            (
                s.start_date_time,
                s.scheduled_capacity,
                s.available_capacity,
                s.encumbered_capacity,
                s.reserved_capacity,
            )
            for page in pages
            for s in page.capacities or ()
        ]
        duration = pages[0].slot_duration if pages else slot_duration
        out.table(
            f"Capacity of {resource_id}" + (f", {duration}-minute slots" if duration else ""),
            ["slot start", "scheduled", "available", "encumbered", "reserved"],
            rows,
        )

    call_api(
        lambda client: collect(
            client.schedules.fixed_capacity(
                resource_id,
                start_time=start_time,
                end_time=end_time,
                slot_duration=slot_duration,
                capacity_types=_types(capacity_types),
            )
        ),
        json_or(show),
    )
