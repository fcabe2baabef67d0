"""``spapi-services sync``: mirror service jobs into SQLite or JSON Lines, with a live bar."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from ..sync import DEFAULT_WINDOWS, JsonlSink, Sink, SqliteSink, SyncProgress, SyncReport, sync_jobs
from ._app import SetupError, json_option, open_client, run, settings
from ._output import Output, fmt_time
from ._times import TIME

__all__ = ["ProgressBar", "show_report", "sync"]

DEFAULT_DB = "service_jobs.sqlite"


class ProgressBar:
    """A rich progress bar fed by :func:`sync_jobs`'s ``on_progress``."""

    def __init__(self, console: Console, description: str = "Syncing jobs") -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("jobs · {task.fields[pages]} pages · {task.fields[windows]} windows"),
            TextColumn("· {task.fields[rate]:.1f} req/s"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._description = description
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        self._progress.start()
        self._task = self._progress.add_task(
            self._description, total=None, pages=0, windows="0/0", rate=0.0
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, p: SyncProgress) -> None:
        assert self._task is not None
        self._progress.update(
            self._task,
            completed=p.jobs,
            total=max(p.expected, p.jobs) or None,
            pages=p.pages,
            windows=f"{p.windows_done}/{p.windows}",
            rate=p.pages / p.elapsed if p.elapsed > 0 else 0.0,
        )


def show_report(out: Output, report: SyncReport, where: str) -> None:
    """The outcome of a sync, as a table (or JSON)."""
    if out.as_json:
        out.json(
            {
                "store": where,
                "pages": report.pages,
                "jobs": report.jobs,
                "requests": report.requests,
                "elapsed": round(report.elapsed, 3),
                "requestsPerSecond": round(report.requests_per_second, 2),
                "windows": report.windows,
                "resumed": report.resumed,
                "runs": [
                    {
                        "marketplaceId": r.scope,
                        "mode": r.mode,
                        "resumed": r.resumed,
                        "start": r.start,
                        "end": r.end,
                        "windows": r.windows,
                        "pages": r.pages,
                        "jobs": r.jobs,
                    }
                    for r in report.runs
                ],
            }
        )
        return
    out.table(
        f"Synced into {where}",
        ["marketplace", "mode", "from", "to (checkpoint)", "windows", "pages", "jobs"],
        [
            (
                r.scope,
                r.mode + (" (resumed)" if r.resumed else ""),
                fmt_time(r.start),
                fmt_time(r.end),
                r.windows,
                r.pages,
                r.jobs,
            )
            for r in report.runs
        ],
        caption=(
            f"{report.jobs} jobs in {report.pages} pages, {report.elapsed:.1f} s, "
            f"{report.requests_per_second:.1f} requests/s"
        ),
    )


@click.command()
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"SQLite file to mirror into (default: ./{DEFAULT_DB}).",
)
@click.option(
    "--jsonl",
    "jsonl_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append to a JSON Lines file instead (checkpoint kept beside it).",
)
@click.option(
    "--since",
    type=TIME,
    help="First run: jobs created since then (e.g. 30d, 2026-01-01).",
)
@click.option("--until", type=TIME, help="End of the range (default: now).")
@click.option(
    "--full",
    is_flag=True,
    help="Fetch everything created since --since again, ignoring the checkpoint.",
)
@click.option(
    "--windows",
    type=click.IntRange(1, 1000),
    default=DEFAULT_WINDOWS,
    show_default=True,
    help="Windows to cut large ranges into, shared among the marketplaces by size.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 1000),
    help="Pages fetched at once (default: --windows); needs ≥ latency × 10/s.",
)
@click.option(
    "--marketplace",
    "marketplaces",
    multiple=True,
    metavar="ID",
    help="Marketplace to sync (repeat for several; default: the global --marketplace).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def sync(
    db_path: Path | None,
    jsonl_path: Path | None,
    since: datetime | None,
    until: datetime | None,
    full: bool,
    windows: int,
    concurrency: int | None,
    marketplaces: Sequence[str],
    quiet: bool,
) -> None:
    """Mirror service jobs into a SQLite file (or JSON Lines), resumably.

    The first run fetches jobs created since --since; later runs fetch only jobs changed
    since the last complete run (less 5 minutes) and upsert them by id.  Stopped midway
    (Ctrl-C, a crash, a network failure), the next run carries on where it stopped,
    losing and repeating nothing.
    """
    if db_path is not None and jsonl_path is not None:
        raise click.UsageError("give --db or --jsonl, not both")
    sink: Sink
    if jsonl_path is not None:
        sink, where = JsonlSink(jsonl_path), str(jsonl_path)
    else:
        path = db_path or Path(DEFAULT_DB)
        sink, where = SqliteSink(path), str(path)
    opts = settings()
    out = opts.output
    scopes = list(marketplaces) or None
    if scopes is None and opts.marketplace is None:
        raise SetupError("give --marketplace ID (global or after `sync`), e.g. ATVPDKIKX0DER")

    async def main() -> SyncReport:
        async with open_client() as client:
            bar = None if quiet or out.as_json else ProgressBar(out.err)
            with bar or contextlib.nullcontext():
                return await sync_jobs(
                    client,
                    sink,
                    since=since,
                    until=until,
                    full=full,
                    windows=windows,
                    concurrency=concurrency,
                    marketplace_ids=scopes,
                    on_progress=bar,
                )

    report = run(main)
    show_report(out, report, where)
