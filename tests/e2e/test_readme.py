"""The README's promises: its runnable examples run, and its commands exist."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import spapi_services
from spapi_services import LwaCredentials
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.store import AvailabilityWindow, ResourceRecord

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_emulator_example_runs_as_written() -> None:
    (example, _fixtures) = _python_blocks(_section("Testing your application against the emulator"))
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("COMPLETED")
    assert lines[1] == "1 503 answered and retried"


def test_the_first_run_commands_are_the_ones_ci_and_the_cli_use() -> None:
    first_run = _section("First run")
    assert "spapi-services demo" in first_run
    assert ".venv/bin/python -m pytest" in first_run
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in ci
    assert '-e ".[test]"' in ci
    assert '".[test]"' in first_run


def _quickstart_world(emu: ServicesEmulator) -> None:
    """Give the emulator the job and technician the quickstart names."""
    store = emu.store
    job = store.find_jobs(status="PENDING_SCHEDULE", marketplace_id="ATVPDKIKX0DER")[0]
    del store.jobs[job.service_job_id]
    job.service_job_id = "job-1"
    job.invalidate()
    store.add_job(job)
    now = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    always = AvailabilityWindow(
        start=now - timedelta(days=1),
        end=now,
        recurrence_end=now + timedelta(days=400),
    )
    store.resources["tech-7"] = ResourceRecord(
        resource_id="tech-7",
        name="Quinn Example",
        store_id=job.store_id,
        kind="TECHNICIAN",
        skills=frozenset(job.required_skills),
        location_types=frozenset({job.location_type}),
        schedule=[always],
    )
    store.stores[job.store_id].technicians.append("tech-7")


async def test_the_quickstart_runs_as_written_against_the_emulator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (code,) = _python_blocks(_section("Quickstart"))
    literal = dict(re.findall(r'(client_id|client_secret|refresh_token)="([^"]*)"', code))
    credentials = LwaCredentials(**literal)
    body, run_line = code.rstrip().rsplit("\n", 1)
    assert run_line == "asyncio.run(main())"
    async with ServicesEmulator(jobs=80, seed=11, credentials=credentials) as emu:
        _quickstart_world(emu)

        class Local(spapi_services.ServicesClient):
            """The README's client, pointed at the emulator instead of Amazon."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, endpoint=emu.url, token_url=emu.token_url, **kwargs)

        monkeypatch.setattr(spapi_services, "ServicesClient", Local)
        namespace: dict[str, Any] = {"__name__": "quickstart"}
        exec(compile(body, "README.md quickstart", "exec"), namespace)
        await namespace["main"]()

        job = emu.store.jobs["job-1"]
        booked = job.active_appointment()
        assert booked is not None
        assert [tid for tid, _ in booked.technicians] == ["tech-7"]
    assert capsys.readouterr().err == ""
