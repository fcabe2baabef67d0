"""examples/several_sellers.py: one client per seller, one shared session, side by side."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from _pages import US, example, run_file, settings_env

from spapi_services.emulator import ServicesEmulator


async def test_each_seller_gets_its_own_token_and_usage_plan(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    second = "Atzr|a-second-selling-partner"
    emulator.auth.add_refresh_token(second)
    # One request's worth of plan per seller, never refilled (the emulator's clock stands
    # still): two sellers drawing on one plan would be throttled.
    emulator.limits.set("getServiceJobs", rate=0.001, burst=1)
    tokens = {"acme": emulator.credentials.refresh_token, "globex": second}

    done = await run_file(
        example("several_sellers.py"),
        [],
        env=settings_env(emulator, SPAPI_REFRESH_TOKENS=json.dumps(tokens)),
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    since = emulator.clock.now() - timedelta(days=90)
    waiting = [
        j
        for j in emulator.store.find_jobs(status="PENDING_SCHEDULE", marketplace_id=US)
        if j.created >= since
    ]
    assert 0 < len(waiting) <= 20  # one page each
    assert sorted(done.stdout.splitlines()) == [
        f"acme: {len(waiting)} jobs waiting for an appointment",
        f"globex: {len(waiting)} jobs waiting for an appointment",
    ]
    assert emulator.traffic.tokens_issued == 2
    assert emulator.count("getServiceJobs", 200) == 2
    assert emulator.count("getServiceJobs", 429) == 0
