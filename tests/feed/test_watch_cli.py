"""``spapi-services watch`` in a process of its own against the emulator: a line per
change, JSON lines, a resume file kept owner-only, Ctrl-C with the resume point saved."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from _emulators import emulators
from _pages import settings_env

from spapi_services.emulator import ServicesEmulator

from .conftest import US


@pytest_asyncio.fixture
async def emu() -> AsyncIterator[ServicesEmulator]:
    async with emulators(jobs=20, seed=5) as start:  # real time: the command's clock
        yield await start()


async def start_watch(emu: ServicesEmulator, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "error",
        "-m",
        "spapi_services.cli",
        "watch",
        "--interval",
        "0.2",
        *args,
        env=settings_env(emu),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def line_of(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    assert line, "watch ended without printing a change"
    return line.decode().rstrip("\n")


async def interrupt(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, err.decode()


def read(path: Path) -> str:
    return path.read_text()


def touch(emu: ServicesEmulator, index: int, status: str) -> str:
    job = emu.store.find_jobs(marketplace_id=US)[index]
    emu.store.set_job_status(job.service_job_id, status)
    return job.service_job_id


async def test_json_lines_and_a_resume_file_that_goes_on_after_ctrl_c(
    emu: ServicesEmulator, tmp_path: Path
) -> None:
    resume = tmp_path / "acme.resume"
    proc = await start_watch(emu, "--json", "--resume-file", str(resume))
    try:
        # The first poll asks from the moment the command started: wait for it, so the
        # change comes after.
        while emu.count("getServiceJobs", 200) == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        first = touch(emu, 0, "HOLD")
        change = json.loads(await line_of(proc))
    finally:
        code, err = await interrupt(proc)

    assert change["kind"] == "updated"
    assert change["job"]["serviceJobId"] == first
    assert change["job"]["serviceJobStatus"] == "HOLD"
    assert change["changeId"].startswith(first + ":")
    assert code == 0, err
    assert "resume point" in err
    assert stat.S_IMODE(os.stat(resume).st_mode) == 0o600
    assert read(resume).startswith("sjf1.")
    assert os.listdir(tmp_path) == ["acme.resume"]  # no temporary left

    second = touch(emu, 1, "CANCELLED")
    again = await start_watch(emu, "--resume-file", str(resume))
    try:
        text = await line_of(again)
    finally:
        code, err = await interrupt(again)
    fields = text.split()
    assert fields[2:] == ["updated", second, "CANCELLED", US]  # the first is not repeated
    assert code == 0, err


async def test_a_damaged_resume_file_is_refused_naming_the_option(
    emu: ServicesEmulator, tmp_path: Path
) -> None:
    resume = tmp_path / "broken.resume"
    resume.write_text("sjf1.not-a-token\n")
    proc = await start_watch(emu, "--resume-file", str(resume))
    _, raw = await asyncio.wait_for(proc.communicate(), timeout=30)
    err = raw.decode()
    assert proc.returncode == 2, err
    assert "--resume-file" in err
    assert emu.count("getServiceJobs") == 0
