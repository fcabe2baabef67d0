"""``spapi-services --otel-console``: a command's spans and metrics on stderr."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import pytest
from cli.conftest import US, EmulatorThread, Runner

from spapi_services import _otel
from spapi_services.emulator import ServicesEmulator

GET = "getServiceJobByServiceJobId"


@pytest.fixture(scope="module")
def emulator() -> Iterator[ServicesEmulator]:
    with EmulatorThread(jobs=20, seed=11, enforce_limits=False) as emu:
        yield emu


@pytest.fixture
def run(emulator: ServicesEmulator) -> Runner:
    return Runner(emulator)


def some_job(emulator: ServicesEmulator) -> str:
    return emulator.store.find_jobs(marketplace_id=US)[0].service_job_id


def test_each_call_is_a_line_and_the_metrics_come_at_the_end(
    run: Runner, emulator: ServicesEmulator
) -> None:
    job = some_job(emulator)
    plain = run("jobs", "get", job)
    traced = run("--otel-console", "jobs", "get", job)

    assert traced.exit_code == 0, traced.stderr
    assert traced.stdout == plain.stdout  # stdout stays the command's result
    lines = traced.stderr.splitlines()
    (span,) = [line for line in lines if line.startswith("span ")]
    request_id = emulator.requests[-1].request_id
    assert re.match(
        rf"span {GET}  ok  \d+\.\d ms  trace [0-9a-f]{{32}} span [0-9a-f]{{16}} parent -  "
        r"server\.address=127\.0\.0\.1 http\.request\.method=GET "
        rf"http\.response\.status_code=200 spapi\.request_id={request_id} spapi\.attempts=1 ",
        span,
    ), span
    metrics = [line for line in lines if line.startswith("metric ")]
    assert f"metric spapi.client.calls 1 {{call}}  rpc.method={GET} spapi.outcome=ok" in metrics
    assert "metric spapi.lwa.exchanges 1 {request}  spapi.outcome=ok" in metrics
    assert any(line.startswith("metric spapi.client.call.duration count=1 ") for line in metrics)
    assert lines.index(span) < lines.index(metrics[0])
    assert _otel.command_providers.get() is None  # let go of when the command ended


def test_the_environment_variable_turns_it_on_too(run: Runner, emulator: ServicesEmulator) -> None:
    result = run("jobs", "get", some_job(emulator), env={"SPAPI_OTEL_CONSOLE": "1"})
    assert result.exit_code == 0, result.stderr
    assert f"span {GET}  ok" in result.stderr


def test_a_failed_call_shows_its_error_and_exception_event(run: Runner) -> None:
    result = run("--otel-console", "jobs", "get", "99999999999999")

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    (span,) = [line for line in lines if line.startswith("span ")]
    assert span.startswith(f"span {GET}  error ({GET}: HTTP 404: NotFound: ")
    assert "error.type=NotFoundError" in span
    event = lines[lines.index(span) + 1]
    assert event.startswith(
        "  event exception  exception.type=spapi_services.errors.NotFoundError "
    )
    assert "Traceback" not in result.stderr  # the stack trace is left to exporters
    assert any(
        line.startswith("metric spapi.client.calls 1 {call}") and "error.type=NotFoundError" in line
        for line in lines
    )


def test_without_the_sdk_it_says_what_to_install(
    run: Runner, emulator: ServicesEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    before = emulator.count()
    result = run("--otel-console", "jobs", "get", some_job(emulator))

    assert result.exit_code == 2
    assert (
        "--otel-console needs the OpenTelemetry SDK, which the command line does not install: "
        "pip install opentelemetry-sdk"
    ) in " ".join(result.stderr.split())
    assert emulator.count() == before  # refused before anything was sent
