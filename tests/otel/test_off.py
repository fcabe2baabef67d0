"""Instrumentation off, the API absent, the global providers: what each costs and does."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from spapi_services import RawResponse
from spapi_services._extras import install_command

from ._api import FakeApi, answer, client_for, job_body, replies
from .conftest import Telemetry

GET = "getServiceJobByServiceJobId"

#: A program that makes one call through an in-memory sender and reports on itself.
CALLER = """
import asyncio, json, sys
from multidict import CIMultiDict, CIMultiDictProxy
from spapi_services import LwaCredentials, RawResponse, ServicesClient

async def sender(method, url, headers, body, timeout):
    if url.path.endswith("/token"):
        data = b'{"access_token": "Atza|t", "expires_in": 3600}'
    else:
        data = b'{"payload": {"serviceJobId": "job-1"}}'
    return RawResponse(200, CIMultiDictProxy(CIMultiDict({"x-amzn-RequestId": "r"})), data)

async def main():
    creds = LwaCredentials("app", "secret", "Atzr|refresh")
    async with ServicesClient(creds, sender=sender, rate_limits=False) as client:
        job = await client.service_jobs.get("job-1")
        report = {"job": job.service_job_id, "instrumented": client._core.otel is not None}
    report["otel_imported"] = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
    print(json.dumps(report))

asyncio.run(main())
"""

#: Makes ``opentelemetry`` unimportable, as when the API is not installed.
BLOCKER = """
import sys

class _NoOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoOpenTelemetry())
"""


def run_python(code: str, tmp_path: Path, *, without_otel: bool = False) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SPAPI_"))}
    if without_otel:
        site = tmp_path / "site"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(code)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_the_api_the_sdk_runs_and_imports_none_of_it(tmp_path: Path) -> None:
    # The blocker works: the API is installed here, and this child cannot import it.
    assert "ModuleNotFoundError" in run_python(
        "try:\n import opentelemetry\nexcept ModuleNotFoundError as e:\n print(type(e).__name__)",
        tmp_path,
        without_otel=True,
    )
    report = run_python(CALLER, tmp_path, without_otel=True)
    assert report == '{"job": "job-1", "instrumented": false, "otel_imported": []}'


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ("tracer_provider=Provider()", "tracer_provider"),
        ("meter_provider=Provider()", "meter_provider"),
        (
            "tracer_provider=Provider(), meter_provider=Provider()",
            "tracer_provider, meter_provider",
        ),
    ],
)
def test_without_the_api_a_provider_given_is_an_error_that_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: str, named: str
) -> None:
    code = f"""
    from spapi_services import ServicesClient

    class Provider:
        def get_tracer(self, *args): ...
        def get_meter(self, *args): ...

    async def token():
        return "Atza|t"

    try:
        ServicesClient(access_token_provider=token, {arguments})
    except ValueError as exc:
        print(exc)
    """
    said = run_python(code, tmp_path, without_otel=True)
    # The command that adds the extra where this SDK is installed (the package is not on
    # the public index), said from the child's directory as the other extras say it.
    monkeypatch.chdir(tmp_path)
    assert said == (
        f"{named}: given, but opentelemetry-api (the otel extra) is not installed: "
        + install_command("otel")
    )
    assert " -m pip install " in said


def test_importing_the_sdk_does_not_import_opentelemetry(tmp_path: Path) -> None:
    code = """
    import sys
    import spapi_services
    from spapi_services import ServicesClient, LwaCredentials
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    """
    assert run_python(code, tmp_path) == "[]"


def test_by_default_the_global_providers_are_used_even_when_set_later(tmp_path: Path) -> None:
    # In a child process: the global provider can be set only once per process.
    code = CALLER.replace(
        "asyncio.run(main())",
        """
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

async def later():
    creds = LwaCredentials("app", "secret", "Atzr|refresh")
    client = ServicesClient(creds, sender=sender, rate_limits=False)  # before the provider
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    async with client:
        await client.service_jobs.get("job-1")
    print([s.name for s in exporter.get_finished_spans()])

asyncio.run(later())
""",
    )
    assert run_python(code, tmp_path) == "['getServiceJobByServiceJobId']"


async def test_instrument_false_makes_no_span_no_metric_and_no_extra_frame(
    telemetry: Telemetry,
) -> None:
    frames: list[str] = []

    async def handler(*_: Any) -> RawResponse:
        frames.extend(f.function for f in inspect.stack())
        return answer(200, job_body())

    async with client_for(FakeApi(handler), instrument=False, **telemetry.providers) as client:
        assert client._core.otel is None
        await client.service_jobs.get("job-1")

    assert telemetry.spans() == []
    assert telemetry.metrics() == {}
    assert "_authorized" in frames
    assert "_traced" not in frames


async def test_instrumented_calls_go_through_the_traced_layer(telemetry: Telemetry) -> None:
    frames: list[str] = []

    async def handler(*_: Any) -> RawResponse:
        frames.extend(f.function for f in inspect.stack())
        return answer(200, job_body())

    async with client_for(FakeApi(handler), **telemetry.providers) as client:
        await client.service_jobs.get("job-1")

    assert "_traced" in frames


@pytest.mark.parametrize(
    ("argument", "value", "error", "message"),
    [
        ("tracer_provider", object(), TypeError, r"^tracer_provider: expected an OpenTelemetry "),
        ("meter_provider", 42, TypeError, r"^meter_provider: expected an OpenTelemetry Meter"),
        ("instrument", "yes", TypeError, r"^instrument: expected True or False, got str"),
    ],
)
def test_the_new_arguments_are_checked(
    argument: str, value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        client_for(FakeApi(replies(answer(200))), **{argument: value})
