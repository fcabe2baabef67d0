"""A sync of 10,000 jobs while jobs change under it, with keyset and with offset page tokens.

The emulator seeds 10,000 jobs across its five marketplaces and keeps its world moving
(``Activity``: new jobs and status moves, in real time) while ``sync_jobs`` mirrors it
into SQLite with its defaults (8 windows).  Two runs for each kind of page token:

* ``first sync``: every job created in the last 91 days (windows by creation time);
* ``catch-up``: a mirror 91 days behind (an empty one whose checkpoint is 91 days old,
  so no job of it hides what the run misses), so the run goes by last update over every
  job: the case where a job updated mid-run leaves the range and, with offset tokens,
  shifts every later page of its window.

After each run the mirror is compared with the emulator's store: a job *missed* is one
the run should hold (created in its range, and not changed since the run began) but
does not; a *stale* one is held in another state than the store's.  The extra requests
are the checks (a window's first page again after its last: the fixed price), the
look-backs (the page before one whose result set had shrunk: about one per change seen
mid-pass) and the pages of passes started again (a window that changed after its last
page); the target is checks within 5 % of a run's requests, and no job missed or stale.

The world moves with the requests, not with the machine's speed: the emulator runs on a
fake clock that every getServiceJobs request served moves on by a tenth of a second
(the spacing of Amazon's plan, ten a second), and its activity is timed on that clock.
So a rate of change is a number of changes per request, the same on any machine, and
reads as changes a second at the real plan; no usage plan is enforced (the sync's
pacing is measured elsewhere, ``bench_sync.py``).

``python benchmarks/bench_page_tokens.py [--quick] [--json]``; :func:`run` returns the
figures and :func:`markdown` renders them.  Run from a copy of the repository whose
``spapi_services/sync/_engine.py`` is an older one, it measures that engine (the report
of an engine without checks counts none).  Timing never runs as a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _guard

_guard.install()

from spapi_services import RetryPolicy, ServicesClient, _serde  # noqa: E402
from spapi_services.emulator import Activity, FakeClock, ServicesEmulator  # noqa: E402
from spapi_services.emulator.catalog import MARKETPLACES  # noqa: E402
from spapi_services.emulator.introspection import RequestRecord  # noqa: E402
from spapi_services.models.jobs import ServiceJob  # noqa: E402
from spapi_services.sync import SqliteSink, SyncReport, sync_jobs  # noqa: E402
from spapi_services.sync._plan import format_time  # noqa: E402

NOW = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(days=91)
ALL = [m.marketplace_id for m in MARKETPLACES]
#: Seconds of the emulator's clock per getServiceJobs request: Amazon's plan, 10 a second.
STEP = 0.1
#: New jobs and status moves a minute of the emulator's clock: a busy day for a seller
#: with 10,000 jobs in 90 days (about a thousand changes a day: one or two in a run), a
#: hectic one (a change a second: 86,000 a day) and a storm (ten a second).
CHURN = {"day": (0.1, 0.6), "hectic": (6.0, 54.0), "storm": (60.0, 540.0)}


def _wire(record: Any) -> dict[str, Any]:
    job = _serde.structure(record.to_wire(), ServiceJob)
    data: dict[str, Any] = json.loads(_serde.dumps(_serde.unstructure(job)))
    return data


def _mirror(path: Path) -> dict[str, dict[str, Any]]:
    with closing(sqlite3.connect(path)) as db:
        return {
            r[0]: json.loads(r[1])
            for r in db.execute("SELECT service_job_id, job FROM service_jobs")
        }


def compare(
    emu: ServicesEmulator, path: Path, *, end: datetime, began: datetime, created_only: bool
) -> tuple[int, int]:
    """Jobs missed and stale: every job created by ``end`` (and, for a run by creation,
    since :data:`SINCE`) that has not changed since ``began`` must be there as it is."""
    emu.run_activity()
    mirror = _mirror(path)
    missed = stale = 0
    for seller in emu.sellers:
        for job in seller.store.jobs.values():
            if job.created > end or (created_only and job.created < SINCE):
                continue
            stored = mirror.get(job.service_job_id)
            if job.last_updated > began:
                # Changed during the run: by creation it must be there in some state.
                missed += created_only and stored is None
                continue
            if stored is None:
                missed += 1
            elif stored != _wire(job):
                stale += 1
    return missed, stale


def changes(emu: ServicesEmulator) -> int:
    activity = emu.sellers[0].activity
    return 0 if activity is None else activity.created + activity.updated


async def one_run(
    emu: ServicesEmulator, client: ServicesClient, path: Path, **options: Any
) -> tuple[SyncReport, dict[str, Any]]:
    emu.run_activity()
    before = changes(emu)
    began = emu.clock.now()
    report = await sync_jobs(client, SqliteSink(path), until=began, marketplace_ids=ALL, **options)
    end = report.runs[0].end
    missed, stale = compare(emu, path, end=end, began=began, created_only="since" in options)
    checks = getattr(report, "checks", 0)
    looked_back = getattr(report, "looked_back", 0)
    repeated = getattr(report, "repeated", 0)
    return report, {
        "elapsed": report.elapsed,
        "requests": report.requests,
        "pages": report.pages,
        "jobs": report.jobs,
        "windows": report.windows,
        "checks": checks,
        "looked_back": looked_back,
        "repeated": repeated,
        "checks_share": checks / report.requests,
        "extra_share": (checks + looked_back + repeated) / report.requests,
        "changes": changes(emu) - before,
        "missed": missed,
        "stale": stale,
        "throttled": emu.count("getServiceJobs", 429),
    }


def moving_with_requests(emu: ServicesEmulator, clock: FakeClock) -> None:
    """Move ``clock`` on by :data:`STEP` for every getServiceJobs request served."""
    record = emu.traffic.record

    def advancing(entry: RequestRecord) -> None:
        record(entry)
        if entry.operation == "getServiceJobs":
            clock.advance(STEP)

    emu.traffic.record = advancing  # type: ignore[method-assign]


async def one_kind(paging: str, churn: str, jobs: int, folder: Path) -> dict[str, Any]:
    """Both runs with one kind of page token at one rate of change."""
    created, updated = CHURN[churn]
    clock = FakeClock(NOW)
    async with (
        ServicesEmulator(
            jobs=jobs,
            seed=7,
            clock=clock,
            enforce_limits=False,
            page_tokens=paging,
            activity=Activity(created_per_minute=created, updated_per_minute=updated),
            request_log_size=10,
        ) as emu,
        ServicesClient(
            emu.credentials,
            endpoint=emu.url,
            token_url=emu.token_url,
            marketplace_id=ALL[0],
            rate_limits=False,
            retry=RetryPolicy(max_retries=0),
        ) as client,
    ):
        moving_with_requests(emu, clock)
        _, first = await one_run(emu, client, folder / f"{paging}-{churn}.sqlite", since=SINCE)
        behind = folder / f"{paging}-{churn}-behind.sqlite"
        async with SqliteSink(behind):
            pass  # its tables
        with closing(sqlite3.connect(behind)) as db, db:
            db.executemany(
                "INSERT INTO sync_checkpoints (scope, synced_until, updated_at) VALUES (?, ?, ?)",
                [(scope, format_time(SINCE), format_time(SINCE)) for scope in ALL],
            )
        _, catch_up = await one_run(emu, client, behind)
    return {"first sync": first, "catch-up": catch_up}


def run(quick: bool = False) -> dict[str, Any]:
    """Both kinds of page token, each rate of change, both runs; the figures."""
    jobs = 2_000 if quick else 10_000
    churns = ["hectic"] if quick else list(CHURN)
    logging.getLogger("spapi_services").setLevel(logging.ERROR)
    results: dict[str, Any] = {"jobs": jobs, "step": STEP, "churn": CHURN, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="bench-tokens-") as folder:
        for churn in churns:
            for paging in ("keyset", "offset"):
                started = time.monotonic()
                figures = asyncio.run(one_kind(paging, churn, jobs, Path(folder)))
                results["rows"][f"{paging}/{churn}"] = figures
                print(f"  {paging}/{churn}: {time.monotonic() - started:.0f} s", file=sys.stderr)
    return results


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


def markdown(results: dict[str, Any]) -> str:
    """The table of :func:`run`'s figures."""
    from _common import table

    rows = []
    for key, runs in results["rows"].items():
        paging, churn = key.split("/")
        created, updated = results["churn"][churn]
        for name, r in runs.items():
            rows.append(
                [
                    paging,
                    f"{churn} ({(created + updated) / 60 * results['step']:.3g})",
                    name,
                    r["requests"],
                    r["changes"],
                    f"{r['checks']} ({_pct(r['checks_share'])})",
                    r["looked_back"],
                    r["repeated"],
                    _pct(r["extra_share"]),
                    f"{r['missed']}, {r['stale']}, {r['throttled']}",
                ]
            )
    header = [
        "tokens",
        "churn",
        "run",
        "requests",
        "moved",
        "checks",
        "look-backs",
        "re-paged",
        "extra",
        "missed, stale, 429s",
    ]
    return "\n".join(
        [
            f"{results['jobs']:,} jobs in five marketplaces, `sync_jobs` with its defaults "
            "(8 windows) into SQLite, the emulator's world moving with the requests "
            f"({results['step']:g} s of its clock each: Amazon's plan). Targets: 0 missed, "
            "0 stale, checks ≤ 5 % of the requests. Churn: how fast the world moves, in "
            "changes a request; moved: the changes made during the run; checks: the "
            "verification's requests (their share of the run's); re-paged: pages paged again "
            "after a look-back; extra: requests beyond a still world's, in all.",
            "",
            table(header, rows),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 jobs, one rate")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results = run(args.quick)
    print(json.dumps(results, indent=1) if args.json else markdown(results))


if __name__ == "__main__":
    main()
