"""The README's first look: the jobs waiting for an appointment, printed one per line."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _pages import US, load_module

import spapi_services
from spapi_services import ServicesClient
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
