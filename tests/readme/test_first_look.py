"""The README's first look: the jobs waiting for an appointment, printed one per line."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shlex
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _pages import US, as_script, load_module, run_script, without_settings

import spapi_services
from spapi_services import LwaCredentials, ServicesClient
from spapi_services.emulator import ServicesEmulator

from ._readme import block


async def test_it_prints_every_job_waiting_for_an_appointment(
    emulator: ServicesEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Local(ServicesClient):
        """The block's client, with the emulator's credentials and addresses."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(endpoint=emulator.url, token_url=emulator.token_url)
            super().__init__(emulator.credentials, *args, **kwargs)

    monkeypatch.setattr(spapi_services, "ServicesClient", Local)
    module = load_module(block("first-look"))  # as imported: main() is not run yet
    assert emulator.count() == 0

    printed = io.StringIO()
    started = datetime.now(UTC)
    with contextlib.redirect_stdout(printed):
        await module["main"]()
    ended = datetime.now(UTC)

    # The block counts back from this machine's clock, which the emulator's world runs
    # ahead of: every job created since 30 days before the end, none before the start.
    waiting = emulator.store.find_jobs(status="PENDING_SCHEDULE", marketplace_id=US)
    surely = {j.service_job_id for j in waiting if j.created >= ended - timedelta(days=30)}
    maybe = {j.service_job_id for j in waiting if j.created >= started - timedelta(days=30)}
    lines = printed.getvalue().splitlines()
    printed_ids = [line.split(" ", 1)[0] for line in lines]
    assert len(printed_ids) == len(set(printed_ids))
    assert lines == [f"{i} {emulator.store.jobs[i].created:%Y-%m-%d}" for i in printed_ids]
    assert surely <= set(printed_ids) <= maybe
    assert surely


async def test_it_runs_against_the_emulator_with_only_its_printed_exports(
    tmp_path: Path,
) -> None:
    """End to end over real sockets: `spapi-services emulator` in a process of its own, its
    export lines sourced as printed, and the block run unchanged: ServicesClient() takes
    the endpoint, token URL and credentials from those variables alone."""
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "spapi_services.cli", "emulator", "--port", "0",
        "--jobs", "60", "--seed", "3",
        env=without_settings(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert server.stdout is not None
    try:
        printed: list[str] = []
        while not printed or not printed[-1].startswith("Press Ctrl+C"):
            line = await asyncio.wait_for(server.stdout.readline(), 60)
            assert line, "the emulator stopped before it was ready"
            printed.append(line.decode())
        exports = [line for line in printed if line.startswith("export SPAPI_")]
        assert len(exports) == 6
        (tmp_path / "emulator.env").write_text("".join(exports), encoding="utf-8")
        settings = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in exports
        )

        started = datetime.now(UTC)
        done = await run_script(
            as_script(block("first-look")),
            [],
            env=without_settings(),
            cwd=tmp_path,
            source=tmp_path / "emulator.env",
        )
        ended = datetime.now(UTC)
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""

        # What the emulator holds, asked with every setting given as an argument.
        async with ServicesClient(
            LwaCredentials(
                settings["SPAPI_CLIENT_ID"],
                settings["SPAPI_CLIENT_SECRET"],
                settings["SPAPI_REFRESH_TOKEN"],
            ),
            endpoint=settings["SPAPI_ENDPOINT"],
            token_url=settings["SPAPI_TOKEN_URL"],
            marketplace_id=US,
        ) as client:
            waiting = [
                job
                async for job in client.service_jobs.list(
                    created_after=started - timedelta(days=31), statuses=["PENDING_SCHEDULE"]
                )
            ]
        surely = {j.service_job_id for j in waiting if j.create_time >= ended - timedelta(days=30)}
        maybe = {j.service_job_id for j in waiting if j.create_time >= started - timedelta(days=30)}
        lines = done.stdout.splitlines()
        ids = {line.split(" ", 1)[0] for line in lines}
        assert len(ids) == len(lines)
        assert surely <= ids <= maybe
        assert surely
    finally:
        server.send_signal(signal.SIGTERM)
        await asyncio.wait_for(server.wait(), 30)
