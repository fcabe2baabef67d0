"""A thousand tasks at once, usage plans enforced, one answer in twenty a 503.

1,000 worker tasks share one client and drain a queue of planned calls over all 17
operations (3,000 by default; ``SPAPI_SOAK_CALLS`` for a longer run, which the ``soak`` nox
session sets).  The emulator enforces Amazon's usage plans, sped up by ``rate_scale``; the
client's :class:`RateLimits` carry the same scaled plans.  Every answer has a 5% chance of
being a 503; the operations that create something also lose 2% of their answers after
creating (the case where re-sending would create twice).  Afterwards:

* every call of an idempotent operation succeeded (retries absorb the 503s and any 429);
* every call of an operation that creates something succeeded or raised one clear error,
  :class:`ServiceUnavailableError` for its 503 or :class:`ApiConnectionError` for its lost
  answer, and never anything else (before the SDK queued its own requests, a long run
  had calls wait in aiohttp's pool past their timeout, unsent);
* the emulator ran each such call at most once, exactly once when it succeeded or lost its
  answer, never after a 503: appointments on each job, reservations and upload
  destinations in its store, and its count of 200s per operation all agree;
* the connections open on the emulator never exceeded the client's connector limit;
* nothing was left unclosed or unretrieved (warnings are errors in this suite).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import attrs
import pytest

from spapi_services import (
    ApiConnectionError,
    RateLimits,
    RetryPolicy,
    ServicesClient,
    ServiceUnavailableError,
)
from spapi_services._routes import ROUTES
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.store import AvailabilityWindow, JobRecord, ReservationRecord

from ._scenarios import NOW, SCENARIOS, US, Scenario, State

CALLS = int(os.environ.get("SPAPI_SOAK_CALLS", "3000"))
WORKERS = 1000
RATE_SCALE = 25.0
CONNECTOR_LIMIT = 100  # the client's own session (spapi_services._client)
DEADLINE = max(60.0, CALLS / 20)  # a hang fails the test rather than the whole run

#: Share of the calls per operation (the rest of 1.0 goes to getServiceJobByServiceJobId).
MIX = {
    "getServiceJobs": 0.08,
    "getAppointmmentSlotsByJobId": 0.06,
    "getAppointmentSlots": 0.06,
    "getRangeSlotCapacity": 0.04,
    "getFixedSlotCapacity": 0.04,
    "cancelServiceJobByServiceJobId": 0.03,
    "completeServiceJobByServiceJobId": 0.03,
    "addAppointmentForServiceJobByServiceJobId": 0.06,
    "rescheduleAppointmentForServiceJobByServiceJobId": 0.03,
    "assignAppointmentResources": 0.02,
    "setAppointmentFulfillmentData": 0.03,
    "updateSchedule": 0.04,
    "createReservation": 0.06,
    "updateReservation": 0.03,
    "cancelReservation": 0.03,
    "createServiceDocumentUploadDestination": 0.06,
}
CREATES = [op for op, route in ROUTES.items() if not route.idempotent]


@attrs.define
class Ticket:
    """One planned call and how it ended."""

    operation: str
    state: State
    outcome: str | None = None


@attrs.frozen
class Plan:
    tickets: list[Ticket]
    reservations_before: frozenset[str]
    destinations_before: int


_ADD = "addAppointmentForServiceJobByServiceJobId"
_ON_APPOINTMENTS = (
    "rescheduleAppointmentForServiceJobByServiceJobId",
    "assignAppointmentResources",
    "setAppointmentFulfillmentData",
)
_ON_JOBS = ("cancelServiceJobByServiceJobId", "completeServiceJobByServiceJobId")
_ON_RESERVATIONS = ("updateReservation", "cancelReservation")


def _plan(emu: ServicesEmulator, calls: int) -> Plan:
    """The calls, each with state of its own where running twice would fail (a job
    cancelled twice, a reservation cancelled twice) or where duplicates must be seen."""
    store = emu.store
    us_jobs = [j for j in store.jobs.values() if j.marketplace_id == US]
    open_jobs = [j for j in us_jobs if j.status not in ("COMPLETED", "CANCELLED")]
    unbooked = [j for j in open_jobs if j.active_appointment() is None]
    staffed = [
        j
        for j in open_jobs
        if j.status == "NOT_SERVICED"
        and (a := j.active_appointment()) is not None
        and store.qualified_resources(j, a)
    ]
    technicians = [r for r in store.resources.values() if r.kind == "TECHNICIAN"]
    # A new schedule replaces the old where they overlap: those of the staffed jobs'
    # technicians are left alone, or an assignment would meet a technician off duty.
    elsewhere = [r for r in technicians if store.stores[r.store_id].marketplace_id != US]
    shops = [s for s in store.stores.values() if s.marketplace_id == US and s.services]
    used: set[str] = set()

    def fresh(*pools: list[JobRecord]) -> JobRecord:
        for pool in pools:
            for job in pool:
                if job.service_job_id not in used:
                    used.add(job.service_job_id)
                    return job
        raise LookupError("the world has no fresh job left")

    def state_for(operation: str, n: int) -> State:
        if operation == _ADD:
            job = fresh(unbooked)
            return {"job": job.service_job_id, "appointments": len(job.appointments)}
        if operation in _ON_APPOINTMENTS:
            job = fresh(staffed)
            appointment = job.active_appointment()
            assert appointment is not None
            return {
                "job": job.service_job_id,
                "appointment": appointment.appointment_id,
                "technician": store.qualified_resources(job, appointment)[0].resource_id,
                "appointments": len(job.appointments),
            }
        if operation in _ON_JOBS:
            return {"job": fresh(open_jobs).service_job_id}
        if operation in _ON_RESERVATIONS:
            # One reservation of its own each, made in the store beforehand.
            start = NOW.replace(hour=0) + timedelta(days=40 + n % 300, hours=n % 24)
            record = ReservationRecord(
                reservation_id=store.new_reservation_id(),
                resource_id=elsewhere[n % len(elsewhere)].resource_id,
                type="BREAK",
                window=AvailabilityWindow(start, start + timedelta(minutes=30)),
            )
            store.reservations[record.reservation_id] = record
            return {"reservation": record.reservation_id, "resource": record.resource_id}
        shop = shops[n % len(shops)]
        pool = elsewhere if operation == "updateSchedule" else technicians
        return {
            "job": us_jobs[n % len(us_jobs)].service_job_id,
            "resource": pool[n % len(pool)].resource_id,
            "store": shop.store_id,
            "asin": next(iter(shop.services)),
        }

    tickets: list[Ticket] = []
    counts = {op: int(calls * share) for op, share in MIX.items()}
    counts["getServiceJobByServiceJobId"] = calls - sum(counts.values())
    # Fresh jobs go round the operations that need them, bookings first (the calls that
    # must never run twice), so that a long run that uses up the world shares what is left
    # fairly; calls that find nothing fresh read instead.
    order = sorted(counts, key=lambda op: (op != _ADD, op not in _ON_APPOINTMENTS))
    for n in range(max(counts.values())):
        for operation in order:
            if n < counts[operation]:
                try:
                    tickets.append(Ticket(operation, state_for(operation, n)))
                except LookupError:
                    tickets.append(Ticket("getServiceJobByServiceJobId", state_for("get", n)))
    random.Random(7).shuffle(tickets)  # interleaved, as real traffic would be
    return Plan(tickets, frozenset(store.reservations), len(emu.vault.destinations))


@pytest.fixture
async def soak_emulator() -> AsyncIterator[ServicesEmulator]:
    # Fresh jobs for the calls that need their own; a longer run reads once they are
    # used up (a bigger world would only make each job search slower to answer).
    jobs = 3000 if CALLS <= 5000 else 6000
    async with ServicesEmulator(
        jobs=jobs, seed=11, enforce_limits=True, rate_scale=RATE_SCALE, at=NOW
    ) as emu:
        yield emu


async def test_soak(soak_emulator: ServicesEmulator, caplog: pytest.LogCaptureFixture) -> None:
    emu = soak_emulator
    # "Task exception was never retrieved" and "Unclosed ..." reach the loop's exception
    # handler, not the warnings machinery: collect them there.
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: unhandled.append(context))
    plan = _plan(emu, CALLS)
    tickets = plan.tickets
    limits = RateLimits({op: (r.rate * RATE_SCALE, r.burst) for op, r in ROUTES.items()})
    client = ServicesClient(
        emu.credentials,
        endpoint=emu.url,
        token_url=emu.token_url,
        marketplace_id=US,
        rate_limits=limits,
        retry=RetryPolicy(max_retries=8, base_delay=0.05, max_delay=0.5),
    )
    emu.faults.set("*", error_rate=0.05, error_status=503)
    for operation in CREATES:
        emu.faults.set(
            operation, error_rate=0.05, error_status=503, mangle="lose", mangle_rate=0.02
        )
    queue: asyncio.Queue[Ticket] = asyncio.Queue()
    for ticket in tickets:
        queue.put_nowait(ticket)
    most_connections = 0

    async def worker() -> None:
        while not queue.empty():
            ticket = queue.get_nowait()
            scenario: Scenario = SCENARIOS[ticket.operation]
            try:
                await scenario.call(client, ticket.state)
            except Exception as exc:
                ticket.outcome = type(exc).__name__
            else:
                ticket.outcome = "ok"

    async def watch() -> None:
        nonlocal most_connections
        while True:
            most_connections = max(most_connections, emu.open_connections)
            await asyncio.sleep(0.005)

    started = time.monotonic()
    watcher = asyncio.create_task(watch())
    async with client:
        async with asyncio.timeout(DEADLINE):
            await asyncio.gather(*(worker() for _ in range(WORKERS)))
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    elapsed = time.monotonic() - started
    gc.collect()  # anything left unclosed warns now, and warnings are errors here
    await asyncio.sleep(0)
    loop.set_exception_handler(None)
    assert unhandled == []
    assert not [r for r in caplog.records if r.name == "asyncio" and r.levelno >= logging.ERROR]

    outcomes = Counter((t.operation, t.outcome) for t in tickets)
    errors = Counter(t.outcome for t in tickets if t.outcome != "ok")
    report = {
        "calls": len(tickets),
        "by_operation": dict(Counter(t.operation for t in tickets)),
        "workers": WORKERS,
        "seconds": round(elapsed, 1),
        "successes": sum(1 for t in tickets if t.outcome == "ok"),
        "errors": dict(errors),
        "requests": emu.count(),
        "injected_503": emu.count(None, 503),
        "throttled_429": emu.count(None, 429),
        "most_connections": most_connections,
    }

    # Appointments made per booking call, counted in the emulator's store.
    booked = {
        id(t): len(emu.store.jobs[t.state["job"]].appointments) - t.state["appointments"]
        for t in tickets
        if t.operation
        in (
            "addAppointmentForServiceJobByServiceJobId",
            "rescheduleAppointmentForServiceJobByServiceJobId",
        )
    }
    report["duplicates"] = sum(max(made - 1, 0) for made in booked.values())
    print("\nsoak:", json.dumps(report, sort_keys=True))

    # Every call ended; the idempotent ones all well, the others well or with one clear
    # error: their 503, or their lost answer.
    lost = ApiConnectionError.__name__
    allowed = {True: {"ok"}, False: {"ok", ServiceUnavailableError.__name__, lost}}
    wrong = Counter(
        (t.operation, t.outcome)
        for t in tickets
        if t.outcome not in allowed[ROUTES[t.operation].idempotent]
    )
    assert not wrong, (wrong, report)

    # No duplicates, judged by the emulator's own state: made once if the call succeeded
    # or lost its answer, never after a 503, never twice.
    for ticket in tickets:
        if id(ticket) in booked:
            assert booked[id(ticket)] == (1 if ticket.outcome in ("ok", lost) else 0), ticket
    made = {op: outcomes[op, "ok"] + outcomes[op, lost] for op in CREATES}
    for operation in CREATES:  # ran exactly as often as the SDK says it did
        assert emu.count(operation, 200) == made[operation], operation
    # Reservations the store has now and had not before the run: those created, once each.
    created = set(emu.store.reservations) - plan.reservations_before
    assert len(created) == made["createReservation"]
    destinations = plan.destinations_before + made["createServiceDocumentUploadDestination"]
    assert len(emu.vault.destinations) == destinations

    # Things really went wrong along the way, and the connections stayed bounded.
    assert report["injected_503"] > 0
    assert sum(outcomes[op, lost] for op in CREATES) > 0  # answers were lost after creating
    assert 0 < most_connections <= CONNECTOR_LIMIT
