"""``spapi-services demo``: the whole tool against a local emulator, no credentials needed.

It starts the emulator in this process with a seeded world, the published usage plans
enforced and some latency on every answer, walks one service job through a provider's
day (find one waiting for an appointment, book it, staff it, upload proof, record
fulfilment, complete it), watches the change feed while a customer's new job arrives,
then mirrors every job of every marketplace into SQLite with a live progress bar and
ends with how close the sync came to the usage plan's bound, and how many 429s it drew.
"""

from __future__ import annotations

import asyncio
import sqlite3
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape

from .._client import ServicesClient
from ..models.appointments import AppointmentSlotReport
from ..models.jobs import Appointment, ServiceJob
from ..sync import DEFAULT_WINDOWS, SqliteSink, SyncReport, sync_jobs
from ._app import run
from ._jobs import jobs_table, search_jobs, show_job
from ._output import Output, fmt_time, plural
from ._sync import ProgressBar

if TYPE_CHECKING:
    from ..emulator import ServicesEmulator

__all__ = ["demo", "proof_png"]

_US = "ATVPDKIKX0DER"
_OP = "getServiceJobs"


def proof_png(width: int = 48, height: int = 32) -> bytes:
    """A small PNG made here, in memory: a green check mark on white, as proof of a visit."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    # The check mark: down from (0.2, 0.5) to (0.4, 0.8), then up to (0.8, 0.2).
    strokes = ((0.2, 0.5, 0.4, 0.8), (0.4, 0.8, 0.8, 0.2))
    raw = bytearray()
    for y in range(height):
        raw.append(0)  # no filter on this row
        for x in range(width):
            u, v = x / width, y / height
            ink = any(_near_segment(u, v, *stroke) for stroke in strokes)
            raw += bytes((40, 160, 60) if ink else (255, 255, 255))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(raw), 9))
        + chunk(b"IEND", b"")
    )


def _near_segment(u: float, v: float, x0: float, y0: float, x1: float, y1: float) -> bool:
    dx, dy = x1 - x0, y1 - y0
    t = max(0.0, min(1.0, ((u - x0) * dx + (v - y0) * dy) / (dx * dx + dy * dy)))
    return (u - x0 - t * dx) ** 2 + (v - y0 - t * dy) ** 2 < 0.06**2


def _latency(text: str) -> tuple[float, float]:
    """``"100"`` → (0.1, 0); ``"50-150"`` → (0.05, 0.1): base seconds and jitter.

    Milliseconds, read as the emulator's own ``--latency`` is (see
    :func:`spapi_services.emulator.__main__.parse_duration`); a number that looks like
    seconds is taken as seconds, with a note on stderr saying so.
    """
    from ..emulator.__main__ import parse_duration

    try:
        read = parse_duration(text, "--latency")
    except ValueError as exc:
        raise click.BadParameter(str(exc).partition(": ")[2], param_hint="--latency") from None
    if read.note:
        click.echo(f"note: {read.note}", err=True)
    return read.base, read.jitter


@click.command()
@click.option(
    "--jobs",
    type=click.IntRange(1, 100_000),
    default=3000,
    show_default=True,
    help="Service jobs to seed.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the emulated world.")
@click.option(
    "--latency",
    default="50-150",
    show_default=True,
    metavar="MS|MIN-MAX",
    help="Milliseconds each answer takes (a range draws per request), as the emulator's --latency.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file for the sync (default: a temporary one).",
)
@click.option(
    "--windows",
    type=click.IntRange(1, 1000),
    default=DEFAULT_WINDOWS,
    show_default=True,
    help="Sync windows in all (shared among the marketplaces by size).",
)
@click.option(
    "--rate-scale",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Multiply the usage plans' rates (1 = Amazon's published plans).",
)
def demo(
    jobs: int, seed: int, latency: str, db_path: Path | None, windows: int, rate_scale: float
) -> None:
    """Try everything against a local emulator: a job's workflow, then a bulk sync."""
    base, jitter = _latency(latency)
    out = Output(as_json=False)
    with _database(db_path) as path:
        run(lambda: _demo(out, jobs, seed, base, jitter, path, windows, rate_scale))


@contextmanager
def _database(db_path: Path | None) -> Iterator[Path]:
    if db_path is not None:
        yield db_path
        return
    with tempfile.TemporaryDirectory(prefix="spapi-demo-") as tmp:
        yield Path(tmp) / "service_jobs.sqlite"


async def _demo(
    out: Output,
    jobs: int,
    seed: int,
    base: float,
    jitter: float,
    db_path: Path,
    windows: int,
    rate_scale: float,
) -> None:
    from ..emulator import ServicesEmulator
    from ..emulator.catalog import MARKETPLACES

    console = out.out
    console.rule("[bold]spapi-services demo")
    started = time.monotonic()
    emu = ServicesEmulator(jobs=jobs, seed=seed, rate_scale=rate_scale)
    if base or jitter:
        emu.faults.set("*", latency=base, jitter=jitter)
        emu.faults.set("token", latency=base, jitter=jitter)
        emu.faults.set("upload", latency=base, jitter=jitter)
    async with emu:
        plan_rate, plan_burst = emu.limits.plan(_OP)
        out.say(
            f"Emulator on [cyan]{emu.url}[/cyan]: {len(emu.store.jobs):,} seeded jobs in "
            f"{len(MARKETPLACES)} marketplaces, {_ms(base, jitter)} per answer, Amazon's usage "
            f"plans enforced (getServiceJobs {plan_rate:g}/s, burst {plan_burst})."
        )
        async with ServicesClient(
            emu.credentials, endpoint=emu.url, token_url=emu.token_url, marketplace_id=_US
        ) as client:
            await _workflow(client, emu, console, out)
            await _new_job_arrives(client, emu, console, out)
            report = await _bulk_sync(
                client, console, out, db_path, [m.marketplace_id for m in MARKETPLACES], windows
            )
        _summary(console, out, emu, report, db_path, plan_rate, plan_burst)
    console.print(f"[dim]Demo finished in {time.monotonic() - started:.1f} s.[/dim]")


def _ms(base: float, jitter: float) -> str:
    if not jitter:
        return f"{base * 1000:.0f} ms"
    return f"{base * 1000:.0f}–{(base + jitter) * 1000:.0f} ms"


def _step(console: Console, number: int, title: str) -> None:
    console.print()
    console.rule(f"[bold]{number}. {title}", align="left")


async def _workflow(
    client: ServicesClient, emu: ServicesEmulator, console: Console, out: Output
) -> None:
    now = datetime.now(UTC)

    _step(console, 1, "Find a job waiting for an appointment")
    found = await search_jobs(
        client.service_jobs.list(
            created_after=now - timedelta(days=91), statuses=["PENDING_SCHEDULE"]
        ),
        5,
    )
    if not found.jobs:
        raise click.ClickException("the emulator has no job waiting for one; try another --seed")
    jobs_table(out, found.jobs, title=found.counted("job") + " waiting for an appointment")
    job = next((j for j in found.jobs if j.service_job_id), None)
    if job is None or job.service_job_id is None:
        raise click.ClickException("the API listed jobs without their ids")
    job_id = job.service_job_id
    out.say(f"Working on job [cyan]{escape(job_id)}[/cyan].")

    active = _active(job)  # none, for a job waiting: unless it was booked meanwhile
    moving = active is not None and active.appointment_id is not None
    _step(console, 2, "Move its appointment" if moving else "Book an appointment in a free slot")
    report = await client.appointments.slots_for_job(job_id)
    free = [s.start_time for s in report.appointment_slots or () if (s.capacity or 0) > 0]
    start, technician = await _free_technician(client, emu, job_id, report)
    out.say(
        f"{plural(len(free), 'free slot')} in the next week.  Taking {fmt_time(start)}, "
        f"when technician [cyan]{escape(technician)}[/cyan] is free: qualified (from the "
        "emulator's roster: the API has no call to list technicians) and, by "
        "getRangeSlotCapacity, neither booked nor reserved then."
    )
    if active is not None and active.appointment_id:
        result = await client.appointments.reschedule(
            job_id, active.appointment_id, start_time=start, reason_code="R1"
        )
        out.say(
            f"The job had appointment {escape(active.appointment_id)} already: moved it; the "
            "API gave the moved appointment the new id "
            f"[cyan]{escape(str(result.appointment_id))}[/cyan], without its technicians."
        )
    else:
        result = await client.appointments.add(job_id, start_time=start)
        out.say(f"Booked appointment [cyan]{escape(str(result.appointment_id))}[/cyan].")
    out.warnings(result.warnings)
    appointment_id = result.appointment_id
    if appointment_id is None:
        raise click.ClickException("the API booked the appointment but gave no appointment id")

    _step(console, 3, "Assign the technician")
    warnings = await client.appointments.assign_resources(job_id, appointment_id, [technician])
    out.say(f"Assigned [cyan]{escape(technician)}[/cyan] to the appointment.")
    out.warnings(warnings)

    _step(console, 4, "Upload proof of the visit")
    image = proof_png()
    document = await client.documents.upload(image, content_type="PNG")
    out.say(
        f"Made a {len(image)}-byte PNG in memory, encrypted it (AES-256-CBC) and uploaded it; "
        "its upload destination id:"
    )
    out.say(f"  [cyan]{escape(str(document.upload_destination_id))}[/cyan]")

    _step(console, 5, "Record the fulfilment")
    done_at = datetime.now(UTC).replace(microsecond=0)
    await client.appointments.set_fulfillment_data(
        job_id,
        appointment_id,
        fulfillment_time=(done_at - timedelta(minutes=75), done_at - timedelta(minutes=5)),
        resources=[technician],
        documents=[document],
    )
    out.say(
        "Recorded when the work was done, by whom, and the proof document.  (A pretend "
        "visit, said to have ended five minutes ago: the API takes a fulfilment time only "
        "once it has passed, and the SDK refuses a future one before sending it.)"
    )

    _step(console, 6, "Complete the job")
    await client.service_jobs.complete(job_id)
    show_job(out, await client.service_jobs.get(job_id))


#: Seconds between the demo feed's polls (the default, 5 s, is for real work).
_FEED_INTERVAL = 1.0
#: How long the demo waits for the new job to come through the feed before giving up.
_FEED_PATIENCE = 30.0


async def _new_job_arrives(
    client: ServicesClient, emu: ServicesEmulator, console: Console, out: Output
) -> None:
    """Watch the change feed while the emulator creates a job, and show it arrive."""
    from ..feed import ChangeKind

    _step(console, 7, "See a new job arrive")
    out.say(
        f"client.service_jobs.changes() polls getServiceJobs every {_FEED_INTERVAL:g} s for "
        "the jobs updated since it started and yields each new or changed one once.  "
        "Meanwhile a customer buys an installation: the emulator creates a job."
    )
    created: dict[str, float] = {}

    async def customer() -> None:
        await asyncio.sleep(_FEED_INTERVAL * 1.5)  # after the feed's first poll
        record = emu.store.new_job(marketplace_id=_US, status="PENDING_SCHEDULE")
        created[record.service_job_id] = time.monotonic()

    buying = asyncio.create_task(customer())
    try:
        async with asyncio.timeout(_FEED_PATIENCE):
            async for change in client.service_jobs.changes(interval=_FEED_INTERVAL):
                job = change.job
                job_id = job.service_job_id or ""
                if change.kind != ChangeKind.CREATED or job_id not in created:
                    continue
                waited = time.monotonic() - created[job_id]
                out.say(
                    f"New job [cyan]{escape(job_id)}[/cyan] ({job.service_job_status}) came "
                    f"through the feed {waited:.1f} s after it was created: the moment to "
                    "book its appointment."
                )
                break
    except TimeoutError:
        raise click.ClickException(
            f"the new job did not come through the feed within {_FEED_PATIENCE:g} s"
        ) from None
    finally:
        buying.cancel()
        await asyncio.gather(buying, return_exceptions=True)


async def _free_technician(
    client: ServicesClient, emu: ServicesEmulator, job_id: str, report: AppointmentSlotReport
) -> tuple[datetime, str]:
    """The first free slot that a qualified technician is free for, and that technician.

    Being on shift is not enough: a technician may be booked on another job then, or
    on a break, and assigning them would draw a RESOURCES_OVERBOOKED warning.  The
    API's available capacity of each technician says who is really free.
    """
    duration = timedelta(minutes=emu.store.jobs[job_id].duration)
    starts = [s.start_time for s in report.appointment_slots or () if (s.capacity or 0) > 0]
    if not starts or report.start_time is None or report.end_time is None:
        raise click.ClickException("no free slot for the job; try another --seed")
    qualified = [t.resource_id for t in emu.store.qualified_resources(job_id)]
    free_times = {
        tech: await _available(client, tech, report.start_time, report.end_time)
        for tech in qualified
    }
    for start in filter(None, starts):
        for tech in qualified:
            if any(s <= start and start + duration <= e for s, e in free_times[tech]):
                return start, tech
    raise click.ClickException("no free slot with a free technician; try another --seed")


async def _available(
    client: ServicesClient, resource_id: str, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The stretches of ``[start, end)`` when the resource can take one more job."""
    spans: list[tuple[datetime, datetime]] = []
    pages = client.schedules.range_capacity(
        resource_id, start_time=start, end_time=end, capacity_types=["AVAILABLE_CAPACITY"]
    )
    async for page in pages:
        for capacity in page.capacities or ():
            for slot in capacity.slots or ():
                s, e = slot.start_date_time, slot.end_date_time
                if s is None or e is None or (slot.capacity or 0) < 1:
                    continue
                if spans and spans[-1][1] == s:  # neighbours with different capacities
                    spans[-1] = (spans[-1][0], e)
                else:
                    spans.append((s, e))
    return spans


def _active(job: ServiceJob) -> Appointment | None:
    for appointment in job.appointments or ():
        if str(appointment.appointment_status) == "ACTIVE":
            return appointment
    return None


async def _bulk_sync(
    client: ServicesClient,
    console: Console,
    out: Output,
    db_path: Path,
    marketplaces: list[str],
    windows: int,
) -> SyncReport:
    _step(console, 8, "Mirror every job into SQLite")
    out.say(
        f"{len(marketplaces)} marketplaces, their time ranges cut into "
        f"{plural(windows, 'window')} by size, {plural(windows, 'page')} in flight, "
        f"all paced by the client's getServiceJobs bucket → [cyan]{escape(str(db_path))}[/cyan]"
    )
    since = datetime.now(UTC) - timedelta(days=91)
    with ProgressBar(out.out, "Syncing") as bar:
        return await sync_jobs(
            client,
            SqliteSink(db_path),
            since=since,
            windows=windows,
            marketplace_ids=marketplaces,
            on_progress=bar,
        )


def _summary(
    console: Console,
    out: Output,
    emu: ServicesEmulator,
    report: SyncReport,
    db_path: Path,
    plan_rate: float,
    plan_burst: int,
) -> None:
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT count(*) FROM service_jobs").fetchone()[0]
    finally:
        db.close()
    bound = max(0.0, (report.requests - plan_burst) / plan_rate)
    throttled = emu.count(_OP, 429)
    throttled_all = emu.count(status=429)
    _step(console, 9, "Summary")
    out.fields(
        None,
        [
            ("jobs in the emulator", f"{len(emu.store.jobs):,}"),
            ("rows in SQLite", f"{rows:,}"),
            ("pages stored", report.pages),
            (
                "getServiceJobs requests",
                f"{report.requests} (pages, plus the sizing of large ranges)",
            ),
            ("sync time", f"{report.elapsed:.2f} s"),
            (
                "fastest the plan allows",
                f"{bound:.2f} s  ((requests − burst {plan_burst}) / {plan_rate:g} per s)",
            ),
            ("sync time / that bound", f"{report.elapsed / bound:.2f}×" if bound else "-"),
            (
                "achieved rate",
                f"{report.requests_per_second:.2f} requests/s "
                f"(plan: {plan_rate:g}/s sustained, burst {plan_burst})",
            ),
            ("429s drawn by the sync", throttled),
            ("429s drawn in the whole demo", throttled_all),
            ("requests served by the emulator", emu.count()),
        ],
    )
    if rows != len(emu.store.jobs):
        console.print(f"[red]Expected {len(emu.store.jobs)} rows, found {rows}.[/red]")
