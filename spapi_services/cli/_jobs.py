"""``jobs list|get|cancel|complete``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import attrs
import click
from rich.markup import escape

from ..models.enums import ServiceJobStatus
from ..models.jobs import ServiceJob
from ..resources.service_jobs import JobPaginator
from ._app import Group, call_api, confirm, json_option, json_or
from ._output import Output, plural
from ._times import TIME

__all__ = ["Found", "jobs", "jobs_table", "search_jobs", "show_job"]

_STATUSES = [s.value for s in ServiceJobStatus]


@click.group(cls=Group)
def jobs() -> None:
    """Service jobs: search, show, cancel, complete."""


@jobs.command("list")
@click.option("--created-after", "--since", "created_after", type=TIME, help="Created at or after.")
@click.option("--created-before", type=TIME, help="Created before.")
@click.option("--updated-after", "last_updated_after", type=TIME, help="Last updated at or after.")
@click.option("--updated-before", "last_updated_before", type=TIME, help="Last updated before.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(_STATUSES, case_sensitive=False),
    help="Only jobs in this status (repeat for several).",
)
@click.option("--store", "store_ids", multiple=True, metavar="ID", help="Only this store's jobs.")
@click.option("--asin", "asins", multiple=True, help="Only jobs for this service ASIN.")
@click.option(
    "--limit",
    "max_items",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Stop after this many jobs (0: all of them).",
)
@click.option("--desc", is_flag=True, help="Newest first.")
@json_option
def list_jobs(
    created_after: datetime | None,
    created_before: datetime | None,
    last_updated_after: datetime | None,
    last_updated_before: datetime | None,
    statuses: Sequence[str],
    store_ids: Sequence[str],
    asins: Sequence[str],
    max_items: int,
    desc: bool,
) -> None:
    """Search service jobs, following pages up to --limit.

    Give --created-after (alias --since) or --updated-after, e.g. --since 7d.
    """
    if created_after is None and last_updated_after is None:
        raise click.UsageError(
            "give --created-after (or --since) or --updated-after, e.g. --since 7d"
        )
    call_api(
        lambda client: search_jobs(
            client.service_jobs.list(
                created_after=created_after,
                created_before=created_before,
                last_updated_after=last_updated_after,
                last_updated_before=last_updated_before,
                statuses=[s.upper() for s in statuses] or None,
                store_ids=list(store_ids) or None,
                asins=list(asins) or None,
                sort_field="JOB_DATE",
                sort_order="DESC" if desc else "ASC",
            ),
            max_items or None,
        ),
        _show_search,
    )


@attrs.frozen
class Found:
    """The jobs a search showed, and what it knows of those it did not."""

    jobs: list[ServiceJob]
    total: int | None
    """The API's count of every match (``totalResultSize``), when it gives one."""
    seen: int
    """Jobs in the pages fetched, shown or not."""
    complete: bool
    """Whether every match is shown."""

    def counted(self, noun: str = "service job") -> str:
        """``28 service jobs``, or ``showing 5 of 28 service jobs`` when cut short."""
        if self.complete:
            return plural(len(self.jobs), noun)
        if self.total is not None and self.total >= self.seen:
            of = f"{self.total}"
        else:
            of = f"at least {self.seen}"
        return f"showing {len(self.jobs)} of {of} {noun}s"

    def hint(self) -> str | None:
        """How to see the rest, when some are not shown."""
        return None if self.complete else "--limit 0 shows them all"


async def search_jobs(paginator: JobPaginator, limit: int | None) -> Found:
    """Follow a search's pages until ``limit`` jobs (``None``: all of them)."""
    shown: list[ServiceJob] = []
    total: int | None = None
    seen = 0
    complete = True
    async for page in paginator.pages():
        if total is None:
            total = page.total_result_size
        jobs = page.jobs or ()
        seen += len(jobs)
        room = len(jobs) if limit is None else limit - len(shown)
        shown.extend(jobs[:room])
        if limit is not None and len(shown) >= limit:
            complete = room >= len(jobs) and paginator.next_page_token is None
            break
    return Found(shown, total, seen, complete)


def _show_search(out: Output, found: Found) -> None:
    hint = found.hint()
    if out.as_json:
        out.json(found.jobs)
        if hint:
            out.note_json(
                {
                    "note": "not every job is shown",
                    "shown": len(found.jobs),
                    "total": found.total,
                    "atLeast": found.seen,
                    "hint": hint,
                }
            )
        return
    jobs_table(out, found.jobs, title=found.counted())
    if hint:
        out.note(f"[dim]{escape(found.counted())}; {hint}.[/dim]")


def jobs_table(out: Output, found: Sequence[ServiceJob], *, title: str) -> None:
    """Jobs as table rows: no buyer details (a search covers one marketplace: the title's)."""
    markets = sorted({j.marketplace_id for j in found if j.marketplace_id})
    if markets:
        title += f" in {', '.join(markets)}"
    out.table(
        title,
        ["job id", "status", "created", "service", "appointment"],
        [
            (
                j.service_job_id,
                j.service_job_status,
                j.create_time,
                j.scope_of_work.title if j.scope_of_work else None,
                _active_appointment(j),
            )
            for j in found
        ],
    )


def _active_appointment(job: ServiceJob) -> datetime | None:
    """When the job's active appointment starts (``jobs get`` shows its id)."""
    for appointment in job.appointments or ():
        time = appointment.appointment_time
        if time is not None and str(appointment.appointment_status) == "ACTIVE":
            return time.start_time
    return None


@jobs.command("get")
@click.argument("service_job_id")
@json_option
def get_job(service_job_id: str) -> None:
    """Show one service job (buyer details only with --json)."""
    call_api(lambda client: client.service_jobs.get(service_job_id), json_or(show_job))


def show_job(out: Output, job: ServiceJob) -> None:
    """A job's main fields, then its appointments."""
    scope = job.scope_of_work
    location = job.service_location
    out.fields(
        f"Service job {job.service_job_id}",
        [
            ("status", job.service_job_status),
            ("created", job.create_time),
            ("marketplace", job.marketplace_id),
            ("store", job.store_id),
            ("service order", job.service_order_id),
            ("service", f"{scope.title} ({scope.asin})" if scope else None),
            ("skills", ", ".join(scope.required_skills or ()) if scope else None),
            ("location", location.service_location_type if location else None),
        ],
    )
    rows = []
    for a in job.appointments or ():
        time = a.appointment_time
        techs = ", ".join(t.technician_id or "?" for t in a.assigned_technicians or ())
        rows.append(
            (
                a.appointment_id,
                a.appointment_status,
                time.start_time if time else None,
                time.duration_in_minutes if time else None,
                techs or None,
                a.rescheduled_appointment_id,
            )
        )
    if rows:
        out.table(
            "Appointments",
            ["appointment id", "status", "start", "minutes", "technicians", "replaces"],
            rows,
        )


@jobs.command("cancel")
@click.argument("service_job_id")
@click.option(
    "--reason", "reason_code", required=True, help="Amazon's cancellation reason code (e.g. V1)."
)
@json_option
def cancel_job(service_job_id: str, reason_code: str) -> None:
    """Cancel a service job."""
    call_api(
        lambda client: client.service_jobs.cancel(service_job_id, reason_code=reason_code),
        confirm(f"cancelled service job {service_job_id}"),
    )


@jobs.command("complete")
@click.argument("service_job_id")
@json_option
def complete_job(service_job_id: str) -> None:
    """Mark a service job completed (record its fulfilment first)."""
    call_api(
        lambda client: client.service_jobs.complete(service_job_id),
        confirm(f"completed service job {service_job_id}"),
    )
