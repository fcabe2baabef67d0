"""Keep a SQLite mirror of your service jobs, then read it like any other table.

Usage: python mirror_sqlite.py [DAYS]

The first run fetches the jobs created in the last DAYS days (90 by default); every
later run fetches only what changed since the one before. Stop it at any point: the next
run carries on. Settings come from the SPAPI_* variables, as in the quickstart.
"""

import asyncio
import sqlite3
import sys
from contextlib import closing
from datetime import UTC, datetime, timedelta

from spapi_services import ServicesClient
from spapi_services.sync import SqliteSink, sync_jobs

MIRROR = "service_jobs.sqlite"


async def mirror(days: int) -> None:
    async with ServicesClient() as client:
        report = await sync_jobs(
            client,
            SqliteSink(MIRROR),
            since=datetime.now(UTC) - timedelta(days=days),
            # Only the jobs' business: no buyer's name, phone or address.
            buyer_data="drop",
        )
    print(f"{report.jobs} jobs stored from {report.requests} requests")


def jobs_by_status() -> list[tuple[str, int]]:
    """The mirror is a plain SQLite file: one row per job, with its status and JSON."""
    with closing(sqlite3.connect(MIRROR)) as db:
        return db.execute(
            "SELECT status, count(*) FROM service_jobs GROUP BY status ORDER BY status"
        ).fetchall()


if __name__ == "__main__":
    asyncio.run(mirror(int(sys.argv[1]) if len(sys.argv) > 1 else 90))
    for status, count in jobs_by_status():
        print(f"  {status}: {count}")
