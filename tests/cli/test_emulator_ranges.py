"""``spapi-services emulator`` (and ``python -m spapi_services.emulator``): every number,
address and fault is checked as the command line is read, refused in click's words
naming the option (never a traceback, never a Python field name, never silently
ignored), and a port in use is one line that says what to do."""

from __future__ import annotations

import socket

import click.testing
import pytest

from spapi_services.cli import _emulator as emulator_module
from spapi_services.cli import cli
from spapi_services.emulator.__main__ import build_parser, serve


def one_line(text: str) -> str:
    return " ".join(text.split())


def emulator_command(*args: str) -> click.testing.Result:
    return click.testing.CliRunner().invoke(cli, ["emulator", *args], catch_exceptions=False)


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("--port", "99999", "99999 is not in the range 0<=x<=65535."),
        ("--port", "-1", "-1 is not in the range 0<=x<=65535."),
        ("--jobs", "-5", "-5 is not in the range x>=0."),
        ("--token-ttl", "0", "0 is not in the range x>=1."),
        ("--upload-ttl", "-3", "-3 is not in the range x>=1."),
        ("--error-rate", "2", "2 is not in the range 0<=x<=1."),
        ("--drop-rate", "-1", "-1 is not in the range 0<=x<=1."),
        ("--rate-scale", "0", "0 is not in the range x>0."),
        ("--error-status", "200", "200 is not 429 or a 5xx status (500 to 599)."),
        ("--host", "0.0.0.0", "'0.0.0.0' is not a loopback address"),
        (
            "--fault",
            "getServiceJob:latency=5",
            "'getServiceJob:latency=5': 'getServiceJob' is no operation of the Services "
            "API; did you mean getServiceJobs?",
        ),
        (
            "--fault",
            "getservicejobs:latency=5",
            "'getservicejobs:latency=5': 'getservicejobs' is no operation of the Services "
            "API; did you mean getServiceJobs?",
        ),
        (
            "--fault",
            "getServiceJobs:latncy=5",
            "'getServiceJobs:latncy=5': unknown option 'latncy'; did you mean latency?",
        ),
        (
            "--fault",
            "getServiceJobs:latency=x",
            "'getServiceJobs:latency=x': latency='x' is not a duration",
        ),
        (
            "--fault",
            "getServiceJobs:error_rate=3",
            "'getServiceJobs:error_rate=3': error_rate: must be between 0 and 1",
        ),
        (
            "--fault",
            "getServiceJobs:count=two",
            "'getServiceJobs:count=two': count='two' is not a whole number",
        ),
    ],
)
def test_a_bad_value_is_refused_in_clicks_words_naming_the_option(
    capsys: pytest.CaptureFixture[str], option: str, value: str, rule: str
) -> None:
    result = emulator_command(option, value)
    assert result.exit_code == 2
    assert f"Error: Invalid value for '{option}': {rule}" in one_line(result.stderr)
    assert "Traceback" not in result.stderr
    python_name = option.lstrip("-").replace("-", "_") + ":"
    assert f"error: {python_name}" not in result.stderr
    # python -m spapi_services.emulator refuses it the same way, in argparse's frame.
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([option, value])
    assert exited.value.code == 2
    assert f"error: argument {option}: {rule}" in one_line(capsys.readouterr().err)


def test_the_unknown_operation_message_lists_every_name_a_fault_may_take() -> None:
    result = emulator_command("--fault", "frobnicate:latency=5")
    assert result.exit_code == 2
    message = one_line(result.stderr)
    assert "did you mean" not in message
    for name in ("getServiceJobs", "createServiceDocumentUploadDestination", "token", "upload"):
        assert name in message


@pytest.mark.parametrize(
    "args",
    [
        ["--port", "0", "--jobs", "0"],
        ["--port", "65535", "--error-rate", "1", "--drop-rate", "0", "--error-status", "429"],
        ["--host", "::1", "--rate-scale", "0.5", "--fault", "*:latency=5"],
        ["--fault", "token:drop_rate=0.5", "--fault", "upload:error_status=500"],
    ],
)
def test_values_at_the_edges_are_taken_by_both_command_lines(args: list[str]) -> None:
    seen: list[object] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(emulator_module, "serve", lambda values: seen.append(values) or 0)
        result = emulator_command(*args)
    assert result.exit_code == 0, result.stderr
    assert len(seen) == 1
    build_parser().parse_args(args)  # no SystemExit


def test_a_port_in_use_is_one_line_that_suggests_port_0(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = serve(build_parser().parse_args(["--port", str(port), "--jobs", "1"]))
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.startswith(f"error: --port {port}: the port is already in use")
    assert "--port 0" in err
    assert "Errno" not in err
