"""``spapi-services technicians``: the technicians a store's jobs name, and who of them
could take a job.

The API has no call that lists technicians (resources): their ids come from the
provider's own records.  What it does show is who was assigned to each appointment, so
a store's jobs name its technicians, and the skills those jobs needed say what each has
done.  For a job, the technicians who served the store's jobs that needed all of its
skills, at the same kind of location, are the ones likely to be accepted; Amazon still
decides (``RESOURCES_MISSING_REQUIRED_SKILLS``...).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import attrs
import click
from rich.markup import escape

from .._client import ServicesClient
from ..models.jobs import ServiceJob
from ._app import Command, call_api, json_option
from ._output import Output, plural
from ._times import TIME

__all__ = ["Seen", "seen_technicians", "technicians"]

#: How many of a store's jobs are read at most.
_MAX_JOBS = 1000


@attrs.define
class Seen:
    """A technician as a store's jobs show them."""

    technician_id: str
    name: str | None = None
    jobs: set[str] = attrs.Factory(set)
    skills: set[str] = attrs.Factory(set)
    last_visit: datetime | None = None


@attrs.frozen
class Roster:
    """What a search of a store's jobs found."""

    store_id: str
    jobs_read: int
    technicians: list[Seen]
    job: ServiceJob | None = None
    required_skills: tuple[str, ...] = ()


def _skills(job: ServiceJob) -> set[str]:
    scope = job.scope_of_work
    return set(scope.required_skills or ()) if scope else set()


def _location(job: ServiceJob) -> str | None:
    place = job.service_location
    return str(place.service_location_type) if place and place.service_location_type else None


def seen_technicians(jobs: Sequence[ServiceJob], like: ServiceJob | None = None) -> list[Seen]:
    """Every technician assigned to ``jobs``' appointments, most jobs first; with
    ``like``, only on the jobs that needed all of its skills at its kind of location."""
    found: dict[str, Seen] = {}
    for job in jobs:
        if like is not None and not (
            _skills(like) <= _skills(job) and _location(like) == _location(job)
        ):
            continue
        for appointment in job.appointments or ():
            start = (
                appointment.appointment_time.start_time if appointment.appointment_time else None
            )
            for tech in appointment.assigned_technicians or ():
                if not tech.technician_id:
                    continue
                seen = found.setdefault(tech.technician_id, Seen(tech.technician_id))
                seen.name = seen.name or tech.name
                seen.jobs.add(job.service_job_id or "")
                seen.skills |= _skills(job)
                if start is not None and (seen.last_visit is None or start > seen.last_visit):
                    seen.last_visit = start
    return sorted(found.values(), key=lambda s: (-len(s.jobs), s.technician_id))


@click.command(cls=Command)
@click.argument("service_job_id", required=False)
@click.option("--store", "store_id", metavar="ID", help="A store's technicians (no job needed).")
@click.option(
    "--since",
    type=TIME,
    help="Read the store's jobs created since then (default: 90 days ago).",
)
@json_option
def technicians(service_job_id: str | None, store_id: str | None, since: datetime | None) -> None:
    """Technicians (resource ids) who could take a job, or a store's technicians.

    The API has no call that lists them, so they are read off the store's jobs: who was
    assigned to the jobs that needed all of the job's skills, at the same kind of place.
    Amazon still judges each assignment (skills, schedule, background check).  Against
    the emulator, `spapi-services emulator` also prints them when it starts.
    """
    if (service_job_id is None) == (store_id is None):
        raise click.UsageError("give a SERVICE_JOB_ID, or --store ID (not both)")
    after = since or datetime.now(UTC) - timedelta(days=90)

    async def search(client: ServicesClient) -> Roster:
        job = await client.service_jobs.get(service_job_id) if service_job_id else None
        store = store_id or (job.store_id if job else None)
        if not store:
            raise click.ClickException(f"job {service_job_id} names no store")
        jobs = [
            found
            async for found in client.service_jobs.list(
                created_after=after, store_ids=[store], max_items=_MAX_JOBS
            )
        ]
        skills = tuple(sorted(_skills(job))) if job else ()
        return Roster(store, len(jobs), seen_technicians(jobs, job), job, skills)

    call_api(search, _show)


def _show(out: Output, roster: Roster) -> None:
    if out.as_json:
        out.json(
            {
                "storeId": roster.store_id,
                "serviceJobId": roster.job.service_job_id if roster.job else None,
                "requiredSkills": list(roster.required_skills),
                "jobsRead": roster.jobs_read,
                "technicians": [
                    {
                        "technicianId": s.technician_id,
                        "name": s.name,
                        "jobs": len(s.jobs),
                        "skills": sorted(s.skills),
                        "lastVisit": s.last_visit,
                    }
                    for s in roster.technicians
                ],
            }
        )
        return
    which = (
        f"who served its jobs needing {', '.join(roster.required_skills) or 'no skill'}"
        if roster.job
        else "seen on its jobs"
    )
    out.table(
        f"{plural(len(roster.technicians), 'technician')} of store {roster.store_id} {which}",
        ["technician id", "name", "jobs", "last visit", "skills seen"],
        [
            (s.technician_id, s.name, len(s.jobs), s.last_visit, ", ".join(sorted(s.skills)))
            for s in roster.technicians
        ],
        caption=f"from {plural(roster.jobs_read, 'job')} of the store",
    )
    if roster.job and roster.technicians:
        job_id = roster.job.service_job_id
        first = roster.technicians[0].technician_id
        out.note(
            f"[dim]Book the job and assign one: spapi-services appointments assign "
            f"{escape(str(job_id))} APPOINTMENT_ID {escape(first)}[/dim]"
        )
    elif not roster.technicians:
        out.note(
            "[dim]No technician was assigned to a job like it there yet: their ids come "
            "from your own records.[/dim]"
        )
