"""``spapi-services watch``: print new and changed service jobs as they happen.

A line per change (time seen, kind, job id, status, marketplace), or with ``--json`` one
JSON object per line with the job in the API's shape.  ``--resume-file`` keeps where the
feed stands: written after every change (and at the end), atomically, owner-only from
the moment it exists; a later ``watch`` with the same file goes on from there, missing
and repeating nothing.  Ctrl-C stops it with the resume point saved.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from datetime import datetime
from pathlib import Path

import click
from rich.markup import escape

from .. import _serde
from .._client import ServicesClient
from ..feed import DEFAULT_INTERVAL, JobFeed
from ..models.feed import JobChange
from ._app import Command, Option, call_api, json_option, settings
from ._failures import EXIT_USAGE, Failure
from ._output import Output, fmt_instant
from ._times import TIME

__all__ = ["read_resume_file", "save_resume_file", "watch"]


def read_resume_file(path: Path) -> str | None:
    """The resume token a file holds, or ``None`` when there is no file yet."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise Failure(
            f"--resume-file: cannot read {path}: {exc}", kind="setup", exit_code=EXIT_USAGE
        ) from None
    return text or None


def save_resume_file(path: Path, token: str) -> None:
    """Replace the file with ``token`` at once: a crash leaves the old one or the new one.

    The new file is created owner-only (0600) before anything is written to it.
    """
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:  # mkstemp makes it 0600
            handle.write(token + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _show(out: Output, change: JobChange) -> None:
    if out.as_json:
        out.json(change.to_json())
        return
    job = change.job
    out.say(
        f"{escape(fmt_instant(change.seen_at))}  {escape(change.kind.value):<8} "
        f"{escape(job.service_job_id or '-')}  {escape(str(job.service_job_status or '-'))}  "
        f"{escape(job.marketplace_id or '-')}"
    )


def _say_watching(
    out: Output, feed: JobFeed, since: datetime, resume_file: Path | None, resumed: bool
) -> None:
    """One line on stderr that the watch has begun, what it watches and from when (a JSON
    note with --json): stdout carries only changes."""
    markets = ", ".join(feed.marketplace_ids)
    if out.as_json:
        note: dict[str, object] = {
            "note": "watching",
            "marketplace_ids": list(feed.marketplace_ids),
            "since": None if resumed else _serde.format_datetime(since),
        }
        if resumed:
            note["resume_file"] = str(resume_file)
        out.note_json(note)
        return
    start = f"where {resume_file} left off" if resumed else fmt_instant(since)
    out.note(
        f"[dim]watching {escape(markets)} for changes since {escape(start)}; Ctrl-C stops[/dim]"
    )


@click.command(cls=Command)
@click.option(
    "--since",
    type=TIME,
    help="Start from the jobs updated at or after this time (default: now).",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 86_400),
    default=DEFAULT_INTERVAL,
    show_default=True,
    help="Seconds between polls (the default spends 2% of the usage plan).",
)
@click.option(
    "--marketplace",
    "marketplace_ids",
    cls=Option,
    multiple=True,
    metavar="ID",
    help="A marketplace to watch (repeat for several; default: the global --marketplace).",
)
@click.option(
    "--resume-file",
    "resume_file",
    cls=Option,
    sdk_names=("resume_token",),
    type=click.Path(dir_okay=False, path_type=Path),
    help="Go on from where the last watch with this file stopped, and keep it up to date "
    "(written after each change, owner-only).",
)
@json_option
def watch(
    since: datetime | None,
    interval: float,
    marketplace_ids: tuple[str, ...],
    resume_file: Path | None,
) -> None:
    """Print new and changed service jobs as they happen, until Ctrl-C.

    One line a change: when it was seen, created or updated, the job id, its status
    and marketplace; with --json, one JSON object a change.  A job changed once is
    printed once.
    """
    opts = settings()
    out = opts.output
    token = read_resume_file(resume_file) if resume_file is not None else None
    if token is not None and since is not None:
        out.note(f"[dim]--since is not used: going on from {escape(str(resume_file))}[/dim]")
        since = None
    saved: list[JobFeed] = []

    async def follow(client: ServicesClient) -> None:
        feed = client.service_jobs.changes(
            since=since,
            resume_token=token,
            marketplace_ids=marketplace_ids or None,
            interval=interval,
        )
        saved.append(feed)
        start = since if since is not None else client._utcnow()
        _say_watching(out, feed, start, resume_file, token is not None)
        async with feed:
            async for change in feed:
                _show(out, change)
                if resume_file is not None:
                    save_resume_file(resume_file, change.resume_token)

    try:
        call_api(follow, lambda _out, _result: None)
    except Failure as failure:
        if failure.kind != "interrupted":
            raise
        if resume_file is not None and saved:
            save_resume_file(resume_file, saved[0].resume_token)
            out.note(f"[dim]Stopped; the resume point is in {escape(str(resume_file))}.[/dim]")
        else:
            out.note("[dim]Stopped.[/dim]")
