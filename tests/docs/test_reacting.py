"""The reacting guide's ``on_change`` block, against the emulator (a SQLite mirror in a
folder of its own)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import pytest
from _pages import US, run_fragment

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.sync import SqliteSink

from ._docs import block


async def test_on_change_names_each_new_job_waiting_for_a_technician(
    emulator: ServicesEmulator,
    client: ServicesClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    names: dict[str, Any] = {"client": client}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        await run_fragment(block("reacting-on-change"), names)

    report = names["report"]
    lines = printed.getvalue().splitlines()
    assert lines[-1] == f"{report.changes} changes of {report.jobs} jobs stored"
    assert report.changes == report.jobs > 0
    # The first sync: every job stored is new, and those waiting are named.
    async with SqliteSink(tmp_path / "jobs.sqlite") as mirror:
        stored = [job async for job in mirror.iter_jobs()]
    assert len(stored) == report.jobs
    waiting = {j.service_job_id for j in stored if j.service_job_status == "NOT_SERVICED"}
    shown = {line.rsplit(" ", 1)[1] for line in lines[:-1]}
    assert shown == waiting
    assert waiting
    for job_id in waiting:
        assert emulator.store.jobs[job_id].marketplace_id == US
