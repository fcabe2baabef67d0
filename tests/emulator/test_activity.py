"""A world that moves: ``store.new_job`` and ``ServicesEmulator(activity=...)``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from spec_data import MODEL_PATH

from spapi_services.emulator import Activity, ActivityChange, FakeClock, ServicesEmulator
from spapi_services.emulator.activity import MOVES
from spapi_services.emulator.store import JOB_STATUSES
from spapi_services.models.jobs import ServiceJob

from ._helpers import US, Api, StartEmulator
from .test_jobs import GET, LIST, STRICT, ids, pages

UK = "A1F83G8C2ARO7P"


def changed_since(clock: FakeClock, seconds: float) -> dict[str, str]:
    after = (clock.now() - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return {"lastUpdatedAfter": after}


# --- new_job ------------------------------------------------------------------------------


async def test_new_job_creates_a_job_now_like_the_seeded_ones(
    api: Api, emu: ServicesEmulator, clock: FakeClock
) -> None:
    clock.advance(1800)
    job = emu.store.new_job(marketplace_id=UK, status="PENDING_SCHEDULE")
    assert job.created == job.last_updated == clock.now()
    assert (job.marketplace_id, job.status) == (UK, "PENDING_SCHEDULE")
    assert emu.store.stores[job.store_id].marketplace_id == UK
    assert job.details["seller"]["sellerId"] == emu.store.seller_id

    answer = await api.call(GET, {"serviceJobId": job.service_job_id})
    assert answer.status == 200
    served = STRICT.structure(answer.json["payload"], ServiceJob)
    assert served.service_job_status == "PENDING_SCHEDULE"
    # It is new: a search for what changed in the last minute finds it and only it.
    found, _ = await pages(api, changed_since(clock, 60), marketplace=UK)
    assert ids(found) == [job.service_job_id]


async def test_a_new_scheduled_job_has_an_active_appointment_ahead(
    emu: ServicesEmulator, clock: FakeClock
) -> None:
    job = emu.store.new_job(status="NOT_SERVICED")
    active = job.active_appointment()
    assert active is not None
    assert active.start > clock.now()
    assert job.marketplace_id in {s.marketplace_id for s in emu.store.stores.values()}


async def test_new_jobs_are_drawn_from_the_seed(start_emulator: StartEmulator) -> None:
    one, two, other = (
        await start_emulator(seed=5),
        await start_emulator(seed=5),
        await start_emulator(seed=6),
    )
    made = [[emu.store.new_job().to_wire() for _ in range(3)] for emu in (one, two, other)]
    assert made[0] == made[1]
    assert made[0] != made[2]
    assert {job["serviceJobStatus"] for job in made[0]} <= {"NOT_SERVICED", "PENDING_SCHEDULE"}
    assert len({job["serviceJobId"] for job in made[0]}) == 3


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"marketplace_id": "XX"}, "marketplace_id: 'XX' is not one of the emulator's"),
        ({"status": "DONE"}, "status: 'DONE' is not a job status"),
        ({"created": "2026-01-01"}, "created: must be an aware datetime"),
    ],
)
async def test_new_job_checks_its_arguments(
    emu: ServicesEmulator, options: dict[str, Any], error: str
) -> None:
    before = len(emu.store.jobs)
    with pytest.raises(ValueError, match=error):
        emu.store.new_job(**options)
    assert len(emu.store.jobs) == before


def test_a_static_emulator_makes_no_jobs() -> None:
    static = ServicesEmulator(static_spec=MODEL_PATH)
    with pytest.raises(RuntimeError, match="not seeded"):
        static.store.new_job()
    with pytest.raises(ValueError, match="activity: a static emulator"):
        ServicesEmulator(static_spec=MODEL_PATH, activity=Activity(created_per_minute=1))


# --- activity ------------------------------------------------------------------------------


async def test_changes_fall_due_at_the_rates_on_the_emulators_clock(
    start_emulator: StartEmulator, clock: FakeClock
) -> None:
    started = clock.now()
    emu = await start_emulator(activity=Activity(created_per_minute=6, updated_per_minute=30))
    before = len(emu.store.jobs)
    clock.advance(1.9)
    assert emu.run_activity() == 0  # the first move is due 2 s after the start
    clock.advance(0.1)
    assert emu.run_activity() == 1
    clock.advance(58)
    assert emu.run_activity() == 35

    activity = emu.sellers[0].activity
    assert activity is not None
    assert (activity.created, activity.updated) == (6, 30)
    assert len(emu.store.jobs) == before + 6
    log = list(activity.log)
    assert [c.time for c in log] == sorted(c.time for c in log)
    created = [c for c in log if c.kind == "created"]
    assert [c.time - started for c in created] == [timedelta(seconds=10 * k) for k in range(1, 7)]
    for change in log:
        job = emu.store.jobs[change.service_job_id]
        assert job.last_updated >= change.time
        if change.kind == "updated":
            assert change.status in dict(MOVES[change.previous_status or ""])
    # The last change of each job is what the store holds.
    last = {c.service_job_id: c for c in log}
    for job_id, change in last.items():
        assert emu.store.jobs[job_id].status == change.status
        assert emu.store.jobs[job_id].last_updated == change.time


async def test_each_request_sees_the_world_as_of_its_instant(
    start_emulator: StartEmulator, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    emu = await start_emulator(activity=Activity(created_per_minute=60, marketplace_id=US))
    api = Api(session, emu)
    await api.login()
    clock.advance(5)
    # No run_activity: the request applies what fell due before answering.
    found, _ = await pages(api, changed_since(clock, 10))
    assert len(found) == 5
    log = emu.sellers[0].activity.log  # type: ignore[union-attr]
    assert ids(found) == [c.service_job_id for c in log]


async def test_the_same_seed_and_clock_make_the_same_changes(
    start_emulator: StartEmulator, clock: FakeClock
) -> None:
    activity = Activity(created_per_minute=20, updated_per_minute=60)
    twins = [await start_emulator(seed=4, activity=activity) for _ in range(2)]
    other = await start_emulator(seed=8, activity=activity)
    clock.advance(90)

    def changes(emu: ServicesEmulator) -> list[ActivityChange]:
        emu.run_activity()
        assert emu.sellers[0].activity is not None
        return list(emu.sellers[0].activity.log)

    first = changes(twins[0])
    assert len(first) > 100
    assert sum(c.kind == "created" for c in first) == 30
    assert first == changes(twins[1])
    assert [c.service_job_id for c in first] != [c.service_job_id for c in changes(other)]


async def test_moves_keep_appointments_in_line_with_the_status(
    start_emulator: StartEmulator, clock: FakeClock
) -> None:
    emu = await start_emulator(activity=Activity(updated_per_minute=600))
    clock.advance(120)
    emu.run_activity()
    assert emu.sellers[0].activity is not None
    log = emu.sellers[0].activity.log
    moved = {c.service_job_id: c.status for c in log}
    assert {c.previous_status for c in log} <= set(MOVES)
    assert len(log) == 1200 or not [j for j in emu.store.jobs.values() if j.status in MOVES]
    for job_id, status in moved.items():
        job = emu.store.jobs[job_id]
        assert job.status == status
        if status == "NOT_SERVICED":
            assert job.active_appointment() is not None
        if status in ("COMPLETED", "CANCELLED"):
            assert job.active_appointment() is None
        STRICT.structure(job.to_wire(), ServiceJob)


async def test_when_no_job_is_open_moves_are_skipped(
    start_emulator: StartEmulator, clock: FakeClock
) -> None:
    emu = await start_emulator(jobs=3, activity=Activity(updated_per_minute=60))
    for job in emu.store.jobs.values():
        job.status = "COMPLETED"
    clock.advance(10)
    assert emu.run_activity() == 10
    assert emu.sellers[0].activity is not None
    assert emu.sellers[0].activity.updated == 0
    assert {j.status for j in emu.store.jobs.values()} == {"COMPLETED"}


async def test_every_seller_moves_on_its_own_requests(
    start_emulator: StartEmulator, session: aiohttp.ClientSession, clock: FakeClock
) -> None:
    emu = await start_emulator(sellers=2, activity=Activity(created_per_minute=60))
    second = emu.sellers[1]
    caller = Api(session, emu)
    status, body = await caller.exchange(refresh_token=second.refresh_token)
    assert status == 200
    caller.token = body["access_token"]
    clock.advance(3)
    answer = await caller.call(LIST, query=changed_since(clock, 10), marketplace=None)
    assert answer.status == 400  # marketplaceIds is required: no matter, the world moved
    assert second.activity is not None
    assert second.activity.created == 3
    assert emu.sellers[0].activity is not None
    assert emu.sellers[0].activity.created == 0
    assert emu.run_activity() == 3


async def test_a_reset_with_state_starts_the_activity_again(
    start_emulator: StartEmulator, clock: FakeClock
) -> None:
    emu = await start_emulator(jobs=20, activity=Activity(created_per_minute=60))
    clock.advance(5)
    emu.run_activity()
    assert len(emu.store.jobs) == 25
    emu.reset(state=True)
    assert len(emu.store.jobs) == 20
    clock.advance(2)
    assert emu.run_activity() == 2


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({}, "give created_per_minute or updated_per_minute"),
        ({"created_per_minute": -1}, "created_per_minute: must be zero or more"),
        ({"updated_per_minute": "5"}, "updated_per_minute: must be a number"),
        ({"updated_per_minute": True}, "updated_per_minute: must be a number"),
        ({"created_per_minute": float("nan")}, "created_per_minute: must be a number"),
        ({"created_per_minute": 1, "marketplace_id": "XX"}, "marketplace_id: 'XX' is not one"),
    ],
)
def test_activity_checks_its_arguments(options: dict[str, Any], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Activity(**options)


def test_the_emulator_checks_its_activity() -> None:
    with pytest.raises(TypeError, match="activity: expected an Activity"):
        ServicesEmulator(jobs=0, activity=5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "rates"),
    [
        ("created=6,updated=30", (6.0, 30.0)),
        (" updated = 0.5 ", (0.0, 0.5)),
        ("created=2", (2.0, 0.0)),
    ],
)
def test_activity_parses_its_command_line_form(text: str, rates: tuple[float, float]) -> None:
    parsed = Activity.parse(text)
    assert (parsed.created_per_minute, parsed.updated_per_minute) == rates


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "give created=N and/or updated=N"),
        ("fast", "'fast' is not created=N or updated=N"),
        ("created=1,created=2", "created is given twice"),
        ("created=x", "created=x is not a number"),
        ("created=0", "give created_per_minute or updated_per_minute"),
    ],
)
def test_activity_parse_errors_say_what_is_wrong(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Activity.parse(text)


def test_job_statuses_cover_the_moves() -> None:
    for status, targets in MOVES.items():
        assert status in JOB_STATUSES
        assert {target for target, _ in targets} <= set(JOB_STATUSES)
