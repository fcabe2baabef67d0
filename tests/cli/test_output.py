"""What a person sees at 80 columns: ids they copy stay whole on one line, headers stay
whole words, counts agree with their nouns."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from spapi_services.cli._output import Output, plural
from spapi_services.cli._sync import ProgressBar
from spapi_services.emulator import ServicesEmulator
from spapi_services.sync import SyncProgress

from .conftest import Runner
from .test_commands import png

APPOINTMENT = "15599858695509_ed3d5c7b-d43f-4cba-9031-e847a3dadf28"
REPLACED = "15599858695509_6446b71d-5028-4914-afa1-16de6aa4979f"
UPLOAD = (
    "amzn1.tortuga.3.76078d86-c149-9b69-976e-2f60dcdfb924.T7ABA468FF81CUTC"
    "<->amzn1.tortuga.1.token.i/fu9qS1WX54zKxZTxPTHBx3v2TAhBYS"
)


def at_80() -> tuple[Output, io.StringIO]:
    text = io.StringIO()
    console = Console(file=text, width=80, color_system=None, highlight=False)
    return Output(as_json=False, out=console, err=console), text


def whole_on_a_line(value: str, text: str) -> bool:
    return any(value in line for line in text.splitlines())


def test_ids_and_headers_stay_whole_when_a_table_is_too_wide(tmp_path: Path) -> None:
    out, text = at_80()
    columns = ["appointment id", "status", "start", "minutes", "technicians", "replaces"]
    out.table(
        "Appointments",
        columns,
        [
            (REPLACED, "CANCELLED", "2026-12-05 15:00Z", 60, None, None),
            (APPOINTMENT, "ACTIVE", "2026-12-07 15:00Z", 120, "TD4UWWYRA20S, TX9", REPLACED),
        ],
    )
    shown = text.getvalue()
    assert whole_on_a_line(APPOINTMENT, shown)
    assert sum(REPLACED in line for line in shown.splitlines()) == 2
    for header in columns:
        assert whole_on_a_line(header, shown), header
    assert max(len(line) for line in shown.splitlines()) <= 80


def test_a_table_that_fits_wraps_prose_but_never_a_word() -> None:
    out, text = at_80()
    title = "Smart Thermostat Installation with a very long description of the work"
    out.table(
        "3 service jobs",
        ["job id", "status", "created", "service", "appointment"],
        [
            ("15599858695509", "NOT_SERVICED", "2026-09-02 21:44:40Z", title, "2026-12-07 15:00Z"),
            ("64152272818000", "PENDING_SCHEDULE", "2026-09-05 19:16:15Z", "Tires", None),
        ],
    )
    shown = text.getvalue()
    assert "┃ job id" in shown  # still a table
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 80
    for word in ["15599858695509", "64152272818000", "PENDING_SCHEDULE", "appointment",
                 "Thermostat", "Installation", "description"]:  # fmt: skip
        assert whole_on_a_line(word, shown), word


def test_a_value_wider_than_the_terminal_is_one_unbroken_line() -> None:
    out, text = at_80()
    out.fields("Uploaded proof.png", [("upload destination id", UPLOAD), ("content SHA-256", "x=")])
    out.say(f"  --document {UPLOAD}:x=")
    shown = text.getvalue()
    assert whole_on_a_line(UPLOAD, shown)
    assert whole_on_a_line(f"--document {UPLOAD}:x=", shown)


def test_jobs_get_keeps_appointment_ids_whole_at_80_columns(
    run: Runner, emulator: ServicesEmulator
) -> None:
    job = next(j for j in emulator.store.jobs.values() if len(j.appointments) >= 2)
    result = run("jobs", "get", job.service_job_id, env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    for appointment in job.appointments:
        assert whole_on_a_line(appointment.appointment_id, result.stdout)
    for header in ("appointment id", "minutes", "technicians", "replaces"):
        assert whole_on_a_line(header, result.stdout)


def test_documents_upload_prints_the_id_to_copy_whole(run: Runner, tmp_path: Path) -> None:
    proof = tmp_path / "proof.png"
    proof.write_bytes(png())
    result = run("documents", "upload", str(proof), env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    [cite] = [line for line in result.stdout.splitlines() if "--document " in line]
    upload_id, _, digest = cite.split("--document ", 1)[1].strip().partition(":")
    assert upload_id.startswith("amzn1.tortuga.")
    assert whole_on_a_line(upload_id, result.stdout.replace(cite, ""))
    assert len(digest) == 44


def test_counts_agree_with_their_nouns() -> None:
    assert [plural(n, "page") for n in (0, 1, 2)] == ["0 pages", "1 page", "2 pages"]
    out, text = at_80()
    with ProgressBar(out.out) as bar:
        bar(SyncProgress(windows=1, windows_done=1, pages=1, jobs=1, expected=1, elapsed=0.5))
    assert "1/1 job · 1 page · 1/1 window · 2.0 req/s" in text.getvalue()


def test_a_bar_appears_only_once_a_page_is_stored() -> None:
    out, text = at_80()
    with ProgressBar(out.out):
        pass
    assert text.getvalue() == ""
