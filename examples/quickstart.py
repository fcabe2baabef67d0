"""Book the job that has waited longest for an appointment, and staff it.

Usage: python quickstart.py TECHNICIAN_ID

The settings come from the SPAPI_* variables: the emulator's export lines, or your
credentials and SPAPI_MARKETPLACE_ID.  `spapi-services technicians JOB_ID` names
technicians who can take a job.
"""

import asyncio
import sys
from datetime import UTC, datetime, timedelta

from spapi_services import ServicesClient


async def main(technician_id: str) -> None:
    # Credentials, endpoint, token URL and marketplace from the SPAPI_* variables.
    async with ServicesClient() as client:
        since = datetime.now(UTC) - timedelta(days=90)
        waiting = client.service_jobs.list(
            created_after=since,
            statuses=["PENDING_SCHEDULE"],
            sort_field="JOB_DATE",
            sort_order="ASC",
            max_items=1,
        )
        jobs = [job async for job in waiting]
        if not jobs:
            print("No job is waiting for an appointment.")
            return
        job_id = jobs[0].service_job_id

        report = await client.appointments.slots_for_job(job_id)
        free = [slot for slot in report.appointment_slots or () if slot.capacity]
        if not free:
            print(f"Job {job_id}: no free slot yet.")
            return
        slot = free[0]

        booked = await client.appointments.add(job_id, start_time=slot.start_time)
        warnings = await client.appointments.assign_resources(
            job_id, booked.appointment_id, [technician_id]
        )
        print(f"Job {job_id}: appointment {booked.appointment_id}")
        print(f"  {slot.start_time:%Y-%m-%d %H:%M} UTC, technician {technician_id}")
        for warning in warnings:
            print(f"  warning {warning.code}: {warning.message}")


if __name__ == "__main__":
    asyncio.run(main(technician_id=sys.argv[1]))
