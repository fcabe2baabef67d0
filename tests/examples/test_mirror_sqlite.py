"""examples/mirror_sqlite.py: a mirror without buyers, then a later run of what changed."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from _pages import US, example, run_file, settings_env

from spapi_services.emulator import ServicesEmulator


async def test_it_mirrors_the_jobs_without_buyers_and_counts_them_by_status(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    started = datetime.now(UTC)
    done = await run_file(
        example("mirror_sqlite.py"), ["90"], env=settings_env(emulator), cwd=tmp_path
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    with contextlib.closing(sqlite3.connect(tmp_path / "service_jobs.sqlite")) as db:
        rows = db.execute("SELECT service_job_id, status, job FROM service_jobs").fetchall()
    us = {j.service_job_id: j for j in emulator.store.find_jobs(marketplace_id=US)}
    # The sync runs up to this machine's "now", which the emulator's world runs ahead of.
    assert {i for i, j in us.items() if j.created <= started} <= {row[0] for row in rows}
    for _, _, text in rows:
        stored = json.loads(text)
        # buyer_data="drop": the job's business stays, the buyer's personal data does not.
        assert {"buyerId", "name", "phone"}.isdisjoint(stored.get("buyer", {}))
        assert "address" not in stored.get("serviceLocation", {})
    by_status = Counter(status for _, status, _ in rows)
    first, *counts = done.stdout.splitlines()
    assert first.startswith(f"{len(rows)} jobs stored from ")
    assert counts == [f"  {status}: {n}" for status, n in sorted(by_status.items())]

    again = await run_file(
        example("mirror_sqlite.py"), [], env=settings_env(emulator), cwd=tmp_path
    )

    assert again.returncode == 0, again.stderr
    # Nothing changed in the emulator's stopped world: one request for what changed since
    # (the few jobs in the overlap before the checkpoint stored again), the same counts.
    assert again.stdout.splitlines()[0].endswith(" jobs stored from 1 requests")
    assert again.stdout.splitlines()[1:] == counts
