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
from ..errors import ResponseDecodeError
from ..models.appointments import FulfillmentDocument
from ..models.common import Error, Warning
from ..models.enums import CapacityType, ContentType, DayOfWeek, ReservationType
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
from ._app import json_option, open_client, run, settings
from ._output import Output
from ._times import TIME

__all__ = ["capacity", "documents", "reservations", "schedules"]

F = TypeVar("F", bound=Callable[..., Any])

_DAYS = {d.value[:3]: d for d in DayOfWeek}


# --- documents ------------------------------------------------------------------------


@click.group()
def documents() -> None:
    """Fulfilment documents (proof of appointment)."""


@documents.command("upload")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--content-type",
    type=click.Choice([c.value for c in ContentType], case_sensitive=False),
    help="File type (default: from the suffix or the first bytes).",
)
@click.option("--no-encrypt", is_flag=True, help="Send the bytes unencrypted (not for normal use).")
@json_option
def upload(file: Path, content_type: str | None, no_encrypt: bool) -> None:
    """Upload a document; prints the UPLOAD_ID:SHA256 to cite in `fulfillment set`."""
    out = settings().output

    async def main() -> FulfillmentDocument:
        async with open_client() as client:
            return await client.documents.upload(
                file,
                content_type=content_type.upper() if content_type else None,
                encrypt=not no_encrypt,
            )

    doc = run(main)
    if out.as_json:
        out.json(doc)
        return
    out.fields(
        f"Uploaded {file.name}",
        [
            ("upload destination id", doc.upload_destination_id),
            ("content SHA-256", doc.content_sha256),
            ("cite with", f"--document {doc.upload_destination_id}:{doc.content_sha256}"),
        ],
    )


# --- availability options shared by schedules and reservations -----------------------


def _availability_options(fn: F) -> F:
    for option in reversed(
        [
            click.option("--start", "start_time", type=TIME, help="Start of the time (UTC)."),
            click.option("--end", "end_time", type=TIME, help="End of the time (UTC)."),
            click.option("--capacity", type=click.IntRange(min=1), help="Jobs at once."),
            click.option(
                "--repeat-until", type=TIME, help="Repeat daily until this time (a recurrence)."
            ),
            click.option(
                "--days",
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


def _notes(out: Output, warnings: Sequence[Warning] | None, errors: Sequence[Error] | None) -> None:
    for warning in warnings or ():
        out.note(f"[yellow]warning {warning.code}[/yellow]: {warning.message}")
    for error in errors or ():
        out.note(f"[red]error {error.code}[/red]: {error.message}")


# --- schedules ------------------------------------------------------------------------


@click.group()
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
    out = settings().output

    async def main() -> list[UpdateScheduleRecord]:
        async with open_client() as client:
            return await client.schedules.update(resource_id, records)

    notes = run(main)
    if out.as_json:
        out.json({"ok": True, "records": notes})
        return
    out.done(
        f"schedule of {resource_id} set ({len(records)} record{'s' if len(records) != 1 else ''})"
    )
    for note in notes:
        _notes(out, note.warnings, note.errors)


# --- reservations ---------------------------------------------------------------------


@click.group()
def reservations() -> None:
    """Reserve a resource's time; change or cancel reservations."""


_TYPE = click.option(
    "--type",
    "reservation_type",
    type=click.Choice([t.value for t in ReservationType], case_sensitive=False),
    required=True,
    help="Why the time is reserved.",
)


def _show_reservation(
    out: Output, record: CreateReservationRecord | UpdateReservationRecord, verb: str
) -> None:
    if out.as_json:
        out.json(record)
        return
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
    _notes(out, record.warnings, record.errors)


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
    out = settings().output

    async def main() -> CreateReservationRecord:
        async with open_client() as client:
            return await client.reservations.create(resource_id, reservation)

    _show_reservation(out, run(main), "created")


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
    out = settings().output

    async def main() -> UpdateReservationRecord:
        async with open_client() as client:
            return await client.reservations.update(reservation_id, resource_id, reservation)

    _show_reservation(out, run(main), "updated")


@reservations.command("cancel")
@click.argument("reservation_id")
@json_option
def cancel_reservation(reservation_id: str) -> None:
    """Cancel a reservation."""
    out = settings().output

    async def main() -> None:
        async with open_client() as client:
            await client.reservations.cancel(reservation_id)

    run(main)
    out.done(f"cancelled reservation {reservation_id}")


# --- capacity -------------------------------------------------------------------------


@click.group()
def capacity() -> None:
    """A resource's capacity over time."""


_CAPACITY_TYPES = click.option(
    "--type",
    "capacity_types",
    multiple=True,
    type=click.Choice([c.value for c in CapacityType], case_sensitive=False),
    help="Which figures (repeat for several; default: the API's).",
)


def _types(values: Sequence[str]) -> list[str] | None:
    return [v.upper() for v in values] or None


@capacity.command("range")
@click.argument("resource_id")
@click.option("--start", "start_time", type=TIME, required=True, help="Window start.")
@click.option("--end", "end_time", type=TIME, required=True, help="Window end.")
@_CAPACITY_TYPES
@json_option
def range_capacity(
    resource_id: str, start_time: datetime, end_time: datetime, capacity_types: Sequence[str]
) -> None:
    """Capacity in ranges of equal capacity, all pages."""
    out = settings().output

    async def main() -> list[RangeSlotCapacity]:
        async with open_client() as client:
            pages = client.schedules.range_capacity(
                resource_id,
                start_time=start_time,
                end_time=end_time,
                capacity_types=_types(capacity_types),
            )
            return [page async for page in pages]

    pages = run(main)
    if out.as_json:
        out.json(pages)
        return
    rows = [
        (c.capacity_type, s.start_date_time, s.end_date_time, s.capacity)
        for page in pages
        for c in page.capacities or ()
        for s in c.slots or ()
    ]
    out.table(f"Capacity of {resource_id}", ["type", "start", "end", "capacity"], rows)


@capacity.command("fixed")
@click.argument("resource_id")
@click.option("--start", "start_time", type=TIME, required=True, help="Window start.")
@click.option("--end", "end_time", type=TIME, required=True, help="Window end.")
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
    out = settings().output

    async def main() -> list[FixedSlotCapacity]:
        async with open_client() as client:
            pages = client.schedules.fixed_capacity(
                resource_id,
                start_time=start_time,
                end_time=end_time,
                slot_duration=slot_duration,
                capacity_types=_types(capacity_types),
            )
            return [page async for page in pages]

    pages = run(main)
    if out.as_json:
        out.json(pages)
        return
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
