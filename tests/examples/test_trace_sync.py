"""examples/trace_sync.py prints the trace of a sync on the console.

Run as a reader would, against the emulator: its stdout is the span JSON objects that
OpenTelemetry's ``ConsoleSpanExporter`` prints as each span ends, then the program's own
last line.  The trace must read as the tracing guide says: one span for the run, one per page
under it, with what the SDK knows about each page, and no secret or buyer's data.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from pathlib import Path
from typing import Any

from _pages import US, example, run_file, settings_env

from spapi_services.emulator import ServicesEmulator


def printed_spans(stdout: str) -> tuple[list[dict[str, Any]], str]:
    """The JSON objects at the start of ``stdout``, and the text after them."""
    decoder = json.JSONDecoder()
    spans: list[dict[str, Any]] = []
    at = 0
    while True:
        while at < len(stdout) and stdout[at].isspace():
            at += 1
        if at >= len(stdout) or stdout[at] != "{":
            return spans, stdout[at:]
        found, at = decoder.raw_decode(stdout, at)
        spans.append(found)


async def test_it_prints_one_span_for_the_sync_and_one_per_page_under_it(
    emulator: ServicesEmulator, tmp_path: Path
) -> None:
    done = await run_file(example("trace_sync.py"), [], env=settings_env(emulator), cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    spans, rest = printed_spans(done.stdout)
    *pages, run = spans  # a span is printed as it ends: the run's last
    assert run["name"] == "nightly sync"
    assert run["parent_id"] is None
    with contextlib.closing(sqlite3.connect(tmp_path / "service_jobs.sqlite")) as db:
        (stored,) = db.execute("SELECT count(*) FROM service_jobs").fetchone()
    assert stored > 0
    assert rest == f"{stored} jobs in {len(pages)} requests\n"

    answered = {r.request_id: r for r in emulator.requests if r.operation == "getServiceJobs"}
    assert len(answered) == len(pages)
    for page in pages:
        assert page["name"] == "getServiceJobs"
        assert page["kind"] == "SpanKind.CLIENT"
        assert page["context"]["trace_id"] == run["context"]["trace_id"]
        assert page["parent_id"] == run["context"]["span_id"]
        attributes = page["attributes"]
        assert attributes["rpc.system"] == "spapi"
        assert attributes["rpc.method"] == "getServiceJobs"
        assert attributes["http.response.status_code"] == 200
        assert attributes["spapi.attempts"] == 1
        assert attributes["spapi.page"] >= 1
        assert answered[attributes["spapi.request_id"]].query["marketplaceIds"] == US
    assert 1 in {p["attributes"]["spapi.page"] for p in pages}

    creds = emulator.credentials
    issued = set(emulator.auth._tokens)
    assert issued
    secrets = {creds.client_secret, creds.refresh_token, *issued}
    assert [s[:8] for s in secrets if s in done.stdout] == []
    buyers = [
        value
        for job in emulator.store.find_jobs(marketplace_id=US)
        for value in (job.details["buyer"].get("name"), job.details["buyer"].get("phone"))
        if value
    ]
    assert buyers
    assert [b for b in buyers if b in done.stdout] == []
