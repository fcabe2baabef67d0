"""Logging: the guide's set-up, then calls; what comes out, and what never does."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from _pages import US, as_script, run_script, settings_env

from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.store import AppointmentRecord, JobRecord

from ._docs import block, sample

# The calls made after the guide's logging set-up: read a job, then move a staffed
# appointment, which Amazon answers with a warning that its technicians were unassigned.
DRIVER = """
import asyncio
import os
import sys
from datetime import datetime

from spapi_services import LwaCredentials, ServicesClient


async def drive(job_id: str, appointment_id: str, start: str) -> None:
    async with ServicesClient(
        LwaCredentials.from_env(),
        endpoint=os.environ["SPAPI_ENDPOINT"],
        token_url=os.environ["SPAPI_TOKEN_URL"],
        marketplace_id=os.environ["SPAPI_MARKETPLACE_ID"],
    ) as client:
        await client.service_jobs.get(job_id)
        await client.appointments.reschedule(
            job_id, appointment_id, start_time=datetime.fromisoformat(start), reason_code="R1"
        )


asyncio.run(drive(*sys.argv[1:]))
"""

_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
_VARIABLE = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
    (re.compile(r"\b\d+\.\d{3}s\b"), "<seconds>"),
    (re.compile(r"\bT[A-Z0-9]{11}\b"), "<technician>"),
)


def _shape(line: str) -> str:
    """A log line without what changes from run to run (time stamps, ids, durations)."""
    assert _STAMP.match(line), line
    line = _STAMP.sub("", line)
    for pattern, placeholder in _VARIABLE:
        line = pattern.sub(placeholder, line)
    return line


def staffed_appointment(emu: ServicesEmulator) -> tuple[JobRecord, AppointmentRecord]:
    """A job waiting for service, and its coming appointment that has one technician (as in
    the guide's sample, whose warning names one)."""
    return next(
        (j, a)
        for j in emu.store.find_jobs(status="NOT_SERVICED", marketplace_id=US)
        if (a := j.active_appointment()) is not None
        and len(a.technicians) == 1
        and a.start > emu.clock.now()
    )


def driver_args(job: JobRecord, appointment: AppointmentRecord) -> list[str]:
    new_start = appointment.start + timedelta(days=1)
    return [job.service_job_id, appointment.appointment_id, new_start.isoformat()]


async def test_without_logging_configured_nothing_is_printed(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    job, appointment = staffed_appointment(emulator)

    done = await run_script(
        DRIVER, driver_args(job, appointment), env=settings_env(emulator), cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert appointment.status == "CANCELLED"  # moved: Amazon's answer carried a warning
    assert (done.stdout, done.stderr) == ("", "")


async def test_debug_lines_appear_and_no_secret_or_buyer_data_does(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    job, appointment = staffed_appointment(emulator)

    done = await run_script(
        as_script(block("logging")) + DRIVER,
        driver_args(job, appointment),
        env=settings_env(emulator),
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert re.search(
        r"DEBUG spapi_services: GET /service/v1/serviceJobs/\{serviceJobId\} -> 200 "
        r"request_id=[0-9a-f-]{36} elapsed=\d+\.\d{3}s attempt=1 waited=\d+\.\d{3}s$",
        lines[1],
    )
    shapes = [_shape(line) for line in lines]
    assert len(shapes) == 4
    assert shapes == [_shape(line) for line in sample("logging").code.splitlines()]

    creds = emulator.credentials
    secrets = [creds.client_secret, creds.refresh_token, "Atza|"]  # Atza|: an access token
    buyer = job.details["buyer"]
    address = job.details["serviceLocation"].get("address", {})
    personal = [buyer["name"], buyer["phone"], address.get("addressLine1", buyer["name"])]
    assert [s for s in secrets + personal if s in done.stderr] == []
    assert job.service_job_id not in done.stderr  # paths are logged as templates
