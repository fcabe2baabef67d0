"""Running ``_plan_client.py`` processes: one, or several started at the same instant.

:func:`command` builds a client process's command line; :func:`run` starts the
processes, waits until every one has set up (``READY``), then tells them all to go at
once and collects their ``RESULT`` lines.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import Server

HERE = Path(__file__).resolve().parent

__all__ = ["command", "run"]


def command(scenario: str, server: Server, mode: str, **options: Any) -> list[str]:
    """The command line of one client process (options as ``_plan_client.py`` names them)."""
    line = [sys.executable, str(HERE / "_plan_client.py"), scenario, "--base-url", server.url]
    line += ["--mode", mode, "--creds", json.dumps(server.creds)]
    if server.ids_url:
        line += ["--ids-url", server.ids_url]
    for name, value in options.items():
        if value is None or value is False:
            continue
        flag = "--" + name.replace("_", "-")
        line += [flag] if value is True else [flag, str(value)]
    return line


def run(commands: Sequence[list[str]], timeout: float = 300.0) -> list[dict[str, Any]]:
    """Run the processes together (each must take ``--barrier``); their results in order.

    A process that fails gives ``{"failed": ...}`` in its place.
    """
    procs = [
        subprocess.Popen(
            [*c, "--barrier"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in commands
    ]
    try:
        ready = [_wait_ready(p) for p in procs]
        for proc, ok in zip(procs, ready, strict=True):
            if ok and proc.stdin is not None:
                proc.stdin.write("GO\n")
                proc.stdin.flush()
        give_up = time.monotonic() + timeout
        results = []
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=max(1.0, give_up - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
                results.append({"failed": f"timed out after {timeout:.0f} s"})
                continue
            results.append(_result(out, err, proc.returncode))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _wait_ready(proc: subprocess.Popen[str]) -> bool:
    assert proc.stdout is not None
    while True:
        line = proc.stdout.readline()
        if not line:
            return False
        if line.startswith("READY"):
            return True


def _result(out: str, err: str, code: int) -> dict[str, Any]:
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            outcome: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return outcome
    tail = (err or out).strip().splitlines()[-6:]
    return {"failed": f"exit {code}: " + " | ".join(tail)}
