"""Booking an appointment exactly once, and a worker step that sorts out what next.

Import ``book_once`` and ``schedule`` into your worker.
"""

import logging
from datetime import datetime

from spapi_services import (
    ApiConnectionError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ServicesClient,
    TokenEndpointUnreachableError,
    UnprocessableEntityError,
)

log = logging.getLogger("myapp")


async def book_once(client: ServicesClient, job_id: str, start: datetime) -> str:
    """Book an appointment for a job at ``start``, never twice; its appointment id."""
    try:
        booked = await client.appointments.add(job_id, start_time=start)
    except TokenEndpointUnreachableError:
        raise  # no access token, so nothing was sent
    except (ServerError, ApiConnectionError):
        # No clear answer: the appointment may have been booked all the same. Look.
        job = await client.service_jobs.get(job_id)
        for appointment in job.appointments or ():
            when = appointment.appointment_time
            if (
                appointment.appointment_status == "ACTIVE"
                and when
                and when.start_time == start
            ):
                return appointment.appointment_id
        raise  # it was not booked: safe to try again later
    return booked.appointment_id


async def schedule(client: ServicesClient, job_id: str, start: datetime) -> str:
    """Book one job; what to do with it next: "done", "later", "fix" or "stop"."""
    try:
        await book_once(client, job_id, start)
    except (RateLimitError, ServerError, ApiConnectionError):
        return "later"  # throttled, failing or unreachable: requeue it with a back-off
    except (BadRequestError, NotFoundError, UnprocessableEntityError) as exc:
        log.warning(
            "job %s refused: %s (request id %s)", job_id, exc.codes, exc.request_id
        )
        return "fix"  # wrong for this job as it stands: the same request fails again
    except AuthenticationError as exc:
        if exc.error:
            return "stop"  # refused: nothing works until the credentials are fixed
        return "later"  # Login with Amazon kept failing: try again later
    return "done"
