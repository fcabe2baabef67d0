"""examples/quickstart.py, run as getting started says, against the emulator."""

from __future__ import annotations

from pathlib import Path

from _pages import US, example, run_file, settings_env, without_settings

from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.__main__ import environment, write_env_file


async def test_it_books_the_longest_waiting_job_and_puts_the_technician_on_it(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    store = emulator.store
    job = store.find_jobs(status="PENDING_SCHEDULE", marketplace_id=US)[0]  # oldest first
    technician = store.qualified_resources(job)[0]  # "your technician", who can do the job
    appointments_before = len(job.appointments)
    # As getting started has it: the emulator's settings in a file, sourced, then the script.
    write_env_file(tmp_path / "emulator.env", environment(emulator))

    done = await run_file(
        example("quickstart.py"),
        [technician.resource_id],
        env=without_settings(),
        cwd=tmp_path,
        source=tmp_path / "emulator.env",
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    booked = job.active_appointment()
    assert booked is not None
    assert len(job.appointments) == appointments_before + 1
    assert job.status == "NOT_SERVICED"
    assert booked.technicians == [(technician.resource_id, technician.name)]
    lines = done.stdout.splitlines()
    assert lines[0] == f"Job {job.service_job_id}: appointment {booked.appointment_id}"
    assert lines[1] == (f"  {booked.start:%Y-%m-%d %H:%M} UTC, technician {technician.resource_id}")
    # The first free slot it was offered: the emulator's "now" is a Wednesday at midnight.
    assert booked.start.date() == emulator.clock.now().date()


async def test_it_says_so_when_no_job_is_waiting(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    for job in emulator.store.find_jobs(status="PENDING_SCHEDULE"):
        emulator.store.set_job_status(job.service_job_id, "HOLD")

    done = await run_file(
        example("quickstart.py"),
        ["T00000000000"],
        env=settings_env(emulator),
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "No job is waiting for an appointment.\n"
    assert emulator.count("addAppointmentForServiceJobByServiceJobId") == 0
