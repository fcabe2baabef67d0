"""examples/close_job.py: proof uploaded, fulfilment recorded, job completed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from _pages import US, example, run_file, settings_env
from e2e.conftest import tiny_png

from spapi_services.emulator import ServicesEmulator


async def test_it_uploads_the_proof_records_the_visit_and_completes_the_job(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    job = next(
        j
        for j in emulator.store.find_jobs(status="NOT_SERVICED", marketplace_id=US)
        if j.active_appointment() is not None
    )
    appointment = job.active_appointment()
    assert appointment is not None
    technician = emulator.store.qualified_resources(job)[0]
    # This machine's clock: the SDK refuses a fulfilment time in its future.  (The
    # emulator's clock stands ahead of it, at next Wednesday: it takes these too.)
    now = datetime.now(UTC)
    started, finished = now - timedelta(hours=2), now - timedelta(hours=1)
    (tmp_path / "signature.png").write_bytes(tiny_png())

    done = await run_file(
        example("close_job.py"),
        [
            job.service_job_id,
            appointment.appointment_id,
            technician.resource_id,
            "signature.png",
            started.isoformat(),
            finished.strftime("%Y-%m-%dT%H:%MZ"),
        ],
        env=settings_env(emulator),
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert job.status == "COMPLETED"
    recorded = appointment.fulfillment
    assert recorded is not None
    [cited] = recorded["fulfillmentDocuments"]
    assert done.stdout == (
        f"Job {job.service_job_id}: completed, with proof {cited['uploadDestinationId']}\n"
    )
    assert recorded["appointmentResources"] == [{"resourceId": technician.resource_id}]
    assert appointment.poa is not None
    assert appointment.poa["poaType"] == "POA_RECEIPT"


async def test_a_time_without_its_zone_is_refused_before_anything_is_sent(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    job = emulator.store.find_jobs(status="NOT_SERVICED", marketplace_id=US)[0]
    (tmp_path / "signature.png").write_bytes(tiny_png())

    done = await run_file(
        example("close_job.py"),
        [job.service_job_id, "A1", "T1", "signature.png", "2026-03-02T09:00", "2026-03-02T10:00Z"],
        env=settings_env(emulator),
        cwd=tmp_path,
    )

    assert done.returncode == 1
    assert "'2026-03-02T09:00': give the zone too, such as 2026-03-02T09:00Z" in done.stderr
    assert emulator.count() == 0
    assert job.status == "NOT_SERVICED"


async def test_a_visit_that_has_not_ended_is_refused_naming_its_end(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    job = next(
        j
        for j in emulator.store.find_jobs(status="NOT_SERVICED", marketplace_id=US)
        if j.active_appointment() is not None
    )
    appointment = job.active_appointment()
    assert appointment is not None
    (tmp_path / "signature.png").write_bytes(tiny_png())
    now = datetime.now(UTC)

    done = await run_file(
        example("close_job.py"),
        [
            job.service_job_id,
            appointment.appointment_id,
            emulator.store.qualified_resources(job)[0].resource_id,
            "signature.png",
            (now - timedelta(hours=1)).isoformat(),
            (now + timedelta(hours=1)).isoformat(),  # the booked slot's end, say
        ],
        env=settings_env(emulator),
        cwd=tmp_path,
    )

    assert done.returncode == 1
    assert "ValueError: fulfillment_time.end_time: " in done.stderr
    assert "is in the future (this machine's clock says" in done.stderr
    assert emulator.count("setAppointmentFulfillmentData") == 0
    assert job.status == "NOT_SERVICED"
