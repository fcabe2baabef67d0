"""The buyer data guide's block, run with the names its prose introduces."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _mirror_scan import buyers_data, leaks, mirror_files, mode_of
from _pages import US, run_fragment

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.sync import BuyerKey, last_activity

from ._docs import block


async def test_the_mirror_keeps_buyers_encrypted_prunes_and_forgets_on_request(
    emulator: ServicesEmulator,
    client: ServicesClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MIRROR_KEY", BuyerKey.generate().export())
    started = datetime.now(UTC)
    # A buyer whose open job the sync will have stored (created before this machine's now).
    job = next(
        j
        for j in emulator.store.find_jobs(status="PENDING_SCHEDULE", marketplace_id=US)
        if j.created <= started - timedelta(minutes=10)
    )
    names: dict[str, Any] = {"client": client, "buyer_id": job.details["buyer"]["buyerId"]}

    await run_fragment(block("buyer-data"), names)

    db = tmp_path / "service_jobs.sqlite"
    assert mode_of(db) == 0o600
    records = [json.loads(j.fragment()) for j in emulator.store.find_jobs(marketplace_id=US)]
    assert leaks(mirror_files(db), buyers_data(records)) == []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT service_job_id, status, job FROM service_jobs ORDER BY service_job_id"
        ).fetchall()
    # The phone of the first job waiting, decrypted.
    first_waiting = next(job_id for job_id, status, _ in rows if status == "PENDING_SCHEDULE")
    expected = emulator.store.jobs[first_waiting].details["buyer"]["phone"]
    assert names["to_call"] == expected
    # The buyer forgotten: their job stays, without them.
    assert names["erased"] == 1
    theirs = json.loads(next(text for job_id, _, text in rows if job_id == job.service_job_id))
    assert "buyerId" not in theirs.get("buyer", {})
    assert "address" not in theirs["serviceLocation"]
    # Pruned: no closed job left whose last date is more than 30 days back.
    assert names["removed"] > 0
    cutoff = started - timedelta(days=30, minutes=1)
    for _, status, text in rows:
        if status in ("COMPLETED", "CANCELLED", "NOT_FULFILLABLE"):
            last = last_activity(json.loads(text))
            assert last is not None
            assert last >= cutoff
