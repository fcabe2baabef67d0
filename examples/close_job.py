"""Close a job: upload the proof of appointment, record the fulfilment, complete it.

Usage: python close_job.py JOB_ID APPOINTMENT_ID TECHNICIAN_ID FILE STARTED FINISHED

FILE is the proof (a signed form, a receipt: PDF, PNG, JPEG, GIF or TIFF); STARTED and
FINISHED are when the visit began and ended, in ISO 8601 with a zone
(2026-03-02T09:00Z). Settings come from the SPAPI_* variables, as in the quickstart.
"""

import asyncio
import sys
from datetime import datetime

from spapi_services import ServicesClient


def aware(text: str) -> datetime:
    """An ISO 8601 time that says its zone (a naive one would be a guess)."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise SystemExit(f"{text!r}: give the zone too, such as {text}Z")
    return when


async def close_job(
    client: ServicesClient,
    job_id: str,
    appointment_id: str,
    technician_id: str,
    proof: str,
    visit: tuple[datetime, datetime],
) -> str:
    """Upload ``proof``, cite it in the appointment's fulfilment, complete the job.

    Returns the upload destination id the fulfilment data cites.
    """
    # Checked, encrypted as the API asks, and uploaded: one call for the three steps.
    document = await client.documents.upload(proof)
    await client.appointments.set_fulfillment_data(
        job_id,
        appointment_id,
        fulfillment_time=visit,
        resources=[technician_id],
        documents=[document],
    )
    await client.service_jobs.complete(job_id)
    return document.upload_destination_id


async def main(
    job_id: str, appointment_id: str, technician_id: str, *rest: str
) -> None:
    proof, started, finished = rest
    async with ServicesClient() as client:
        cited = await close_job(
            client,
            job_id,
            appointment_id,
            technician_id,
            proof,
            (aware(started), aware(finished)),
        )
    print(f"Job {job_id}: completed, with proof {cited}")


if __name__ == "__main__":
    if len(sys.argv) != 7:
        raise SystemExit(__doc__)
    asyncio.run(main(*sys.argv[1:]))
