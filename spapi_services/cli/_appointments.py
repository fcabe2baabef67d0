"""``appointments add|reschedule|assign|slots`` and ``fulfillment set``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click

from ..models.appointments import AppointmentResult, AppointmentSlotReport, FulfillmentDocument
from ..models.common import Warning
from ._app import json_option, open_client, run, settings
from ._output import Output
from ._times import TIME

__all__ = ["appointments", "fulfillment"]


@click.group()
def appointments() -> None:
    """Book, move and staff appointments; find free slots."""


def _show_result(out: Output, result: AppointmentResult, verb: str, job_id: str) -> None:
    if out.as_json:
        out.json(result)
        return
    out.done(f"{verb} appointment {result.appointment_id} for job {job_id}")
    _show_warnings(out, result.warnings or ())


def _show_warnings(out: Output, warnings: Sequence[Warning]) -> None:
    for warning in warnings:
        out.note(f"[yellow]warning[/yellow] {warning.code}: {warning.message}")


@appointments.command("add")
@click.argument("service_job_id")
@click.option("--start", "start_time", type=TIME, required=True, help="When it starts (UTC).")
@click.option("--duration", type=click.IntRange(min=1), help="Minutes (default: the job's).")
@json_option
def add(service_job_id: str, start_time: datetime, duration: int | None) -> None:
    """Book an appointment for a job."""
    out = settings().output

    async def main() -> AppointmentResult:
        async with open_client() as client:
            return await client.appointments.add(
                service_job_id, start_time=start_time, duration_minutes=duration
            )

    _show_result(out, run(main), "booked", service_job_id)


@appointments.command("reschedule")
@click.argument("service_job_id")
@click.argument("appointment_id")
@click.option("--start", "start_time", type=TIME, required=True, help="The new start (UTC).")
@click.option("--reason", "reason_code", required=True, help="Reschedule reason code.")
@click.option("--duration", type=click.IntRange(min=1), help="Minutes.")
@json_option
def reschedule(
    service_job_id: str,
    appointment_id: str,
    start_time: datetime,
    reason_code: str,
    duration: int | None,
) -> None:
    """Move an appointment (the API gives it a new id)."""
    out = settings().output

    async def main() -> AppointmentResult:
        async with open_client() as client:
            return await client.appointments.reschedule(
                service_job_id,
                appointment_id,
                start_time=start_time,
                reason_code=reason_code,
                duration_minutes=duration,
            )

    _show_result(out, run(main), "rescheduled as", service_job_id)


@appointments.command("assign")
@click.argument("service_job_id")
@click.argument("appointment_id")
@click.argument("resource_ids", nargs=-1, required=True)
@json_option
def assign(service_job_id: str, appointment_id: str, resource_ids: Sequence[str]) -> None:
    """Put technicians (resource ids) on an appointment."""
    out = settings().output

    async def main() -> list[Warning]:
        async with open_client() as client:
            return await client.appointments.assign_resources(
                service_job_id, appointment_id, list(resource_ids)
            )

    warnings = run(main)
    if out.as_json:
        out.json({"warnings": warnings})
        return
    out.done(f"assigned {', '.join(resource_ids)} to appointment {appointment_id}")
    _show_warnings(out, warnings)


@appointments.command("slots")
@click.argument("service_job_id", required=False)
@click.option("--asin", help="Service ASIN (with --store, instead of a job id).")
@click.option("--store", "store_id", help="Store id (with --asin).")
@click.option("--start", "start_time", type=TIME, help="Window start (with --end; ≤ 90 days).")
@click.option("--end", "end_time", type=TIME, help="Window end.")
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
    out = settings().output

    async def main() -> AppointmentSlotReport:
        async with open_client() as client:
            if service_job_id is not None:
                return await client.appointments.slots_for_job(
                    service_job_id, start_time=start_time, end_time=end_time
                )
            assert asin is not None
            assert store_id is not None
            return await client.appointments.slots(
                asin=asin, store_id=store_id, start_time=start_time, end_time=end_time
            )

    report = run(main)
    if out.as_json:
        out.json(report)
        return
    found = report.appointment_slots or ()
    out.table(
        f"{len(found)} free slot{'s' if len(found) != 1 else ''}",
        ["start", "end", "capacity"],
        [(s.start_time, s.end_time, s.capacity) for s in found],
        caption=str(report.scheduling_type) if report.scheduling_type else None,
    )


@click.group()
def fulfillment() -> None:
    """Record how an appointment was fulfilled."""


@fulfillment.command("set")
@click.argument("service_job_id")
@click.argument("appointment_id")
@click.option("--start", "start_time", type=TIME, help="When the work started (with --end).")
@click.option("--end", "end_time", type=TIME, help="When the work ended.")
@click.option("--technician", "technicians", multiple=True, metavar="ID", help="Who did it.")
@click.option(
    "--document",
    "documents",
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
@click.option("--arrival-start", type=TIME, help="Estimated arrival window start.")
@click.option("--arrival-end", type=TIME, help="Estimated arrival window end.")
@json_option
def set_fulfillment(
    service_job_id: str,
    appointment_id: str,
    start_time: datetime | None,
    end_time: datetime | None,
    technicians: Sequence[str],
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
    cited = [_document(text) for text in documents]
    out = settings().output

    async def main() -> list[FulfillmentDocument]:
        async with open_client() as client:
            uploaded = [await client.documents.upload(path) for path in uploads]
            await client.appointments.set_fulfillment_data(
                service_job_id,
                appointment_id,
                fulfillment_time=(start_time, end_time) if start_time and end_time else None,
                resources=list(technicians) or None,
                documents=[*cited, *uploaded] or None,
                estimated_arrival_time=(
                    (arrival_start, arrival_end) if arrival_start and arrival_end else None
                ),
            )
            return uploaded

    uploaded = run(main)
    if out.as_json:
        out.json({"ok": True, "uploadedDocuments": uploaded})
        return
    for doc in uploaded:
        out.note(f"uploaded document {doc.upload_destination_id}")
    out.done(f"recorded fulfilment of appointment {appointment_id}")


def _document(text: str) -> FulfillmentDocument:
    upload_id, sep, digest = text.partition(":")
    if not sep or not upload_id or not digest:
        raise click.BadParameter(
            f"{text!r}: expected UPLOAD_ID:SHA256 (as printed by `documents upload`)",
            param_hint="--document",
        )
    return FulfillmentDocument(upload_destination_id=upload_id, content_sha256=digest)
