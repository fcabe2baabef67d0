"""examples/watch_jobs.py: changes as they happen, then a second run resumed from the file."""

from __future__ import annotations

import asyncio
from pathlib import Path

from _emulators import emulators
from _pages import US, example, run_file, settings_env


async def test_the_example_reacts_and_resumes(tmp_path: Path) -> None:
    async with emulators(jobs=20, seed=5) as start:  # real time, as the script's clock
        emu = await start()
        store = emu.store
        first, second = store.find_jobs(marketplace_id=US)[:2]
        env = settings_env(emu, SPAPI_WATCH_LIMIT="1", SPAPI_WATCH_INTERVAL="0.2")

        async def change_after_first_poll(job_id: str, status: str, polls: int) -> None:
            while emu.count("getServiceJobs", 200) < polls:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            store.set_job_status(job_id, status)

        resume = tmp_path / "seller.resume"
        script = example("watch_jobs.py")
        done, _ = await asyncio.gather(
            run_file(script, [str(resume)], env=env, cwd=tmp_path),
            change_after_first_poll(first.service_job_id, "HOLD", 1),
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [f"job {first.service_job_id} is now HOLD"]
        assert resume.read_text().startswith("sjf1.")

        store.set_job_status(second.service_job_id, "CANCELLED")
        again = await run_file(script, [str(resume)], env=env, cwd=tmp_path)
        assert again.returncode == 0, again.stderr
        assert again.stdout.splitlines() == [f"job {second.service_job_id} is now CANCELLED"]
