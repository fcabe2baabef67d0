"""Book the job that has waited longest for an appointment, and staff it.

Usage: python quickstart.py TECHNICIAN_ID (settings from SPAPI_* variables).
"""

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

from spapi_services import LwaCredentials, ServicesClient


async def main(technician_id: str) -> None:
    async with ServicesClient(
        LwaCredentials.from_env(),  # SPAPI_CLIENT_ID, SPAPI_CLIENT_SECRET, SPAPI_REFRESH_TOKEN
        endpoint=os.environ.get("SPAPI_ENDPOINT"),  # unset: Amazon's North America endpoint
        token_url=os.environ.get("SPAPI_TOKEN_URL"),  # unset: Login with Amazon
        marketplace_id=os.environ.get("SPAPI_MARKETPLACE_ID", "ATVPDKIKX0DER"),
    ) as client:
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
