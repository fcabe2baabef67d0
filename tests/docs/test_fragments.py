"""The shorter blocks: each run in this event loop with the names its prose introduces."""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from e2e.conftest import tiny_png

import spapi_services
from spapi_services import (
    JobPaginator,
    RateLimits,
    Region,
    RetryPolicy,
    ServicesClient,
    ServiceUnavailableError,
)
from spapi_services.emulator import ServicesEmulator
from spapi_services.sync import SyncReport

from ._readme import US, block, readme_text, run_fragment


async def test_proof_of_appointment_uploads_records_and_completes(
    emulator: ServicesEmulator,
    client: ServicesClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = next(
        j
        for j in emulator.store.find_jobs(status="NOT_SERVICED", marketplace_id=US)
        if j.active_appointment() is not None
    )
    appointment = job.active_appointment()
    assert appointment is not None
    technician = emulator.store.qualified_resources(job)[0]
    now = emulator.clock.now()
    (tmp_path / "signature.png").write_bytes(tiny_png())
    monkeypatch.chdir(tmp_path)

    names: dict[str, Any] = {
        "client": client,
        "job_id": job.service_job_id,
        "appointment_id": appointment.appointment_id,
        "technician_id": technician.resource_id,
        "started": now - timedelta(hours=2),
        "finished": now - timedelta(hours=1),
    }
    await run_fragment(block("proof-of-appointment"), names)

    assert job.status == "COMPLETED"
    recorded = appointment.fulfillment
    assert recorded is not None
    [cited] = recorded["fulfillmentDocuments"]
    assert cited["uploadDestinationId"] == names["document"].upload_destination_id
    assert recorded["appointmentResources"] == [{"resourceId": technician.resource_id}]
    assert appointment.poa is not None
    assert appointment.poa["poaType"] == "POA_RECEIPT"


def test_the_configuration_block_lists_every_keyword_with_its_default() -> None:
    (statement,) = ast.parse(block("configuration").code).body
    assert isinstance(statement, ast.Expr)
    call = statement.value
    assert isinstance(call, ast.Call)
    assert isinstance(call.func, ast.Name)
    assert call.func.id == "ServicesClient"
    documented = {
        kw.arg: eval(compile(ast.Expression(kw.value), "README.md", "eval"), {"Region": Region})
        for kw in call.keywords
    }
    parameters = inspect.signature(ServicesClient).parameters
    assert list(documented) == list(parameters)
    for name, default in documented.items():
        assert default == parameters[name].default, name


def test_the_retry_policy_defaults_are_the_ones_written() -> None:
    (written,) = re.findall(r"`(RetryPolicy\(max_retries=[^`]*\))`", readme_text())
    documented = eval(written, {"RetryPolicy": RetryPolicy})
    assert documented == RetryPolicy()
    named = set(re.findall(r"(\w+)=", written))
    assert named == {field.name for field in attrs.fields(RetryPolicy)}


async def test_pagination_walks_every_job_and_every_page(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    now = emulator.clock.now()
    since = now - timedelta(days=90)
    names: dict[str, Any] = {
        "client": client,
        "checkpoint": now - timedelta(days=30),
        "since": since,
    }
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        await run_fragment(block("pagination"), names)

    assert isinstance(names["jobs"], JobPaginator)
    changed = [j for j in emulator.store.jobs.values() if j.marketplace_id == US]
    changed = [j for j in changed if j.last_updated >= names["checkpoint"]]
    assert names["jobs"].pages_fetched == max(1, -(-len(changed) // 20))  # 20 jobs a page
    created = [j for j in emulator.store.find_jobs(marketplace_id=US) if j.created >= since]
    pages = [tuple(map(int, line.split())) for line in printed.getvalue().splitlines()]
    assert len(pages) == -(-len(created) // 20) > 1
    assert {total for total, _ in pages} == {len(created)}
    assert sum(size for _, size in pages) == len(created)


async def test_bulk_sync_mirrors_the_jobs_into_sqlite(
    emulator: ServicesEmulator,
    client: ServicesClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    names: dict[str, Any] = {"client": client}
    started = datetime.now(UTC)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        await run_fragment(block("bulk-sync"), names)
    ended = datetime.now(UTC)

    with contextlib.closing(sqlite3.connect(tmp_path / "service_jobs.sqlite")) as db:
        stored = {row[0] for row in db.execute("SELECT service_job_id FROM service_jobs")}
    us = emulator.store.find_jobs(marketplace_id=US)
    # The sync runs up to this machine's "now", which the emulator's world runs ahead of.
    assert {j.service_job_id for j in us if j.created <= started} <= stored
    assert stored <= {j.service_job_id for j in us if j.created <= ended}
    report = names["report"]
    assert isinstance(report, SyncReport)
    assert report.jobs == len(stored) > 0
    assert printed.getvalue() == f"{report}\n"


async def test_limits_share_a_plan_and_give_a_client_another_retry_policy(
    emulator: ServicesEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Local(ServicesClient):
        """The block's client, pointed at the emulator rather than at Amazon."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.update(endpoint=emulator.url, token_url=emulator.token_url, marketplace_id=US)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(spapi_services, "ServicesClient", Local)
    names: dict[str, Any] = {"creds": emulator.credentials}
    await run_fragment(block("limits"), names)

    shared, client, fast_fail = names["shared"], names["client"], names["fast_fail"]
    assert isinstance(shared, RateLimits)
    assert shared.plan("getServiceJobs") == (20.0, 60)
    job_id = emulator.store.find_jobs(marketplace_id=US)[0].service_job_id
    get = "getServiceJobByServiceJobId"
    async with client:
        emulator.faults.set(get, error_rate=1.0, error_status=503, count=1)
        await client.service_jobs.get(job_id)  # retried
        emulator.faults.set(get, error_rate=1.0, error_status=503, count=1)
        with pytest.raises(ServiceUnavailableError):
            await fast_fail.service_jobs.get(job_id)  # not retried
    assert emulator.count(get, 503) == 2
    assert emulator.count(get, 200) == 1
    assert fast_fail.is_closed  # a view of the same client
