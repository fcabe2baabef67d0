"""A reader that goes away (``| head -1``) stops a command quietly, with 141 (128 +
SIGPIPE, as a shell reports for ``cat`` or ``git`` stopped so); ``watch`` says on stderr
that it is running, what it watches and since when; its times keep one width."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest

from spapi_services._pipes import EXIT_PIPE_CLOSED
from spapi_services.cli import _output
from spapi_services.cli._output import Output, _Console, fmt_instant
from spapi_services.emulator import ServicesEmulator

from .conftest import US, Runner

WATCH_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ  ")


def start(runner: Runner, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **runner.env, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "spapi_services.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_watch_json_into_a_closed_pipe_stops_quietly_with_141(
    emulator: ServicesEmulator, run: Runner
) -> None:
    # 30 days back: the first poll finds many jobs, far more JSON than a pipe holds, so
    # the command is still writing when its reader goes.
    with start(run, "watch", "--json", "--since", "30d", "--interval", "0.5") as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            first = json.loads(proc.stdout.readline())
            proc.stdout.close()  # | head -1
            proc.wait(timeout=60)
        finally:
            if proc.returncode is None:
                proc.kill()
        err = proc.stderr.read().decode()
    assert first["job"]["marketplaceId"] == US
    assert proc.returncode == EXIT_PIPE_CLOSED == 141
    assert "Broken pipe" not in err
    assert "error" not in err.lower()
    assert "Exception ignored" not in err
    # --json: the one note on stderr is JSON too; stdout held only changes.
    (note,) = [json.loads(line) for line in err.splitlines()]
    assert note["note"] == "watching"
    assert note["marketplace_ids"] == [US]
    assert note["since"].endswith("Z")


def test_watch_says_on_stderr_that_it_is_running_and_keeps_one_time_width(
    emulator: ServicesEmulator, run: Runner
) -> None:
    with start(run, "watch", "--since", "30d", "--interval", "0.5") as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            said = proc.stderr.readline().decode()
            lines = [proc.stdout.readline().decode() for _ in range(20)]
        finally:
            proc.send_signal(signal.SIGINT)
            _, rest = proc.communicate(timeout=60)
    assert re.fullmatch(
        rf"watching {US} for changes since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\dZ; Ctrl-C stops\n",
        said,
    ), said
    for line in lines:
        assert WATCH_TIME.match(line), line
    assert proc.returncode == 0, rest.decode()


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_table_into_a_closed_pipe_stops_with_141_not_riches_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    silenced: list[bool] = []
    monkeypatch.setattr(_output, "silence_stdout", lambda: silenced.append(True))
    out = Output(as_json=False, out=_Console(file=_ClosedPipe()))
    with pytest.raises(SystemExit) as exited:
        out.say("a line for a reader that has gone")
    assert exited.value.code == 141
    assert silenced == [True]
    # Output's own consoles are these, for stdout and stderr alike.
    default = Output(as_json=False)
    assert isinstance(default.out, _Console)
    assert isinstance(default.err, _Console)


def test_json_into_a_closed_pipe_is_no_failure_to_report(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    def closed(self: Any, data: Any) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(Output, "json", closed)
    result = run("--json", "jobs", "list", "--since", "30d", "--limit", "1")
    assert result.exit_code == 141
    assert "Broken pipe" not in result.stderr
    assert '"error"' not in result.stderr + result.stdout


def test_times_shown_one_under_another_keep_one_width() -> None:
    on_the_minute = datetime(2026, 12, 7, 23, 31, tzinfo=UTC)
    assert fmt_instant(on_the_minute) == "2026-12-07 23:31:00Z"
    assert fmt_instant(on_the_minute.replace(second=2)) == "2026-12-07 23:31:02Z"


def test_a_table_column_of_times_keeps_one_width() -> None:
    buffer = io.StringIO()
    out = Output(as_json=False, out=_Console(file=buffer, width=120))
    on_the_minute = datetime(2026, 12, 7, 23, 31, tzinfo=UTC)
    out.table(
        None,
        ["seen", "slot"],
        [
            (on_the_minute, on_the_minute),
            (on_the_minute.replace(second=2), datetime(2026, 12, 8, 15, 0, tzinfo=UTC)),
        ],
    )
    shown = buffer.getvalue()
    # The column with seconds shows them on every row; the slot column stays to the minute.
    assert "2026-12-07 23:31:00Z" in shown
    assert "2026-12-07 23:31:02Z" in shown
    assert "2026-12-08 15:00Z" in shown
    assert "2026-12-07 23:31Z" in shown


def test_a_failure_shown_to_a_closed_stderr_stops_with_141(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A failure's message goes to stderr through the same console: a reader gone from
    # stderr stops the command with 141 too, not rich's 1.
    from spapi_services.cli import _failures

    monkeypatch.setattr(_output, "silence_stdout", lambda: None)
    monkeypatch.setattr(_failures, "error_console", lambda: _Console(file=_ClosedPipe()))
    failure = _failures.Failure(kind="api", label="Error", message="something went wrong")
    with pytest.raises(SystemExit) as exited:
        failure.show()
    assert exited.value.code == 141
