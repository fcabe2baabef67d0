"""Headless Chromium for the tests: a throwaway profile, and a run that leaves nothing behind.

Chromium starts helper processes (the zygote, crashpad's handler) that can outlive the
browser by a moment and still write into the profile while it is being removed, which
made ``TemporaryDirectory`` fail now and then with "Directory not empty".  So every run
gets a session of its own, the whole session is killed once the browser is done, and the
profile is removed only then (tried again for a while should a straggler still write).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["end_session", "profile", "run"]

#: The flags every headless run takes: no profile of the user's, nothing from the network.
HEADLESS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def end_session(pid: int) -> None:
    """Kill every process of the session ``pid`` leads (the browser and its helpers)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@contextlib.contextmanager
def profile() -> Iterator[Path]:
    """An empty profile folder, removed after the block (and after its stragglers)."""
    path = Path(tempfile.mkdtemp(prefix="spapi-chromium-"))
    try:
        yield path
    finally:
        _remove(path)


def _remove(path: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                shutil.rmtree(path, ignore_errors=True)
                return
            time.sleep(0.1)


def run(chromium: str, args: Sequence[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with ``args`` and a fresh profile; its output as text."""
    with profile() as folder:
        command = [chromium, *HEADLESS, f"--user-data-dir={folder}", *args]
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            end_session(process.pid)
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
