"""The command line as a person uses it: local times, hosts that cannot be reached, errors
as JSON, options named as typed, warnings once, counts in words, one way to call the API."""

from __future__ import annotations

import inspect
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import click.testing
import pytest

from spapi_services.cli import cli
from spapi_services.cli._app import call_api, json_or
from spapi_services.cli._failures import Reach, explain, option_names, translate
from spapi_services.emulator import ServicesEmulator
from spapi_services.errors import ApiConnectionError, NotFoundError, TokenEndpointUnreachableError

from .conftest import US, Runner, jobs_in, staffable


def one_line(text: str) -> str:
    return " ".join(text.split())


def z(value: datetime) -> str:
    """A time as a person would type it in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_errors(stderr: str) -> list[dict[str, Any]]:
    """The ``{"error": ...}`` objects among the JSON lines on stderr."""
    found = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    return [item["error"] for item in found if "error" in item]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port that refuses connections (bound, never listening, held by the test)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# --- 1. a time without an offset ------------------------------------------------------------


@pytest.mark.usefixtures("new_york")
def test_a_start_without_an_offset_is_local_time_and_the_instant_is_shown(
    run: Runner, emulator: ServicesEmulator, taken: set[str]
) -> None:
    job = jobs_in(emulator, "PENDING_SCHEDULE", taken)
    # Nine in the morning, three days ahead, on New York's clocks (TZ is set).
    local = (datetime.now() + timedelta(days=3)).replace(hour=9, minute=0, second=0, microsecond=0)
    typed = local.strftime("%Y-%m-%dT%H:%M")
    meant = local.astimezone(UTC)
    result = run("appointments", "add", job.service_job_id, "--start", typed)
    assert result.exit_code == 0, result.stderr
    booked = emulator.store.jobs[job.service_job_id].active_appointment()
    assert booked is not None
    assert booked.start == meant
    err = one_line(result.stderr)
    assert f"--start {typed} is local time (E" in err
    assert meant.strftime("%Y-%m-%d %H:%MZ") in err


@pytest.mark.usefixtures("new_york")
def test_with_json_the_local_times_are_reported_as_json_notes(
    run: Runner, emulator: ServicesEmulator, taken: set[str]
) -> None:
    job = jobs_in(emulator, "PENDING_SCHEDULE", taken)
    day = (datetime.now() + timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = day.strftime("%Y-%m-%d"), (day + timedelta(days=1)).strftime("%Y-%m-%d")
    result = run(
        "--json", "appointments", "slots", job.service_job_id, "--start", start, "--end", end
    )
    assert result.exit_code == 0, result.stderr
    notes = [json.loads(line) for line in result.stderr.splitlines()]
    assert [(n["option"], n["input"]) for n in notes] == [("--start", start), ("--end", end)]
    assert notes[0]["instant"] == day.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert json.loads(result.stdout)["startTime"].startswith(notes[0]["instant"][:16])


def test_help_of_a_command_with_times_gives_the_rule(run: Runner) -> None:
    text = one_line(run("appointments", "add", "--help").stdout)
    assert "without one, a time or a date (2026-12-01: midnight) is local time (TZ" in text
    assert "--start TIME" in text


# --- 2. a host that cannot be reached -------------------------------------------------------


def test_an_unreachable_api_says_which_host_and_port_and_asks_after_the_emulator(
    run: Runner, closed_port: int
) -> None:
    result = run("jobs", "get", "12345678901234", env={
        "SPAPI_ENDPOINT": f"http://127.0.0.1:{closed_port}",
    })  # fmt: skip
    assert result.exit_code == 1
    err = one_line(result.stderr)
    assert f"Error: cannot reach 127.0.0.1:{closed_port} (the API)" in err
    assert "is the emulator running there?" in err
    assert f"`spapi-services emulator --port {closed_port}`" in err
    assert "--endpoint (SPAPI_ENDPOINT)" in err
    assert "refused the credentials" not in err


def test_an_unreachable_remote_host_asks_after_the_network_not_the_emulator() -> None:
    cause = ApiConnectionError("getServiceJobs: could not connect", host="api.example")
    reach = Reach("https://api.example:8443", "https://lwa.example/o2", token_url_given=True)
    failure = explain(cause, reach=reach)
    assert failure is not None
    assert failure.message == "cannot reach api.example:8443 (the API)"
    text = one_line(" ".join(failure.lines))
    assert "Check the network, and --endpoint (SPAPI_ENDPOINT) / --region." in text
    assert "emulator" not in text


def test_a_token_endpoint_that_cannot_be_reached_is_not_refused_credentials() -> None:
    cause = TokenEndpointUnreachableError(
        "Login with Amazon failed: could not reach api.example (ClientConnectorError)",
        host="api.example",
    )
    reach = Reach(
        "http://127.0.0.1:8080", "https://api.example/auth/o2/token", token_url_given=True
    )
    failure = explain(cause, reach=reach)
    assert failure is not None
    assert failure.exit_code == 1
    assert failure.to_json()["error"] == {
        "kind": "unreachable",
        "message": "cannot reach api.example:443 (Login with Amazon's token URL)",
        "host": "api.example:443",
        "service": "token",
        "detail": str(cause),
    }


def test_a_local_endpoint_without_a_token_url_gets_a_hint(
    run: Runner, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Amazon's token URL must never be called from a test: the default points nowhere.
    nowhere = f"http://127.0.0.1:{closed_port}/auth/o2/token"
    monkeypatch.setattr("spapi_services.cli._app.DEFAULT_TOKEN_URL", nowhere)
    monkeypatch.setattr("spapi_services._client.DEFAULT_TOKEN_URL", nowhere)
    result = run("jobs", "get", "12345678901234", env={"SPAPI_TOKEN_URL": None})
    assert result.exit_code == 1
    err = one_line(result.stderr)
    assert f"Error: cannot reach 127.0.0.1:{closed_port} (Login with Amazon's token URL)" in err
    assert "refused the credentials" not in err
    assert "--endpoint is on this machine but the token URL is still Amazon's" in err
    assert "--token-url" in err
    assert "spapi-services emulator" in err


# --- 3. errors as JSON ------------------------------------------------------------------------


def test_with_json_an_api_error_is_json_on_stderr(run: Runner) -> None:
    result = run("--json", "jobs", "get", "99999999999999")
    assert result.exit_code == 1
    assert result.stdout == ""
    [error] = json_errors(result.stderr)
    assert error["kind"] == "api_error"
    assert error["status"] == 404
    assert error["operation"] == "getServiceJobByServiceJobId"
    assert error["codes"] == ["NotFound"]
    assert error["errors"][0]["message"] == "Job not found for jobId 99999999999999"
    assert re.fullmatch(r"[0-9a-f-]{36}", error["requestId"])
    assert error["support"]["request_id"] == error["requestId"]
    assert error["support"]["time"].endswith("Z")


def test_with_json_a_refused_argument_is_json_with_its_rule(
    run: Runner, emulator: ServicesEmulator
) -> None:
    before = emulator.count()
    result = run("jobs", "cancel", "12345678901234", "--reason", "not valid", "--json")
    assert result.exit_code == 2
    [error] = json_errors(result.stderr)
    assert error["kind"] == "invalid_argument"
    assert error["option"] == "--reason"
    assert error["rule"] == "'not valid' does not match the pattern ^[A-Z0-9_]*$"
    assert error["sent"] is False
    assert emulator.count() == before


def test_with_json_a_usage_error_is_json_too(run: Runner) -> None:
    result = run("jobs", "list", "--since", "1d", "--status", "NOPE", "--json")
    assert result.exit_code == 2
    [error] = json_errors(result.stderr)
    assert error["kind"] == "usage"
    assert error["option"] == "--status"
    assert "NOPE" in error["message"]


def test_with_json_missing_credentials_are_json(run: Runner) -> None:
    result = run("--json", "jobs", "get", "1", env={"SPAPI_REFRESH_TOKEN": None})
    assert result.exit_code == 2
    [error] = json_errors(result.stderr)
    assert error["kind"] == "setup"
    assert "SPAPI_REFRESH_TOKEN" in error["message"]


# --- 4. messages name the options ---------------------------------------------------------------


def test_an_sdk_refusal_names_the_option_not_the_argument(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    mystery = tmp_path / "proof"  # no suffix, and bytes of no known type
    mystery.write_bytes(b"just some text")
    before = emulator.count()
    result = run("documents", "upload", str(mystery))
    assert result.exit_code == 2
    err = one_line(result.stderr)
    assert "Invalid argument: --content-type: cannot tell the document's type" in err
    assert "pass --content-type one of" in err
    assert "content_type" not in err
    assert emulator.count() == before


def test_a_missing_marketplace_names_the_option_and_the_variable(run: Runner) -> None:
    result = run("jobs", "list", "--since", "1d", env={"SPAPI_MARKETPLACE_ID": None})
    assert result.exit_code == 2
    err = one_line(result.stderr)
    assert "--marketplace: required for this operation" in err
    assert "(give --marketplace ID or set SPAPI_MARKETPLACE_ID)" in err
    assert "marketplace_id" not in err
    assert "ServicesClient" not in err


def _context(command: click.Command, args: list[str]) -> click.Context:
    root = click.Context(cli, info_name="spapi-services")
    return command.make_context(command.name, args, parent=root)


def test_names_come_from_the_commands_own_options(tmp_path: Path) -> None:
    schedules = cli.commands["schedules"]
    assert isinstance(schedules, click.Group)
    update = schedules.commands["update"]
    ctx = _context(update, ["R1", "--start", "+1d", "--end", "+2d", "--repeat-until", "+30d",
                            "--days", "MON,TUE"])  # fmt: skip
    names = option_names(ctx)
    assert translate("schedules[0].recurrence.end_time: must be after end_time", names) == (
        "--repeat-until: must be after --end"
    )
    assert translate("schedules[0].recurrence.days_of_week[1]: 'X' is not one of A", names) == (
        "--days #2: 'X' is not one of A"
    )
    # English stays English, and the user's own values are never renamed.
    assert translate("end_time: the window may span at most 90 days", names) == (
        "--end: the window may span at most 90 days"
    )
    assert translate("capacity: 'end_time' is odd", names) == "--capacity: 'end_time' is odd"

    records = tmp_path / "records.json"
    records.write_text("[]")
    from_file = option_names(_context(update, ["R1", "--file", str(records)]))
    # Records from a file: the option that was given, the record, and its field.
    update_names = {
        **from_file.params,
        "schedules": [p for p in update.params if p.name == "records_file"],
    }
    assert (
        translate(
            "schedules[2].capacity: must be at least 1",
            type(from_file)(update_names, from_file.given),
        )
        == "--file #3 (capacity): must be at least 1"
    )


# --- 5. warnings once ---------------------------------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_an_api_warning_is_printed_once_with_its_details(
    run: Runner, emulator: ServicesEmulator, taken: set[str], debug: bool
) -> None:
    job, appointment, technician = staffable(emulator, taken)
    # A break over the appointment: assigning the technician then overbooks them.
    reserved = run(
        "reservations", "create", technician.resource_id, "--type", "BREAK",
        "--start", z(appointment.start), "--end", z(appointment.end),
    )  # fmt: skip
    assert reserved.exit_code == 0, reserved.stderr
    result = run(
        *(["--debug"] if debug else []), "appointments", "assign",
        job.service_job_id, appointment.appointment_id, technician.resource_id,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("RESOURCES_OVERBOOKED") == 1
    [line] = [line for line in result.stderr.splitlines() if "RESOURCES_OVERBOOKED" in line]
    assert line.startswith("warning RESOURCES_OVERBOOKED: Resources overbooked")
    assert f"({technician.resource_id})" in line


def test_with_json_warnings_are_in_the_result_only(
    run: Runner, emulator: ServicesEmulator, taken: set[str]
) -> None:
    job, appointment, technician = staffable(emulator, taken)
    reserved = run(
        "reservations", "create", technician.resource_id, "--type", "TRAINING",
        "--start", z(appointment.start), "--end", z(appointment.end),
    )  # fmt: skip
    assert reserved.exit_code == 0, reserved.stderr
    result = run(
        "--json", "appointments", "assign", job.service_job_id, appointment.appointment_id,
        technician.resource_id,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert [w["code"] for w in json.loads(result.stdout)["warnings"]] == ["RESOURCES_OVERBOOKED"]
    assert "RESOURCES_OVERBOOKED" not in result.stderr


# --- 8. a first sync, and counts -------------------------------------------------------------


def test_a_first_sync_without_since_says_what_to_do_before_anything_starts(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    before = emulator.count()
    result = run("sync", "--db", str(tmp_path / "new.sqlite"))
    assert result.exit_code == 2
    err = one_line(result.stderr)
    assert f"holds nothing yet for {US}: give --since" in err
    assert "e.g. --since 90d" in err
    assert "Syncing" not in result.output
    assert emulator.count() == before
    assert not (tmp_path / "new.sqlite").exists()


def test_a_sync_of_one_job_says_one_job_in_one_page(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    job = emulator.store.find_jobs(marketplace_id=US)[0]
    since, until = job.created - timedelta(seconds=1), job.created + timedelta(seconds=1)
    result = run(
        "sync", "--db", str(tmp_path / "one.sqlite"), "--since", z(since), "--until", z(until),
        "--windows", "1", "--quiet",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "1 job in 1 page," in one_line(result.stdout)


# --- 9. one helper for every command ---------------------------------------------------------


def _commands(group: click.Group) -> Iterator[click.Command]:
    for command in group.commands.values():
        if isinstance(command, click.Group):
            # mirror: local files; fleet: worker processes and its own stores. No call_api.
            if command.name not in ("mirror", "fleet"):
                yield from _commands(command)
        elif command.name not in ("demo", "emulator"):
            yield command


def test_every_api_command_is_one_call_of_the_helper() -> None:
    commands = list(_commands(cli))
    assert len(commands) >= 15
    for command in commands:
        assert command.callback is not None
        source = inspect.getsource(command.callback)
        assert source.count("call_api(") == 1, command.name
        assert "open_client" not in source, command.name
        assert "asyncio.run" not in source, command.name


def test_the_helper_runs_the_work_and_shows_or_reports(run: Runner) -> None:
    shown: list[object] = []

    @click.command()
    @click.option("--fail", is_flag=True)
    def probe(fail: bool) -> None:
        async def work(client: object) -> dict[str, int]:
            if fail:
                raise NotFoundError(status_code=404, request_id="r-1", operation="probe")
            return {"jobs": 2}

        call_api(work, json_or(lambda out, result: shown.append(result)))

    cli.add_command(probe)
    try:
        assert run("probe").exit_code == 0
        assert shown == [{"jobs": 2}]
        as_json = run("--json", "probe")
        assert json.loads(as_json.stdout) == {"jobs": 2}
        failed = run("--json", "probe", "--fail")
        assert failed.exit_code == 1
        [error] = json_errors(failed.stderr)
        assert (error["status"], error["operation"], error["requestId"]) == (404, "probe", "r-1")
    finally:
        cli.commands.pop("probe")
