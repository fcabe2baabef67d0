"""``spapi-services sync``: mirror service jobs into SQLite or JSON Lines, with a live bar."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import attrs
import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from .._client import ServicesClient
from ..sync import (
    BUYER_DATA_CHOICES,
    DEFAULT_WINDOWS,
    BuyerData,
    BuyerKeyError,
    BuyerKeys,
    JsonlSink,
    SqliteSink,
    SyncProgress,
    SyncReport,
    sync_jobs,
)
from ..sync._files import warn_if_shared
from ..sync._sink import ThreadedSink
from ._app import Command, Option, call_api, json_option, run, settings
from ._output import Output, fmt_time, plural
from ._times import TIME

__all__ = [
    "BUYER_KEYS_ENV",
    "ProgressBar",
    "Target",
    "buyer_key_option",
    "read_buyer_keys",
    "show_report",
    "sync",
    "target_options",
]

DEFAULT_DB = "service_jobs.sqlite"
#: The buyer keys, as text (the first protects new data), when no key file is given.
BUYER_KEYS_ENV = "SPAPI_BUYER_KEYS"

F = TypeVar("F", bound=Callable[..., object])


class ProgressBar:
    """A rich progress bar fed by :func:`sync_jobs`'s ``on_progress``.

    It appears with the first stored page, so a sync refused before it fetched anything
    (an argument, the credentials, the network) shows its error and no bar.
    """

    def __init__(self, console: Console, description: str = "Syncing jobs") -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._description = description
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._progress.stop()

    def __call__(self, p: SyncProgress) -> None:
        if self._task is None:
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=None, counts="")
        total = max(p.expected, p.jobs)
        rate = p.pages / p.elapsed if p.elapsed > 0 else 0.0
        counts = (
            f"{p.jobs}/{plural(total, 'job')} · {plural(p.pages, 'page')} · "
            f"{p.windows_done}/{plural(p.windows, 'window')} · {rate:.1f} req/s"
        )
        self._progress.update(self._task, completed=p.jobs, total=total or None, counts=counts)


def show_report(out: Output, report: SyncReport, where: str) -> None:
    """The outcome of a sync, as a table (or JSON with --json)."""
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
                "checks": report.checks,
                "lookedBack": report.looked_back,
                "repeated": report.repeated,
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
        caption="\n".join(
            [
                f"{plural(report.jobs, 'job')} in {plural(report.pages, 'page')}, "
                f"{report.elapsed:.1f} s, {report.requests_per_second:.1f} requests/s",
                *_completeness(report),
            ]
        ),
    )


def _completeness(report: SyncReport) -> list[str]:
    """What the sync did to be sure no job was missed, in words; nothing when it did
    nothing extra (a window of one page needs no check)."""
    parts = []
    if report.checks:
        parts.append(
            f"{plural(report.checks, 'check')} that no job moved while its window was paged"
        )
    if report.looked_back:
        parts.append(f"{plural(report.looked_back, 'page')} looked back at for jobs that moved")
    if report.repeated:
        parts.append(
            f"{plural(report.repeated, 'page')} fetched again "
            "(jobs moved under the pages, or a page token expired)"
        )
    return [f"Of the requests: {'; '.join(parts)}."] if parts else []


def target_options(fn: F) -> F:
    """``--db`` and ``--jsonl``: which mirror a command works on."""
    fn = click.option(
        "--jsonl",
        "jsonl_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="A JSON Lines mirror instead (checkpoint kept beside it).",
    )(fn)
    return click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help=f"The SQLite mirror (default: ./{DEFAULT_DB}).",
    )(fn)


def buyer_key_option(fn: F) -> F:
    """``--buyer-key-file``: where the buyer keys are, if not in ``SPAPI_BUYER_KEYS``."""
    return click.option(
        "--buyer-key-file",
        "buyer_key_file",
        cls=Option,
        sdk_names=("buyer_key",),
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        envvar="SPAPI_BUYER_KEY_FILE",
        help=(
            f"File of buyer keys, one a line, the first protecting new data (default: "
            f"the keys in ${BUYER_KEYS_ENV}).  Make one with `mirror new-key --key-file`."
        ),
    )(fn)


def read_buyer_keys(key_file: Path | None) -> BuyerKeys | None:
    """The buyer keys from ``--buyer-key-file``, else ``SPAPI_BUYER_KEYS``, else none."""
    if key_file is not None:
        warn_if_shared(key_file, holds="the keys to buyers' data")
        source, text = str(key_file), key_file.read_text(encoding="utf-8")
    elif os.environ.get(BUYER_KEYS_ENV, "").strip():
        source, text = f"${BUYER_KEYS_ENV}", os.environ[BUYER_KEYS_ENV]
    else:
        return None
    try:
        return BuyerKeys.from_text(text)
    except BuyerKeyError as exc:
        rule = str(exc).partition(": ")[2] or str(exc)
        raise click.UsageError(f"{source}: {rule}") from None


def require_keys(buyer_data: str, keys: BuyerKeys | None) -> None:
    """Refuse a mode that needs a key when none is given, saying where to put one."""
    if buyer_data in ("encrypt", "hash") and keys is None:
        raise click.UsageError(
            f"--buyer-data {buyer_data} needs a key: set {BUYER_KEYS_ENV} or give "
            "--buyer-key-file PATH (make one with `spapi-services mirror new-key`)"
        )


@click.command(cls=Command)
@target_options
@click.option(
    "--since",
    type=TIME,
    help="First run: jobs created since then (e.g. 90d, 2026-01-01).",
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
    "marketplace_ids",
    multiple=True,
    metavar="ID",
    help="Marketplace to sync (repeat for several; default: the global --marketplace).",
)
@click.option(
    "--buyer-data",
    "buyer_data",
    type=click.Choice(BUYER_DATA_CHOICES),
    default="keep",
    show_default=True,
    envvar="SPAPI_BUYER_DATA",
    help="What to store of buyers' names, phones and addresses: as sent, encrypted or "
    "keyed hashes (both need a key), or nothing.",
)
@buyer_key_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def sync(
    jsonl_path: Path | None,
    db_path: Path | None,
    since: datetime | None,
    until: datetime | None,
    full: bool,
    windows: int,
    concurrency: int | None,
    marketplace_ids: Sequence[str],
    buyer_data: BuyerData,
    buyer_key_file: Path | None,
    quiet: bool,
) -> None:
    """Mirror service jobs into a SQLite file (or JSON Lines), resumably.

    The first run fetches jobs created since --since; later runs fetch only jobs changed
    since the last complete run (less 5 minutes) and upsert them by id.  Stopped midway
    (Ctrl-C, a crash, a network failure), the next run carries on where it stopped,
    losing and repeating nothing.  The files are readable by you only; --buyer-data
    encrypt, hash or drop keeps buyers' personal data out of them in clear.
    """
    target = Target.of(db_path, jsonl_path)
    keys = read_buyer_keys(buyer_key_file)
    require_keys(buyer_data, keys)
    if full and since is None:
        raise click.UsageError("--full fetches everything created since --since: give --since")
    opts = settings()
    scopes = list(marketplace_ids) or ([opts.marketplace] if opts.marketplace else [])
    if not scopes:
        raise click.UsageError(
            "give --marketplace ID (global or after `sync`, or SPAPI_MARKETPLACE_ID), "
            "e.g. ATVPDKIKX0DER"
        )
    if since is None:
        first = run(lambda: target.first_runs(scopes), opts)
        if first:
            raise click.UsageError(
                f"{target.where} holds nothing yet for {', '.join(first)}: give --since to say "
                "which jobs the first sync fetches (those created since then), "
                "e.g. --since 90d or --since 2026-01-01"
            )
    out = opts.output

    async def mirror(client: ServicesClient) -> SyncReport:
        bar = None if quiet or out.as_json else ProgressBar(out.err)
        with bar or contextlib.nullcontext():
            return await sync_jobs(
                client,
                target.sink(keys),
                since=since,
                until=until,
                full=full,
                windows=windows,
                concurrency=concurrency,
                marketplace_ids=list(marketplace_ids) or None,
                on_progress=bar,
                buyer_data=buyer_data,
            )

    call_api(mirror, lambda out, report: show_report(out, report, target.where))


@attrs.frozen
class Target:
    """Where the sync writes: a SQLite file (the default) or a JSON Lines file."""

    db_path: Path | None
    jsonl_path: Path | None

    @classmethod
    def of(cls, db_path: Path | None, jsonl_path: Path | None) -> Target:
        """The target of ``--db`` and ``--jsonl``, refusing both at once."""
        if db_path is not None and jsonl_path is not None:
            raise click.UsageError("give --db or --jsonl, not both")
        return cls(db_path, jsonl_path)

    @property
    def where(self) -> str:
        return str(self.jsonl_path or self.db_path or Path(DEFAULT_DB))

    @property
    def path(self) -> Path:
        return Path(self.where)

    def sink(self, keys: BuyerKeys | None = None) -> ThreadedSink:
        if self.jsonl_path is not None:
            return JsonlSink(self.jsonl_path, buyer_key=keys)
        return SqliteSink(self.db_path or Path(DEFAULT_DB), buyer_key=keys)

    async def first_runs(self, scopes: Sequence[str]) -> list[str]:
        """The marketplaces this store holds neither a checkpoint nor a run for."""
        sink = self.sink()
        state_file = sink.checkpoint_path if isinstance(sink, JsonlSink) else self.path
        if not state_file.exists():  # nothing to read, and nothing to create yet
            return list(scopes)
        async with sink:
            states = [await sink.state(scope) for scope in scopes]
        return [
            scope
            for scope, state in zip(scopes, states, strict=True)
            if state.checkpoint is None and state.plan is None
        ]
