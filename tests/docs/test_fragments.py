"""The site's shorter blocks: each run in this event loop with the names its prose introduces."""

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
from _pages import DOCS, US, run_fragment
from spec_data import MODEL_PATH, load_model

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

from ._docs import block


def test_the_configuration_block_lists_every_keyword_with_its_default() -> None:
    (statement,) = ast.parse(block("configuration").code).body
    assert isinstance(statement, ast.Expr)
    call = statement.value
    assert isinstance(call, ast.Call)
    assert isinstance(call.func, ast.Name)
    assert call.func.id == "ServicesClient"
    documented = {
        kw.arg: eval(compile(ast.Expression(kw.value), "docs", "eval"), {"Region": Region})
        for kw in call.keywords
    }
    parameters = inspect.signature(ServicesClient).parameters
    assert list(documented) == list(parameters)
    for name, default in documented.items():
        assert default == parameters[name].default, name


def test_the_retry_policy_defaults_are_the_ones_written() -> None:
    errors = (DOCS / "guides" / "errors.md").read_text(encoding="utf-8")
    (written,) = re.findall(r"`(RetryPolicy\(max_retries=[^`]*\))`", errors)
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


async def test_the_sandbox_block_lists_the_sandbox_s_canned_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Amazon's sandbox is out of reach: the emulator replays its canned cases instead,
    # from the model extract the repository keeps.
    async with ServicesEmulator(static_spec=MODEL_PATH, enforce_limits=False) as sandbox:
        asked: list[dict[str, Any]] = []

        class Sandboxed(ServicesClient):
            """The block's client, its sandbox host swapped for the emulator's."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                asked.append(dict(kwargs))
                assert kwargs.pop("sandbox") is True
                kwargs.update(endpoint=sandbox.url, token_url=sandbox.token_url)
                super().__init__(sandbox.credentials, *args, **kwargs)

        monkeypatch.setattr(spapi_services, "ServicesClient", Sandboxed)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            await run_fragment(block("sandbox"), {})

    assert asked == [{"sandbox": True, "marketplace_id": US}]
    jobs = names_in_canned_listing()
    assert jobs
    assert printed.getvalue().splitlines() == [f"{i} {s}" for i, s in jobs]


def names_in_canned_listing() -> list[tuple[str, str]]:
    """The id and status of each job in the model's canned getServiceJobs answer."""
    for item in load_model()["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and operation.get("operationId") == "getServiceJobs":
                (case,) = operation["responses"]["200"]["x-amzn-api-sandbox"]["static"]
                return [
                    (job["serviceJobId"], job["serviceJobStatus"])
                    for job in case["response"]["payload"]["jobs"]
                ]
    raise AssertionError("the model has no getServiceJobs operation")


async def test_a_search_resumed_from_its_token_misses_and_repeats_nothing(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    since = emulator.clock.now() - timedelta(days=365)
    names: dict[str, Any] = {"client": client, "since": since}

    await run_fragment(block("resume"), names)

    wanted = [
        j.service_job_id for j in emulator.store.find_jobs(marketplace_id=US) if j.created >= since
    ]
    assert len(wanted) > 25  # the stop falls inside the second page
    got = [job.service_job_id for job in names["batch"] + names["remaining"]]
    assert len(names["batch"]) == 25
    assert sorted(got) == sorted(wanted)
    assert len(got) == len(set(got))
    assert isinstance(names["token"], str)
    assert names["rest"].resume_token is None  # every job yielded


async def test_booking_a_free_slot_and_staffing_then_moving_it(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    job = emulator.store.find_jobs(status="PENDING_SCHEDULE", marketplace_id=US)[0]
    technician = emulator.store.qualified_resources(job)[0]
    printed = io.StringIO()
    names: dict[str, Any] = {
        "client": client,
        "job_id": job.service_job_id,
        "technician_id": technician.resource_id,
    }

    with contextlib.redirect_stdout(printed):
        await run_fragment(block("appointments"), names)

    booked = job.active_appointment()
    assert booked is not None
    assert booked.appointment_id == names["booked"].appointment_id
    assert booked.start == names["free"][0].start_time
    assert booked.technicians == [(technician.resource_id, technician.name)]
    assert printed.getvalue() == "".join(f"{w.code} {w.message}\n" for w in names["warnings"])

    names["later"] = booked.start + timedelta(days=1)
    await run_fragment(block("reschedule"), names)

    moved = job.active_appointment()
    assert moved is not None
    assert moved.appointment_id == names["moved"].appointment_id != booked.appointment_id
    assert moved.start == names["later"]
    assert booked.status == "CANCELLED"
    assert moved.technicians == [(technician.resource_id, technician.name)]  # assigned again


async def test_a_schedule_a_reservation_and_the_capacity_it_leaves(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    now = emulator.clock.now()
    monday = (now + timedelta(days=7 - now.weekday())).replace(hour=0, minute=0)
    technician = next(iter(emulator.store.resources.values()))
    names: dict[str, Any] = {
        "client": client,
        "technician_id": technician.resource_id,
        "monday": monday,
    }
    printed = io.StringIO()

    with contextlib.redirect_stdout(printed):
        await run_fragment(block("scheduling"), names)

    # The new hours overlap the seeded ones, which Amazon notes as an override.
    [remark] = names["remarks"]
    assert [w.code for w in remark.warnings] == ["ScheduleOverride"]
    assert names["reservation_id"]
    # The Wednesday morning's four hours showed as reserved, then the time was given back.
    overridden, *reserved = printed.getvalue().splitlines()
    assert overridden.startswith("ScheduleOverride ")
    assert reserved == [f"Wed {h:02}:00 reserved" for h in (8, 9, 10, 11)]
    assert emulator.store.reservations_of(technician.resource_id) == []
    [weekdays] = technician.schedule  # the schedule replaced by the one record
    assert weekdays.start == monday + timedelta(hours=8)


async def test_one_job_is_read_with_its_status_scope_and_appointments(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    record = next(j for j in emulator.store.find_jobs(marketplace_id=US) if j.active_appointment())
    names: dict[str, Any] = {"client": client, "job_id": record.service_job_id}
    printed = io.StringIO()

    with contextlib.redirect_stdout(printed):
        await run_fragment(block("get-job"), names)

    job = names["job"]
    assert job.service_job_id == record.service_job_id
    assert job.service_job_status == record.status
    assert job.appointments
    status, _ = printed.getvalue().split(" ", 1)
    assert status == record.status
