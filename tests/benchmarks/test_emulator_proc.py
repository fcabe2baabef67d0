"""benchmarks/_emulator_proc.py, the emulator process the benchmarks measure against:
its page tokens and its activity, taken as ``spapi-services emulator`` takes them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "_emulator_proc.py"


@contextmanager
def emulator_process(*args: str) -> Iterator[dict[str, Any]]:
    """The script in its own process, as the benchmarks run it; its READY facts (how
    the emulator it built pages and changes, read from the emulator itself)."""
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--jobs", "20", "--no-limits", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("READY "), proc.stderr.read() if proc.stderr else ""
        yield json.loads(line.removeprefix("READY "))
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def job_ids(facts: dict[str, Any]) -> list[str]:
    with urllib.request.urlopen(facts["control"] + "/__jobs", timeout=10) as answer:
        found: list[str] = json.loads(answer.read())
    return found


def test_by_default_keyset_tokens_and_a_still_world() -> None:
    with emulator_process() as facts:
        assert facts["page_tokens"] == "keyset"
        assert facts["activity"] is None
        assert len(job_ids(facts)) == facts["jobs"] == 20


def test_offset_tokens_and_an_activity_reach_the_emulator() -> None:
    with emulator_process("--page-tokens", "offset", "--activity", "created=6000") as facts:
        assert facts["page_tokens"] == "offset"
        assert facts["activity"] == {
            "created_per_minute": 6000.0,
            "updated_per_minute": 0.0,
            "marketplace_id": None,
        }


def test_a_bad_activity_is_refused_as_the_command_line_refuses_it() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--activity", "speed=3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "argument --activity: 'speed=3' is not created=N or updated=N" in done.stderr
    assert done.stdout == ""
