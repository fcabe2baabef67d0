"""examples/emulator_tour.py: a program of its own, run as written."""

from __future__ import annotations

from pathlib import Path

from _pages import example, run_file, without_settings


async def test_it_reads_a_job_and_survives_an_injected_503(tmp_path: Path) -> None:
    done = await run_file(example("emulator_tour.py"), [], env=without_settings(), cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    fetched, retried = done.stdout.splitlines()
    assert fetched.endswith(" COMPLETED")
    assert retried == "1 503 answered and retried"
