"""``spapi-services demo`` end to end, and ``spapi-services emulator`` in the foreground."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from spapi_services.emulator import ServicesEmulator

from .conftest import US, Runner


def test_demo_runs_to_completion(run: Runner, tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite"
    result = run("demo", "--jobs", "200", "--latency", "5", "--db", str(db), env={
        # The demo needs no credentials: its emulator makes its own.
        "SPAPI_CLIENT_ID": None, "SPAPI_CLIENT_SECRET": None, "SPAPI_REFRESH_TOKEN": None,
    })  # fmt: skip
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.split())
    for step in (
        "1. Find a job waiting for service",
        "2. Book an appointment",
        "3. Assign the technician",
        "4. Upload proof of the visit",
        "5. Record the fulfilment",
        "6. Complete the job",
        "7. Mirror every job into SQLite",
        "8. Summary",
    ):
        assert step in text
    assert "COMPLETED" in text
    assert "rows in SQLite │ 200" in text
    assert "429s drawn by the sync │ 0" in text
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM service_jobs").fetchone()[0] == 200
    finally:
        conn.close()


def test_demo_refuses_a_bad_latency(run: Runner) -> None:
    result = run("demo", "--latency", "fast")
    assert result.exit_code == 2
    assert "milliseconds" in result.stderr


def test_emulator_serves_in_the_foreground_until_stopped() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "spapi_services.cli", "emulator", "--port", "0", "--jobs", "5",
         "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        facts = json.loads(proc.stdout.readline())
        assert facts["jobs"] == 5
        assert facts["token_url"].startswith(facts["url"])
        address = urlsplit(facts["url"])
        with socket.create_connection((address.hostname, address.port), timeout=5):
            pass
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err


def test_emulator_passes_its_own_usage_errors_through(run: Runner) -> None:
    result = run("emulator", "--jobs", "many")
    assert result.exit_code == 2
    assert "--jobs" in result.stderr


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
