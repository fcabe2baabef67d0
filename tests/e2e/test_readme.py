"""The README's promises: its runnable examples run, and its commands exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _python_blocks(section: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_emulator_example_runs_as_written() -> None:
    (example, _fixtures) = _python_blocks(_section("Testing your application against the emulator"))
    done = subprocess.run(
        [sys.executable, "-c", example], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].endswith("COMPLETED")
    assert lines[1] == "1 503 answered and retried"


def test_the_first_run_commands_are_the_ones_ci_and_the_cli_use() -> None:
    first_run = _section("First run")
    assert "spapi-services demo" in first_run
    assert ".venv/bin/python -m pytest" in first_run
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest" in ci
    assert '-e ".[test]"' in ci
    assert '".[test]"' in first_run
