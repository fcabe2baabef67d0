"""``spapi-services demo`` end to end, and ``spapi-services emulator`` in the foreground."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from spapi_services import ServicesClient
from spapi_services.cli._demo import _free_technician, _latency
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.__main__ import (
    SETTINGS,
    _emulator,
    build_parser,
    parse_duration,
    write_env_file,
)
from spapi_services.emulator.faults import Fault
from spapi_services.models.scheduling import AvailabilityRecord, Reservation

from .conftest import US, Runner, jobs_in


def test_demo_runs_to_completion(run: Runner, tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite"
    result = run("demo", "--jobs", "200", "--latency", "5", "--db", str(db), env={
        # The demo needs no credentials: its emulator makes its own.
        "SPAPI_CLIENT_ID": None, "SPAPI_CLIENT_SECRET": None, "SPAPI_REFRESH_TOKEN": None,
    })  # fmt: skip
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    for step in (
        "1. Find a job waiting for an appointment",
        "2. Book an appointment in a free slot",
        "3. Assign the technician",
        "4. Upload proof of the visit",
        "5. Record the fulfilment",
        "6. Complete the job",
        "7. See a new job arrive",
        "8. Mirror every job into SQLite",
        "9. Summary",
    ):
        assert step in text
    assert "COMPLETED" in text
    # The job waited for an appointment: booked, not moved, and no warning about
    # technicians taken off an appointment it never had.
    assert "Booked appointment" in text
    assert "jobs waiting for an appointment" in text
    assert "showing 5 of " in text
    assert "rescheduled" not in text
    assert "moved it" not in text
    assert "warning" not in result.stderr.lower()
    # The new job the feed showed arriving, created while it watched, is mirrored too.
    assert re.search(r"New job \S+ \(PENDING_SCHEDULE\) came through the feed [\d.]+ s after", text)
    assert "jobs in the emulator │ 201" in text
    assert "rows in SQLite │ 201" in text
    assert "429s drawn by the sync │ 0" in text
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM service_jobs").fetchone()[0] == 201
    finally:
        conn.close()


def test_demo_refuses_a_bad_latency(run: Runner) -> None:
    result = run("demo", "--latency", "fast")
    assert result.exit_code == 2
    assert "milliseconds" in result.stderr


# --- one unit for durations: milliseconds, seconds recognised and said so ------------------


@pytest.mark.parametrize(
    ("text", "base", "jitter", "noted"),
    [
        ("100", 0.1, 0.0, False),
        ("50-150", 0.05, 0.1, False),
        ("250ms", 0.25, 0.0, False),
        ("0.25s", 0.25, 0.0, False),
        ("1.5s-2s", 1.5, 0.5, False),
        ("12.5", 0.0125, 0.0, False),  # a fraction of 10 ms and more: milliseconds still
        ("0", 0.0, 0.0, False),
        ("0.25", 0.25, 0.0, True),  # looks like seconds: read as seconds, and said so
        ("0.05-0.15", 0.05, 0.1, True),
    ],
)
def test_durations_are_milliseconds(text: str, base: float, jitter: float, noted: bool) -> None:
    read = parse_duration(text, "--latency")
    assert read.base == pytest.approx(base)
    assert read.jitter == pytest.approx(jitter)
    assert (read.note is not None) is noted
    if noted:
        assert read.note is not None
        assert read.note.startswith(f"--latency {text}: read as seconds (")
        assert "durations are milliseconds, so write" in read.note


@pytest.mark.parametrize("text", ["fast", "-5", "150-50", "1h", ""])
def test_a_duration_that_is_none_is_refused_naming_the_option(text: str) -> None:
    with pytest.raises(ValueError, match=r"^--slow-body: "):
        parse_duration(text, "--slow-body")


def test_the_emulator_and_the_demo_take_the_same_latency(
    run: Runner, capsys: pytest.CaptureFixture[str]
) -> None:
    args = build_parser().parse_args(
        ["--latency", "50-150", "--slow-body", "0.5", "--fault", "getServiceJobs:latency=250"]
    )
    notes: list[str] = []
    emu = _emulator(args, notes)
    assert emu.faults.get("*") == Fault(latency=0.05, jitter=0.1, slow_body=0.5)
    assert emu.faults.get("getServiceJobs") == Fault(latency=0.25)
    assert notes == [
        "--slow-body 0.5: read as seconds (500 ms); durations are milliseconds, so write 500 "
        "(or 500ms)"
    ]
    assert _latency("50-150") == pytest.approx((0.05, 0.1))  # the demo's reading
    assert _latency("0.1") == pytest.approx((0.1, 0.0))
    assert "note: --latency 0.1: read as seconds (100 ms)" in capsys.readouterr().err
    refused = run("emulator", "--latency", "soon")
    assert refused.exit_code == 2
    assert "Invalid value for '--latency': 'soon' is not a duration" in refused.stderr


def test_the_banner_lists_technicians_to_assign(capsys: pytest.CaptureFixture[str]) -> None:
    from spapi_services.emulator.__main__ import _announce

    emu = ServicesEmulator(jobs=20, seed=5, port=8080)
    _announce(emu, as_json=True)
    facts = json.loads(capsys.readouterr().out)
    techs = {t.resource_id: t for t in emu.store.resources.values() if t.kind == "TECHNICIAN"}
    assert {t["resourceId"] for t in facts["technicians"]} == set(techs)
    for listed in facts["technicians"]:
        tech = techs[listed["resourceId"]]
        assert listed["storeId"] == tech.store_id
        assert listed["skills"] == sorted(tech.skills)
    _announce(emu, as_json=False)
    text = capsys.readouterr().out
    us = [t for t in facts["technicians"] if t["marketplaceId"] == US]
    assert f"Technicians in {US}, by store" in text
    assert f"  store {us[0]['storeId']}\n    {us[0]['resourceId']}  " in text
    assert "spapi-services technicians JOB_ID" in text
    others = [t for t in facts["technicians"] if t["marketplaceId"] != US]
    assert others
    assert all(t["resourceId"] not in text for t in others)  # the default marketplace's only


def test_emulator_serves_in_the_foreground_until_stopped() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "spapi_services.cli", "emulator", "--port", "0", "--jobs", "5",
         "--json", "--page-tokens", "offset", "--page-token-ttl", "2s",
         "--activity", "updated=30"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        facts = json.loads(proc.stdout.readline())
        assert facts["jobs"] == 5
        assert (facts["page_tokens"], facts["page_token_ttl"]) == ("offset", 2.0)
        assert facts["activity"]["updated_per_minute"] == 30.0
        assert facts["token_url"].startswith(facts["url"])
        address = urlsplit(facts["url"])
        with socket.create_connection((address.hostname, address.port), timeout=5):
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_the_demo_staffs_a_technician_who_is_free_not_only_on_shift(
    emulator: ServicesEmulator, taken: set[str]
) -> None:
    job = jobs_in(emulator, "PENDING_SCHEDULE", taken)
    job_id = job.service_job_id

    async def scenario() -> None:
        async with ServicesClient(
            emulator.credentials,
            endpoint=emulator.url,
            token_url=emulator.token_url,
            marketplace_id=US,
        ) as client:
            report = await client.appointments.slots_for_job(job_id)
            length = timedelta(minutes=job.duration)
            qualified = emulator.store.qualified_resources(job_id)
            # What merely being on shift would choose: the first free slot with a
            # qualified technician whose schedule covers it.  That technician takes a
            # break then.
            first, busy = next(
                (s.start_time, t.resource_id)
                for s in report.appointment_slots or ()
                if s.capacity and s.start_time is not None
                for t in qualified
                if t.covers(s.start_time, s.start_time + length)
            )
            end = first + length
            await client.reservations.create(
                busy,
                Reservation(
                    type="BREAK", availability=AvailabilityRecord(start_time=first, end_time=end)
                ),
            )
            start, technician = await _free_technician(client, emulator, job_id, report)
            assert (start, technician) != (first, busy)
            booked = await client.appointments.add(job_id, start_time=start)
            assert booked.appointment_id is not None
            warnings = await client.appointments.assign_resources(
                job_id, booked.appointment_id, [technician]
            )
            assert warnings == []

    asyncio.run(scenario())


def test_emulator_passes_its_own_usage_errors_through(run: Runner) -> None:
    result = run("emulator", "--jobs", "many")
    assert result.exit_code == 2
    assert "--jobs" in result.stderr


def test_emulator_help_is_in_the_style_of_every_command_with_its_defaults() -> None:
    def help_of(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", *args, "--help"], capture_output=True, text=True, check=True
        )
        return " ".join(done.stdout.split())

    text = help_of("spapi_services.cli", "emulator")
    other = help_of("spapi_services.cli", "jobs", "list")
    assert text.startswith("Usage: spapi-services emulator [OPTIONS]")
    assert other.startswith("Usage: spapi-services jobs list [OPTIONS]")
    for shown in ("--port INTEGER", "[default: 8080]", "--jobs INTEGER", "[default: 200]",
                  "--latency MS|MIN-MAX", "--env-file PATH", "-h, --help"):  # fmt: skip
        assert shown in text, shown
    assert "Durations are milliseconds" in text
    plain = help_of("spapi_services.emulator")
    assert plain.startswith("usage: python -m spapi_services.emulator")
    assert "spapi-services emulator" in plain
    # One table: the two command lines take the same options, with the same defaults.
    for setting in SETTINGS:
        assert setting.flag in text, setting.flag
        assert setting.flag in plain, setting.flag
        if setting.kind in ("int", "duration"):
            assert f"[default: {setting.default}]" in text
            assert f"(default: {setting.default})" in plain


_EXPORTED = [
    "SPAPI_CLIENT_ID",
    "SPAPI_CLIENT_SECRET",
    "SPAPI_REFRESH_TOKEN",
    "SPAPI_ENDPOINT",
    "SPAPI_TOKEN_URL",
    "SPAPI_MARKETPLACE_ID",
]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash to source the file")
def test_the_emulator_env_file_is_private_and_one_source_sets_up_another_shell(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / "emu.env"
    proc = subprocess.Popen(
        [sys.executable, "-m", "spapi_services.cli", "emulator", "--port", "0", "--jobs", "60",
         "--env-file", str(env_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        umask=0,  # the file must not rely on the user's umask to stay private
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        printed = []
        while not (line := proc.stdout.readline()).startswith("Press Ctrl+C"):
            assert line, "the emulator stopped before it was ready"
            printed.append(line.rstrip("\n"))
        exports = [line for line in printed if line.startswith("export ")]
        assert [line.split("=", 1)[0].removeprefix("export ") for line in exports] == _EXPORTED
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        assert env_file.read_text().splitlines() == exports

        # A second shell with none of the variables: one `source`, then any command.
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SPAPI_")}
        command = f'source {shlex.quote(str(env_file))} && exec "$0" -m spapi_services.cli ' + (
            "--json jobs list --since 95d --limit 3"
        )
        shell = subprocess.run(
            ["bash", "-c", command, sys.executable],
            env=clean,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shell.returncode == 0, shell.stderr
        found = json.loads(shell.stdout)
        assert found
        assert {job["marketplaceId"] for job in found} == {US}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)


def test_the_env_file_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("someone else's file\n")
    env_file = tmp_path / "emu.env"
    env_file.symlink_to(elsewhere)
    write_env_file(env_file, {"SPAPI_REFRESH_TOKEN": "Atzr|secret"})
    assert elsewhere.read_text() == "someone else's file\n"
    assert not env_file.is_symlink()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text() == "export SPAPI_REFRESH_TOKEN='Atzr|secret'\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "emu.env"]


def test_ctrl_c_during_a_sync_then_a_rerun_gives_exactly_every_job(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    db = tmp_path / "mirror.sqlite"
    emulator.faults.set("getServiceJobs", latency=0.1)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spapi_services.cli", "sync", "--db", str(db),
             "--since", "95d", "--windows", "1", "--quiet"],
            env={**os.environ, **run.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # A suite run in the background ignores SIGINT, and its children inherit that:
            # the child gets the default back, as a person's shell gives it.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while _rows(db) < 20 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        emulator.faults.clear()
    assert proc.returncode == 130, err
    assert "Interrupted" in err
    assert "Traceback" not in err
    us = {j.service_job_id for j in emulator.store.jobs.values() if j.marketplace_id == US}
    assert 0 < _rows(db) < len(us)

    again = run("--json", "sync", "--db", str(db), "--since", "95d")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["resumed"] is True
    conn = sqlite3.connect(db)
    try:
        ids = [r[0] for r in conn.execute("SELECT service_job_id FROM service_jobs")]
    finally:
        conn.close()
    assert sorted(ids) == sorted(us)


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM service_jobs").fetchone()[0])
    except sqlite3.OperationalError:  # the tables are not made yet
        return 0
    finally:
        conn.close()
