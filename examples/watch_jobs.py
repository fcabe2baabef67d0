"""React to new and changed service jobs as they happen, resuming where the last run
stopped.

Usage: python watch_jobs.py [RESUME_FILE]   (Ctrl-C to stop)
SPAPI_WATCH_LIMIT=N stops after N changes; SPAPI_WATCH_INTERVAL sets the seconds
between polls.
"""

import asyncio
import os
import sys
from pathlib import Path

from spapi_services import ServicesClient
from spapi_services.feed import ChangeKind, JobChange


async def react(change: JobChange) -> None:
    job = change.job
    if change.kind == ChangeKind.CREATED:
        status = job.service_job_status
        print(f"new job {job.service_job_id} ({status}): book an appointment")
    else:
        print(f"job {job.service_job_id} is now {job.service_job_status}")


def load(resume_file: Path) -> str | None:
    return resume_file.read_text().strip() if resume_file.exists() else None


def save(resume_file: Path, token: str) -> None:
    resume_file.write_text(token)  # a token holds hashes, no buyer data


async def main(resume_file: Path, limit: int | None) -> None:
    token = load(resume_file)
    interval = float(os.environ.get("SPAPI_WATCH_INTERVAL", "5"))
    async with ServicesClient() as client:  # settings from the SPAPI_* variables
        seen = 0
        changes = client.service_jobs.changes(resume_token=token, interval=interval)
        async for change in changes:
            await react(change)
            # Saved after the change is handled: a crash before this line handles it
            # again.
            save(resume_file, change.resume_token)
            seen += 1
            if limit is not None and seen >= limit:
                break


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "watch_jobs.resume")
    stop_after = os.environ.get("SPAPI_WATCH_LIMIT")
    asyncio.run(main(path, int(stop_after) if stop_after else None))
