"""``appointments add|reschedule|assign|slots`` and ``fulfillment set``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from .._client import ServicesClient
from ..models.appointments import AppointmentResult, AppointmentSlotReport, FulfillmentDocument
from ..models.common import Warning as ApiWarning
from ._app import Group, Option, Show, call_api, json_option, json_or
from ._output import Output, plural
from ._times import TIME

__all__ = ["appointments", "fulfillment"]

F = TypeVar("F", bound=Callable[..., Any])


def _start(help: str, *, required: bool = False) -> Callable[[F], F]:
    return click.option(
        "--start",
        "start_time",
        type=TIME,
        cls=Option,
        sdk_names=("start_date_time",),
        required=required,
        help=help,
    )


def _end(help: str) -> Callable[[F], F]:
    return click.option(
        "--end", "end_time", type=TIME, cls=Option, sdk_names=("end_date_time",), help=help
    )


_DURATION = click.option(
    "--duration",
    "duration_minutes",
    cls=Option,
    sdk_names=("duration_in_minutes",),
    type=click.IntRange(min=1),
    help="Minutes (default: the job's).",
)


@click.group(cls=Group)
def appointments() -> None:
    """Book, move and staff appointments; find free slots."""


def _result(verb: str, job_id: str) -> Show[AppointmentResult]:
    def show(out: Output, result: AppointmentResult) -> None:
        out.done(f"{verb} appointment {result.appointment_id} for job {job_id}")
        out.warnings(result.warnings)

    return json_or(show)


@appointments.command("add")
@click.argument("service_job_id")
@_start("When it starts.", required=True)
@_DURATION
@json_option
def add(service_job_id: str, start_time: datetime, duration_minutes: int | None) -> None:
    """Book an appointment for a job."""
    call_api(
        lambda client: client.appointments.add(
            service_job_id, start_time=start_time, duration_minutes=duration_minutes
        ),
        _result("booked", service_job_id),
    )


@appointments.command("reschedule")
@click.argument("service_job_id")
@click.argument("appointment_id")
@_start("The new start.", required=True)
@click.option(
    "--reason",
    "reason_code",
    cls=Option,
    sdk_names=("reschedule_reason_code",),
    required=True,
    help="Reschedule reason code (e.g. R1).",
)
@_DURATION
@json_option
def reschedule(
    service_job_id: str,
    appointment_id: str,
    start_time: datetime,
    reason_code: str,
    duration_minutes: int | None,
) -> None:
    """Move an appointment (the API gives it a new id)."""
    call_api(
        lambda client: client.appointments.reschedule(
            service_job_id,
            appointment_id,
            start_time=start_time,
            reason_code=reason_code,
            duration_minutes=duration_minutes,
        ),
        _result("rescheduled as", service_job_id),
    )


@appointments.command("assign")
@click.argument("service_job_id")
@click.argument("appointment_id")
@click.argument("resource_ids", nargs=-1, required=True)
@json_option
def assign(service_job_id: str, appointment_id: str, resource_ids: Sequence[str]) -> None:
    """Put technicians (resource ids) on an appointment, replacing any there.

    The API has no call that lists technicians: `spapi-services technicians JOB_ID` names
    those the store's jobs show could take the job.
    """

    def show(out: Output, warnings: list[ApiWarning]) -> None:
        if out.as_json:
            out.json({"warnings": warnings})
            return
        out.done(f"assigned {', '.join(resource_ids)} to appointment {appointment_id}")
        out.warnings(warnings)

    call_api(
        lambda client: client.appointments.assign_resources(
            service_job_id, appointment_id, list(resource_ids)
        ),
        show,
    )


@appointments.command("slots")
@click.argument("service_job_id", required=False)
@click.option("--asin", help="Service ASIN (with --store, instead of a job id).")
@click.option("--store", "store_id", help="Store id (with --asin).")
@_start("Window start (with --end; ≤ 90 days).")
@_end("Window end.")
@json_option
def slots(
    service_job_id: str | None,
    asin: str | None,
    store_id: str | None,
    start_time: datetime | None,
    end_time: datetime | None,
) -> None:
    """Free appointment slots for a job, or for an ASIN at a store."""
    if (service_job_id is None) == (asin is None and store_id is None):
        raise click.UsageError("give a SERVICE_JOB_ID, or --asin and --store (not both)")
    if service_job_id is None and (asin is None or store_id is None):
        raise click.UsageError("--asin and --store go together")

    async def find(client: ServicesClient) -> AppointmentSlotReport:
        if asin is not None and store_id is not None:
            return await client.appointments.slots(
                asin=asin, store_id=store_id, start_time=start_time, end_time=end_time
            )
        return await client.appointments.slots_for_job(
            str(service_job_id), start_time=start_time, end_time=end_time
        )

    def show(out: Output, report: AppointmentSlotReport) -> None:
        found = report.appointment_slots or ()
        out.table(
            plural(len(found), "free slot"),
            ["start", "end", "capacity"],
            [(s.start_time, s.end_time, s.capacity) for s in found],
            caption=str(report.scheduling_type) if report.scheduling_type else None,
        )

    call_api(find, json_or(show))


@click.group(cls=Group)
def fulfillment() -> None:
    """Record how an appointment was fulfilled."""


_VISIT = ("fulfillment_time",)
_ARRIVAL = ("estimated_arrival_time",)


@fulfillment.command("set")
@click.argument("service_job_id")
@click.argument("appointment_id")
@click.option(
    "--start",
    "start_time",
    type=TIME,
    cls=Option,
    sdk_names=_VISIT,
    help="When the work started (with --end).",
)
@click.option(
    "--end", "end_time", type=TIME, cls=Option, sdk_names=_VISIT, help="When the work ended."
)
@click.option(
    "--technician",
    "resources",
    cls=Option,
    sdk_names=("appointment_resources",),
    multiple=True,
    metavar="ID",
    help="Who did it.",
)
@click.option(
    "--document",
    "documents",
    cls=Option,
    sdk_names=("fulfillment_documents",),
    multiple=True,
    metavar="UPLOAD_ID:SHA256",
    help="An uploaded document to cite (from `documents upload`).",
)
@click.option(
    "--upload",
    "uploads",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Upload this file and cite it.",
)
@click.option(
    "--arrival-start",
    type=TIME,
    cls=Option,
    sdk_names=_ARRIVAL,
    help="Estimated arrival window start.",
)
@click.option(
    "--arrival-end", type=TIME, cls=Option, sdk_names=_ARRIVAL, help="Estimated arrival window end."
)
@json_option
def set_fulfillment(
    service_job_id: str,
    appointment_id: str,
    start_time: datetime | None,
    end_time: datetime | None,
    resources: Sequence[str],
    documents: Sequence[str],
    uploads: Sequence[Path],
    arrival_start: datetime | None,
    arrival_end: datetime | None,
) -> None:
    """Set fulfilment data: times, technicians, proof documents, arrival window."""
    if (start_time is None) != (end_time is None):
        raise click.UsageError("--start and --end go together")
    if (arrival_start is None) != (arrival_end is None):
        raise click.UsageError("--arrival-start and --arrival-end go together")
    if not (start_time or resources or documents or uploads or arrival_start):
        raise click.UsageError(
            "give at least one of --start/--end, --technician, --document, --upload "
            "or --arrival-start/--arrival-end"
        )
    cited = [_document(text) for text in documents]

    async def record(client: ServicesClient) -> list[FulfillmentDocument]:
        uploaded = [await client.documents.upload(path) for path in uploads]
        await client.appointments.set_fulfillment_data(
            service_job_id,
            appointment_id,
            fulfillment_time=(start_time, end_time) if start_time and end_time else None,
            resources=list(resources) or None,
            documents=[*cited, *uploaded] or None,
            estimated_arrival_time=(
                (arrival_start, arrival_end) if arrival_start and arrival_end else None
            ),
        )
        return uploaded

    def show(out: Output, uploaded: list[FulfillmentDocument]) -> None:
        if out.as_json:
            out.json({"ok": True, "uploadedDocuments": uploaded})
            return
        for doc in uploaded:
            out.say("uploaded a document; its upload destination id:")
            out.say(f"  {doc.upload_destination_id}")
        out.done(f"recorded fulfilment of appointment {appointment_id}")

    call_api(record, show)


def _document(text: str) -> FulfillmentDocument:
    upload_id, sep, digest = text.partition(":")
    if not sep or not upload_id or not digest:
        raise click.BadParameter(
            f"{text!r}: expected UPLOAD_ID:SHA256 (as printed by `documents upload`)",
            param_hint="--document",
        )
    return FulfillmentDocument(upload_destination_id=upload_id, content_sha256=digest)
