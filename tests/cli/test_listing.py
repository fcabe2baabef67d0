"""Lists that say the truth about what they leave out, and the technicians a job can take."""

from __future__ import annotations

import json
from datetime import timedelta

from spapi_services.emulator import ServicesEmulator

from .conftest import US, Runner, jobs_in


def one_line(text: str) -> str:
    return " ".join(text.split())


def _matching(emulator: ServicesEmulator, status: str) -> int:
    since = emulator.clock.now() - timedelta(days=95)
    return sum(
        1
        for job in emulator.store.find_jobs(status=status, marketplace_id=US)
        if job.created >= since
    )


def test_a_cut_short_list_says_how_many_match_and_how_to_see_them(
    run: Runner, emulator: ServicesEmulator
) -> None:
    total = _matching(emulator, "NOT_SERVICED")
    assert total > 5
    cut = run("jobs", "list", "--since", "95d", "--status", "NOT_SERVICED", "--limit", "5")
    assert cut.exit_code == 0, cut.stderr
    assert f"showing 5 of {total} service jobs in {US}" in one_line(cut.stdout)
    assert f"showing 5 of {total} service jobs; --limit 0 shows them all." in one_line(cut.stderr)

    whole = run("jobs", "list", "--since", "95d", "--status", "NOT_SERVICED", "--limit", "0")
    assert f"{total} service jobs in {US}" in one_line(whole.stdout)
    assert "showing" not in whole.stdout + whole.stderr

    as_json = run(
        "jobs", "list", "--since", "95d", "--status", "NOT_SERVICED", "--limit", "5", "--json"
    )
    assert len(json.loads(as_json.stdout)) == 5
    (note,) = [json.loads(line) for line in as_json.stderr.splitlines()]
    assert note == {
        "note": "not every job is shown",
        "shown": 5,
        "total": total,
        "atLeast": 20,
        "hint": "--limit 0 shows them all",
    }


def test_the_default_limit_does_not_cut_quietly(run: Runner, emulator: ServicesEmulator) -> None:
    total = sum(
        1
        for job in emulator.store.find_jobs(marketplace_id=US)
        if job.created >= emulator.clock.now() - timedelta(days=95)
    )
    assert total > 50
    result = run("jobs", "list", "--since", "95d")
    assert f"showing 50 of {total} service jobs" in one_line(result.stdout)


def test_technicians_for_a_job_are_those_of_its_store_who_did_such_jobs(
    run: Runner, emulator: ServicesEmulator, taken: set[str]
) -> None:
    store = emulator.store
    job = next(
        j
        for j in store.find_jobs(status="PENDING_SCHEDULE", marketplace_id=US)
        if j.service_job_id not in taken and _served(emulator, j)
    )
    taken.add(job.service_job_id)
    expected = _served(emulator, job)
    result = run("technicians", job.service_job_id, "--json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["storeId"] == job.store_id
    assert found["requiredSkills"] == sorted(job.required_skills)
    assert {t["technicianId"] for t in found["technicians"]} == expected
    qualified = {t.resource_id for t in store.qualified_resources(job)}
    assert expected <= qualified  # each one named could take the job

    table = run("technicians", job.service_job_id)
    text = one_line(table.stdout)
    assert f"of store {job.store_id} who served its jobs needing" in text
    assert f"spapi-services appointments assign {job.service_job_id} APPOINTMENT_ID" in one_line(
        table.stderr
    )


def test_a_stores_technicians(run: Runner, emulator: ServicesEmulator) -> None:
    job = jobs_in(emulator, "COMPLETED", set())
    result = run("technicians", "--store", job.store_id, "--json")
    seen = {
        tech
        for other in emulator.store.jobs_at_store(job.store_id)
        if other.created >= emulator.clock.now() - timedelta(days=90)
        for appointment in other.appointments
        for tech, _ in appointment.technicians
    }
    assert {t["technicianId"] for t in json.loads(result.stdout)["technicians"]} == seen
    both = run("technicians", job.service_job_id, "--store", job.store_id)
    assert both.exit_code == 2
    assert "give a SERVICE_JOB_ID, or --store ID (not both)" in one_line(both.stderr)


def _served(emulator: ServicesEmulator, job: object) -> set[str]:
    """Technicians on the appointments of the store's jobs that needed the job's skills."""
    store = emulator.store
    since = emulator.clock.now() - timedelta(days=90)
    needs = set(job.required_skills)  # type: ignore[attr-defined]
    return {
        tech
        for other in store.jobs_at_store(job.store_id)  # type: ignore[attr-defined]
        if other.created >= since
        and needs <= set(other.required_skills)
        and other.location_type == job.location_type  # type: ignore[attr-defined]
        for appointment in other.appointments
        for tech, _ in appointment.technicians
    }
