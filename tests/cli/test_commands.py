"""Every command of ``spapi-services`` against the emulator: its happy path and an error."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import struct
import zlib
from pathlib import Path
from urllib.parse import urlsplit

from rich.console import Console

from spapi_services.cli._output import Output
from spapi_services.cli._sync import show_report
from spapi_services.emulator import ServicesEmulator
from spapi_services.sync import SyncReport

from .conftest import US, Runner, jobs_in, staffable


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00"))
        + chunk(b"IEND", b"")
    )


def one_line(text: str) -> str:
    """Rich wraps to the terminal's width; tests look for phrases across the breaks."""
    return " ".join(text.split())


# --- jobs -------------------------------------------------------------------------------


def test_jobs_list_as_json_and_as_a_table(run: Runner) -> None:
    result = run(
        "jobs", "list", "--since", "95d", "--status", "NOT_SERVICED", "--limit", "5", "--json"
    )
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    assert len(found) == 5
    assert {j["serviceJobStatus"] for j in found} == {"NOT_SERVICED"}
    assert {j["marketplaceId"] for j in found} == {US}

    table = run("jobs", "list", "--since", "95d", "--limit", "3")
    assert table.exit_code == 0, table.stderr
    assert "showing 3 of " in table.stdout
    # No buyer's details in a table.
    assert "buyer" not in table.stdout.lower()


def test_jobs_list_needs_a_start(run: Runner, emulator: ServicesEmulator) -> None:
    before = emulator.count()
    result = run("jobs", "list")
    assert result.exit_code == 2
    assert "--since" in result.stderr
    assert emulator.count() == before


def test_jobs_get(run: Runner, emulator: ServicesEmulator, taken: set[str]) -> None:
    job = jobs_in(emulator, "COMPLETED", taken)
    result = run("jobs", "get", job.service_job_id)
    assert result.exit_code == 0, result.stderr
    assert job.service_job_id in result.stdout
    assert "COMPLETED" in result.stdout
    as_json = run("--json", "jobs", "get", job.service_job_id)
    assert json.loads(as_json.stdout)["serviceJobId"] == job.service_job_id


def test_jobs_get_unknown_shows_the_api_error_and_the_request_id(run: Runner) -> None:
    result = run("jobs", "get", "99999999999999")
    assert result.exit_code == 1
    err = one_line(result.stderr)
    assert "HTTP 404 from getServiceJobByServiceJobId" in err
    assert "NotFound: Job not found for jobId 99999999999999" in err
    # With the moment it was answered: what Amazon's support asks for beside the id.
    assert re.search(r"request id: [0-9a-f-]{36} at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", err)
    assert "Traceback" not in result.output


def test_jobs_cancel(run: Runner, emulator: ServicesEmulator, taken: set[str]) -> None:
    job = jobs_in(emulator, "PENDING_SCHEDULE", taken)
    result = run("jobs", "cancel", job.service_job_id, "--reason", "V1")
    assert result.exit_code == 0, result.stderr
    assert "cancelled service job" in result.stdout
    assert emulator.store.jobs[job.service_job_id].status == "CANCELLED"


def test_jobs_cancel_bad_reason_is_refused_before_sending(
    run: Runner, emulator: ServicesEmulator
) -> None:
    before = emulator.count()
    result = run("jobs", "cancel", "12345678901234", "--reason", "not valid")
    assert result.exit_code == 2
    err = one_line(result.stderr)
    assert "Invalid argument: --reason: 'not valid' does not match the pattern" in err
    assert "Nothing was sent" in err
    assert emulator.count() == before


def test_jobs_complete(run: Runner, emulator: ServicesEmulator, taken: set[str]) -> None:
    job = jobs_in(emulator, "NOT_SERVICED", taken)
    result = run("--json", "jobs", "complete", job.service_job_id)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["ok"] is True
    assert emulator.store.jobs[job.service_job_id].status == "COMPLETED"


def test_jobs_complete_a_cancelled_job_is_a_422(
    run: Runner, emulator: ServicesEmulator, taken: set[str]
) -> None:
    job = jobs_in(emulator, "CANCELLED", taken)
    result = run("jobs", "complete", job.service_job_id)
    assert result.exit_code == 1
    err = one_line(result.stderr)
    assert "HTTP 422" in err
    assert "InvalidInput" in err
    assert "jobState : CANCELLED" in err


# --- appointments -----------------------------------------------------------------------


def test_appointments_add(run: Runner, emulator: ServicesEmulator, taken: set[str]) -> None:
    job = jobs_in(emulator, "PENDING_SCHEDULE", taken)
    result = run("--json", "appointments", "add", job.service_job_id, "--start", "+3d")
    assert result.exit_code == 0, result.stderr
    appointment_id = json.loads(result.stdout)["appointmentId"]
    assert emulator.store.jobs[job.service_job_id].appointment(appointment_id) is not None


def test_appointments_add_in_the_past_is_refused_by_the_api(
    run: Runner, emulator: ServicesEmulator, taken: set[str]
) -> None:
    job = jobs_in(emulator, "PENDING_SCHEDULE", taken)
    result = run("appointments", "add", job.service_job_id, "--start", "2d")
    assert result.exit_code == 1
    assert "Start time of appointment should be in the future" in one_line(result.stderr)


def test_appointments_reschedule(run: Runner, emulator: ServicesEmulator, taken: set[str]) -> None:
    job, appointment, _ = staffable(emulator, taken)
    result = run(
        "appointments", "reschedule", job.service_job_id, appointment.appointment_id,
        "--start", "+4d", "--reason", "R1",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "rescheduled as appointment" in one_line(result.stdout)
    assert (
        emulator.store.jobs[job.service_job_id].appointment(appointment.appointment_id).status
        == "CANCELLED"
    )  # type: ignore[union-attr]


def test_appointments_reschedule_needs_a_reason(run: Runner) -> None:
    result = run("appointments", "reschedule", "1", "2", "--start", "+1d")
    assert result.exit_code == 2
    assert "--reason" in result.stderr


def test_appointments_assign(run: Runner, emulator: ServicesEmulator, taken: set[str]) -> None:
    job, appointment, technician = staffable(emulator, taken)
    result = run(
        "appointments", "assign", job.service_job_id, appointment.appointment_id,
        technician.resource_id,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"assigned {technician.resource_id}" in one_line(result.stdout)
    assert appointment.technicians[0][0] == technician.resource_id


def test_appointments_assign_unknown_technician(
    run: Runner, emulator: ServicesEmulator, taken: set[str]
) -> None:
    job, appointment, _ = staffable(emulator, taken)
    result = run(
        "appointments", "assign", job.service_job_id, appointment.appointment_id, "NOBODY1"
    )
    assert result.exit_code == 1
    assert "Invalid resourceId : NOBODY1" in one_line(result.stderr)


def test_appointments_slots(run: Runner, emulator: ServicesEmulator, taken: set[str]) -> None:
    job = jobs_in(emulator, "PENDING_SCHEDULE", taken)
    result = run("--json", "appointments", "slots", job.service_job_id)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["appointmentSlots"]
    table = run("appointments", "slots", job.service_job_id)
    assert "free slot" in table.stdout


def test_appointments_slots_needs_a_job_or_asin_and_store(run: Runner) -> None:
    result = run("appointments", "slots", "--asin", "B000000000")
    assert result.exit_code == 2
    assert "--asin and --store go together" in result.stderr


# --- fulfilment and documents ------------------------------------------------------------


def test_fulfillment_set_with_an_upload(
    run: Runner, emulator: ServicesEmulator, taken: set[str], tmp_path: Path
) -> None:
    job, appointment, technician = staffable(emulator, taken)
    proof = tmp_path / "proof.png"
    proof.write_bytes(png())
    result = run(
        "fulfillment", "set", job.service_job_id, appointment.appointment_id,
        "--start", "3h", "--end", "2h", "--technician", technician.resource_id,
        "--upload", str(proof),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "recorded fulfilment" in result.stdout
    assert appointment.poa is not None
    assert appointment.poa["poaType"] == "POA_RECEIPT"


def test_fulfillment_set_refuses_half_a_time_range(run: Runner) -> None:
    result = run("fulfillment", "set", "1", "2", "--start", "3h")
    assert result.exit_code == 2
    assert "--start and --end go together" in result.stderr


def test_documents_upload(run: Runner, tmp_path: Path) -> None:
    proof = tmp_path / "proof.png"
    proof.write_bytes(png())
    result = run("--json", "documents", "upload", str(proof))
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["uploadDestinationId"]
    assert doc["contentSha256"]
    table = run("documents", "upload", str(proof))
    assert "--document" in one_line(table.stdout)


def test_documents_upload_an_empty_file_is_refused(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    before = emulator.count()
    result = run("documents", "upload", str(empty))
    assert result.exit_code == 2
    assert "Invalid argument" in result.stderr
    assert emulator.count() == before


# --- schedules, reservations, capacity -----------------------------------------------------


def technician_id(emulator: ServicesEmulator, index: int) -> str:
    techs = sorted(
        r.resource_id for r in emulator.store.resources.values() if r.kind == "TECHNICIAN"
    )
    return techs[index]


def test_schedules_update(run: Runner, emulator: ServicesEmulator) -> None:
    resource = technician_id(emulator, 0)
    result = run(
        "schedules", "update", resource, "--start", "+1d", "--end", "+2d", "--capacity", "1",
        "--repeat-until", "+30d", "--days", "MON,TUE,WED",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"schedule of {resource} set" in result.stdout


def test_schedules_update_days_need_a_recurrence(run: Runner) -> None:
    result = run("schedules", "update", "R1", "--start", "+1d", "--end", "+2d", "--days", "MON")
    assert result.exit_code == 2
    assert "--repeat-until" in result.stderr


def test_reservations_create_update_cancel(run: Runner, emulator: ServicesEmulator) -> None:
    resource = technician_id(emulator, 1)
    created = run(
        "--json", "reservations", "create", resource, "--type", "BREAK",
        "--start", "+120h", "--end", "+121h",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    reservation_id = json.loads(created.stdout)["reservation"]["reservationId"]
    assert reservation_id in emulator.store.reservations

    updated = run(
        "reservations", "update", reservation_id, resource, "--type", "TRAINING",
        "--start", "+122h", "--end", "+123h",
    )  # fmt: skip
    assert updated.exit_code == 0, updated.stderr
    assert "Reservation updated" in updated.stdout
    assert emulator.store.reservations[reservation_id].type == "TRAINING"

    cancelled = run("reservations", "cancel", reservation_id)
    assert cancelled.exit_code == 0, cancelled.stderr
    assert reservation_id not in emulator.store.reservations


def test_reservations_cancel_unknown(run: Runner) -> None:
    result = run("reservations", "cancel", "424242")
    assert result.exit_code == 1
    err = one_line(result.stderr)
    assert "HTTP 404 from cancelReservation" in err
    assert "Reservation does not exist" in err


def test_capacity_range_and_fixed(run: Runner, emulator: ServicesEmulator) -> None:
    resource = technician_id(emulator, 2)
    ranged = run("--json", "capacity", "range", resource, "--start", "+1d", "--end", "+3d")
    assert ranged.exit_code == 0, ranged.stderr
    pages = json.loads(ranged.stdout)
    assert pages[0]["resourceId"] == resource
    fixed = run(
        "capacity", "fixed", resource, "--start", "+1d", "--end", "+2d", "--slot-duration", "30"
    )
    assert fixed.exit_code == 0, fixed.stderr
    assert "30-minute slots" in fixed.stdout


def test_capacity_fixed_bad_slot_duration_is_refused_before_sending(
    run: Runner, emulator: ServicesEmulator
) -> None:
    before = emulator.count()
    result = run(
        "capacity", "fixed", "R1", "--start", "+1d", "--end", "+2d", "--slot-duration", "7"
    )
    assert result.exit_code == 2
    assert "--slot-duration: must be a multiple of 5, got 7" in one_line(result.stderr)
    assert emulator.count() == before


# --- sync -------------------------------------------------------------------------------


def test_sync_into_sqlite_then_again(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    db = tmp_path / "mirror.sqlite"
    result = run("sync", "--db", str(db), "--since", "95d")
    assert result.exit_code == 0, result.stderr
    us = {j.service_job_id for j in emulator.store.jobs.values() if j.marketplace_id == US}
    conn = sqlite3.connect(db)
    try:
        ids = {r[0] for r in conn.execute("SELECT service_job_id FROM service_jobs")}
    finally:
        conn.close()
    assert ids == us
    assert f"Synced into {db}" in one_line(result.stdout)

    again = run("--json", "sync", "--db", str(db))
    assert again.exit_code == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["runs"][0]["mode"] == "updated"


def test_sync_jsonl_of_two_marketplaces(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.jsonl"
    result = run(
        "--json", "sync", "--jsonl", str(path), "--since", "95d",
        "--marketplace", US, "--marketplace", "A2EUQ1WTGCTBG2",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    expected = {
        j.service_job_id
        for j in emulator.store.jobs.values()
        if j.marketplace_id in (US, "A2EUQ1WTGCTBG2")
    }
    ids = [json.loads(line)["serviceJobId"] for line in path.read_text().splitlines()]
    assert sorted(ids) == sorted(expected)
    assert json.loads(result.stdout)["jobs"] == len(expected)


def test_sync_takes_one_sink(run: Runner, tmp_path: Path) -> None:
    result = run("sync", "--db", "a.sqlite", "--jsonl", "b.jsonl")
    assert result.exit_code == 2
    assert "not both" in result.stderr


# --- credentials and global options ---------------------------------------------------------


def test_missing_credentials_name_the_variables(run: Runner) -> None:
    result = run("jobs", "get", "1", env={"SPAPI_CLIENT_SECRET": None, "SPAPI_REFRESH_TOKEN": None})
    assert result.exit_code == 2
    err = one_line(result.stderr)
    assert "SPAPI_CLIENT_SECRET, SPAPI_REFRESH_TOKEN" in err
    assert "spapi-services demo" in err


def test_refused_credentials(run: Runner) -> None:
    result = run("jobs", "get", "1", env={"SPAPI_REFRESH_TOKEN": "Atzr|not-the-right-one"})
    assert result.exit_code == 1
    err = one_line(result.stderr)
    port = urlsplit(run.env["SPAPI_TOKEN_URL"]).port
    assert f"the emulator's Login with Amazon (127.0.0.1:{port}) refused the credentials" in err
    assert "invalid_grant" in err
    assert "source its export lines" in err
    assert "not-the-right-one" not in err


def test_marketplace_is_asked_for_when_missing(run: Runner) -> None:
    result = run("jobs", "list", "--since", "1d", env={"SPAPI_MARKETPLACE_ID": None})
    assert result.exit_code == 2
    assert "--marketplace" in one_line(result.stderr)


def test_version_and_help(run: Runner) -> None:
    assert "spapi-services" in run("--version").stdout
    help_text = run("--help").stdout
    for command in ("jobs", "appointments", "fulfillment", "documents", "schedules",
                    "reservations", "capacity", "sync", "demo", "emulator"):  # fmt: skip
        assert command in help_text


def test_region_and_sandbox_choose_the_host() -> None:
    import asyncio

    from spapi_services import LwaCredentials
    from spapi_services.cli._app import Settings, open_client

    creds = LwaCredentials("amzn1.application-oa2-client.x", "secret", "Atzr|token")

    async def base_url(settings: Settings) -> str:
        async with open_client(settings, credentials=creds) as client:
            return client.base_url

    assert asyncio.run(base_url(Settings(region="EU", sandbox=True))) == (
        "https://sandbox.sellingpartnerapi-eu.amazon.com"
    )
    assert asyncio.run(base_url(Settings(region="FE"))) == (
        "https://sellingpartnerapi-fe.amazon.com"
    )


def test_a_sqlite_file_that_cannot_be_opened(run: Runner, tmp_path: Path) -> None:
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("this is not a database\n" * 100)
    result = run("sync", "--db", str(not_a_db), "--since", "1d")
    assert result.exit_code == 1
    assert "Error: the SQLite file" in one_line(result.stderr)
    assert "Traceback" not in result.output


def test_sync_reports_the_requests_it_spent_on_completeness(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    # One window over the US jobs: more than one page, so it is checked once at its end.
    us = sum(1 for j in emulator.store.jobs.values() if j.marketplace_id == US)
    assert us > 20
    db = tmp_path / "checked.sqlite"
    result = run("--json", "sync", "--db", str(db), "--since", "95d", "--windows", "1")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["checks"] == 1
    assert (report["lookedBack"], report["repeated"]) == (0, 0)
    assert report["requests"] == report["pages"] + report["checks"]

    shown = run("sync", "--db", str(tmp_path / "shown.sqlite"), "--since", "95d", "--windows", "1")
    assert shown.exit_code == 0, shown.stderr
    text = one_line(shown.stdout)
    assert "Of the requests: 1 check that no job moved while its window was paged." in text
    assert "looked back" not in text
    assert "fetched again" not in text


def test_the_sync_summary_words_look_backs_and_repeated_pages() -> None:
    report = SyncReport(
        runs=(), windows=8, pages=90, jobs=1700, requests=104, elapsed=9.0,
        checks=8, looked_back=1, repeated=5,
    )  # fmt: skip
    buffer = io.StringIO()
    show_report(Output(as_json=False, out=Console(file=buffer, width=200)), report, "x.sqlite")
    text = one_line(buffer.getvalue())
    assert (
        "Of the requests: 8 checks that no job moved while its window was paged; 1 page "
        "looked back at for jobs that moved; 5 pages fetched again (jobs moved under the "
        "pages, or a page token expired)."
    ) in text
    quiet = SyncReport(runs=(), windows=1, pages=1, jobs=3, requests=1, elapsed=0.5)
    buffer = io.StringIO()
    show_report(Output(as_json=False, out=Console(file=buffer, width=200)), quiet, "x.sqlite")
    assert "Of the requests" not in buffer.getvalue()
    assert "3 jobs in 1 page" in one_line(buffer.getvalue())
