"""The emulator example: a program of its own, run as written."""

from __future__ import annotations

from pathlib import Path

from ._readme import as_script, block, run_script, without_settings


async def test_it_reads_a_job_and_survives_an_injected_503(tmp_path: Path) -> None:
    done = await run_script(as_script(block("emulator")), [], env=without_settings(), cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    fetched, retried = done.stdout.splitlines()
    assert fetched.endswith(" COMPLETED")
    assert retried == "1 503 answered and retried"
