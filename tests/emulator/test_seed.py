"""The seeded world: deterministic, varied, and consistent with itself."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import attrs
import pytest
from _emulators import NOW

from spapi_services._serde import make_converter, parse_datetime
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.capacity import appointment_slots, pieces
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.emulator.seed import seed_store
from spapi_services.emulator.store import AvailabilityWindow, JobRecord, Store
from spapi_services.models.jobs import ServiceJob

REFERENCE = datetime(2026, 6, 17, tzinfo=UTC)
STRICT = make_converter(forbid_extra_keys=True)


def world(jobs: int = 300, seed: int = 1) -> Store:
    store = Store(FakeClock(REFERENCE), seed)
    seed_store(store, jobs=jobs, seed=seed, reference=REFERENCE)
    return store


def test_the_same_seed_grows_the_same_world() -> None:
    one, two, other = world(seed=1), world(seed=1), world(seed=2)
    assert [j.to_wire() for j in one.jobs.values()] == [j.to_wire() for j in two.jobs.values()]
    assert list(one.resources) == list(two.resources)
    assert list(one.jobs) != list(other.jobs)


def test_jobs_cover_statuses_marketplaces_and_locations() -> None:
    store = world()
    jobs = list(store.jobs.values())
    assert len(jobs) == 300
    assert set(Counter(j.status for j in jobs)) == {
        "NOT_SERVICED", "COMPLETED", "PENDING_SCHEDULE", "CANCELLED", "HOLD",
        "NOT_FULFILLABLE", "PAYMENT_DECLINED",
    }  # fmt: skip
    assert {j.marketplace_id for j in jobs} == {m.marketplace_id for m in MARKETPLACES}
    assert {j.location_type for j in jobs} == {"IN_HOME", "IN_STORE", "ONLINE"}
    created = [j.created for j in jobs]
    assert min(created) >= REFERENCE - timedelta(days=90)
    assert max(created) < REFERENCE
    assert all(j.created <= j.last_updated <= REFERENCE for j in jobs)


def test_jobs_carry_the_models_newer_fields() -> None:
    wires = [j.to_wire() for j in world().jobs.values()]
    for wire in wires:
        STRICT.structure(wire, ServiceJob)
    parsed = [STRICT.structure(w, ServiceJob) for w in wires]
    assets = [
        a for job in parsed for item in job.associated_items or () for a in item.linked_assets or ()
    ]
    assert assets
    assert all(a.asset_type == "VEHICLE" and a.additional_attributes for a in assets)
    amounts = [p.amount for job in parsed for p in job.payments or () if p.amount]
    assert {a.currency for a in amounts} == {"USD", "CAD", "MXN", "GBP", "EUR"}
    assert all(isinstance(a.value, Decimal) for a in amounts)
    assert any(a.value != a.value.to_integral_value() for a in amounts)
    assert any(job.product_order_ids for job in parsed)
    assert any(job.tracking_ids for job in parsed)
    assert any(a.rescheduled_appointment_id for job in parsed for a in job.appointments or ())


def test_appointments_fit_their_jobs() -> None:
    for job in world().jobs.values():
        statuses = [a.status for a in job.appointments]
        if job.status == "COMPLETED":
            assert statuses == ["COMPLETED"]
            assert job.appointments[0].poa is not None
            assert job.appointments[0].end <= REFERENCE
        if job.status == "NOT_SERVICED":
            assert statuses.count("ACTIVE") == 1
        if job.status in ("PENDING_SCHEDULE", "CANCELLED"):
            assert "ACTIVE" not in statuses
        for appointment in job.appointments:
            assert 5 <= len(appointment.appointment_id) <= 100


def test_every_offered_service_has_two_qualified_technicians() -> None:
    store = world()
    for shop in store.stores.values():
        assert store.resources[shop.store_id].kind == "STORE"
        for job in store.jobs_at_store(shop.store_id):
            assert len(store.qualified_resources(job)) >= 2
        technicians = [store.resources[t] for t in shop.technicians]
        assert all(t.schedule for t in technicians)
    assert any(not r.background_checked for r in store.resources.values())
    assert store.reservations


def test_staffed_appointments_are_within_their_technicians_hours() -> None:
    store = world()
    for job in store.jobs.values():
        for appointment in job.appointments:
            for tech_id, _ in appointment.technicians:
                assert store.resources[tech_id].covers(appointment.start, appointment.end)


def test_windows_repeat_on_their_days_only() -> None:
    monday = datetime(2026, 6, 22, 9, tzinfo=UTC)
    window = AvailabilityWindow(
        monday, monday + timedelta(hours=8), 1, monday + timedelta(days=14), frozenset({0, 2})
    )
    found = list(window.occurrences(monday, monday + timedelta(days=14)))
    assert [s.strftime("%a %d") for s, _ in found] == ["Mon 22", "Wed 24", "Mon 29", "Wed 01"]
    clipped = list(window.occurrences(monday + timedelta(hours=4), monday + timedelta(hours=5)))
    assert clipped == [(monday + timedelta(hours=4), monday + timedelta(hours=5))]
    once = AvailabilityWindow(monday, monday + timedelta(hours=1))
    assert list(once.occurrences(monday + timedelta(hours=2), monday + timedelta(hours=3))) == []


# --- what the tests rely on, at any moment -----------------------------------------------


@attrs.frozen
class SuiteWorld:
    """A world the suite builds, and what its tests take from it beyond one of each."""

    name: str
    seed: int
    jobs: int
    us_jobs: Mapping[str, int] = attrs.field(factory=dict)
    """US jobs needed in a status ("A|B": in either), where a test takes more than one."""
    staffable: int = 1
    """US jobs with a future, staffed appointment that a qualified technician works."""
    reference: Callable[[datetime], datetime] | None = None
    """The reference its fixture gives for a clock at a moment (None: the emulator's own)."""


#: The worlds of the suite: its fixtures, markers and the README's examples.
SUITE_WORLDS = (
    SuiteWorld("tests/emulator", seed=7, jobs=120),
    # test_secrets runs every scenario in one world: four of them take an open job.
    SuiteWorld("tests/reliability", seed=5, jobs=40, us_jobs={"PENDING_SCHEDULE": 4}),
    SuiteWorld("tests/upload", seed=11, jobs=60),
    # A later sync cancels three jobs still waiting, then completes one more.
    SuiteWorld("tests/sync", seed=3, jobs=150, us_jobs={"PENDING_SCHEDULE|HOLD": 3}),
    SuiteWorld("tests/e2e workflow", seed=3, jobs=60),
    SuiteWorld("README quickstart", seed=11, jobs=80),
    SuiteWorld("README emulator example", seed=1, jobs=200),
    # One module-wide world on the machine's clock, built around a day before it; its tests
    # each take their own job: four pending, five waiting for service (listed with
    # --limit 5), and up to five to staff (the first one may be taken already).
    SuiteWorld(
        "tests/cli",
        seed=11,
        jobs=200,
        us_jobs={"PENDING_SCHEDULE": 4, "NOT_SERVICED": 5},
        staffable=5,
        reference=lambda now: now.replace(microsecond=0) - timedelta(days=1),
    ),
    SuiteWorld("pytest plugin defaults", seed=0, jobs=100),
)
US = "ATVPDKIKX0DER"
#: The statuses tests pick jobs in with ``find_jobs(status=...)``.
PICKED_STATUSES = ("NOT_SERVICED", "COMPLETED", "PENDING_SCHEDULE", "CANCELLED")
#: Every day of a week, early and late (UTC), and the suite's own moment.
INSTANTS = [
    datetime(2026, 6, 15, tzinfo=UTC) + timedelta(days=day, hours=hour, minutes=30)
    for day in range(7)
    for hour in (0, 23)
] + [NOW]


def _built(world: SuiteWorld, now: datetime) -> Store:
    """The world as its tests build it, on a clock that reads ``now``."""
    reference = None if world.reference is None else world.reference(now)
    emulator = ServicesEmulator(jobs=world.jobs, seed=world.seed, at=now, reference_time=reference)
    return emulator.store


def _staffable(store: Store, job: JobRecord, now: datetime) -> bool:
    appointment = job.active_appointment()
    return (
        appointment is not None
        and appointment.start > now
        and bool(appointment.technicians)
        and bool(store.qualified_resources(job, appointment))
    )


def _bookable(store: Store, job: JobRecord, now: datetime) -> bool:
    """A free slot in the coming week (the default range of the slot lookups) that a
    qualified technician works, found as the emulator's slot operation finds them."""
    start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    end = start + timedelta(days=7)
    shop = store.resources[job.store_id]
    qualified = store.qualified_resources(job)
    return any(
        slot["capacity"] > 0
        and any(
            t.covers(parse_datetime(slot["startTime"]), parse_datetime(slot["endTime"]))
            for t in qualified
        )
        for slot in appointment_slots(pieces(store, shop, start, end), start, end, job.duration)
    )


def _shortfalls(world: SuiteWorld, now: datetime) -> list[str]:
    """What ``world``, built at ``now``, lacks of what its tests take from it."""
    store = _built(world, now)
    us = store.find_jobs(marketplace_id=US)
    needed = dict.fromkeys(PICKED_STATUSES, 1) | dict(world.us_jobs)
    missing = [
        f"{count} US jobs in {statuses}"
        for statuses, count in needed.items()
        if sum(j.status in statuses.split("|") for j in us) < count
    ]
    recent = [j for j in us if now - timedelta(hours=36) <= j.created <= now]
    if not 0 < len(recent) <= 20:
        missing.append(f"1 to 20 US jobs created in the last 36 hours, not {len(recent)}")
    if sum(_staffable(store, j, now) for j in us) < world.staffable:
        missing.append(f"{world.staffable} US jobs with a future staffed appointment")
    if any(j.active_appointment() is None for j in store.find_jobs(status="NOT_SERVICED")):
        missing.append("an active appointment for every job waiting for service")
    first_pending = store.find_jobs(status="PENDING_SCHEDULE")[:1]
    first_us_pending = store.find_jobs(status="PENDING_SCHEDULE", marketplace_id=US)[:1]
    for job in first_pending + first_us_pending:
        if not _bookable(store, job, now):
            missing.append(f"a bookable slot for pending job {job.service_job_id}")
    if not store.reservations:
        missing.append("a reservation")
    if not any(s.marketplace_id == US and s.services for s in store.stores.values()):
        missing.append("a US store offering services")
    return [f"{world.name}: {what}" for what in missing]


@pytest.mark.parametrize("now", INSTANTS, ids=lambda t: t.strftime("%a-%H%M"))
def test_every_world_of_the_suite_has_what_its_tests_take_at_any_moment(now: datetime) -> None:
    assert [gap for world in SUITE_WORLDS for gap in _shortfalls(world, now)] == []


def test_a_seed_draws_the_same_jobs_whatever_the_weekday() -> None:
    def jobs(reference: datetime) -> list[tuple[str, str, str, timedelta]]:
        store = Store(FakeClock(reference), 3)
        seed_store(store, jobs=150, seed=3, reference=reference)
        return [
            (j.service_job_id, j.status, j.marketplace_id, reference - j.created)
            for j in store.jobs.values()
        ]

    monday = jobs(datetime(2026, 6, 15, tzinfo=UTC))
    for day in range(1, 7):
        assert jobs(datetime(2026, 6, 15 + day, tzinfo=UTC)) == monday


def test_every_marketplace_has_a_job_from_the_afternoon_before() -> None:
    store = world()
    for market in MARKETPLACES:
        newest = store.find_jobs(marketplace_id=market.marketplace_id)[-1]
        assert timedelta(hours=6) <= REFERENCE - newest.created <= timedelta(hours=12)


def test_every_offered_service_has_a_technician_on_every_weekday() -> None:
    store = world()
    markets = {m.marketplace_id: m for m in MARKETPLACES}
    for shop in store.stores.values():
        market = markets[shop.marketplace_id]
        for job in store.jobs_at_store(shop.store_id):
            workers = store.qualified_resources(job)
            for day in range(15, 20):  # Monday 15 June to Friday 19 June 2026
                start = datetime(2026, 6, day, market.open_hour_utc, tzinfo=UTC)
                end = datetime(2026, 6, day, market.close_hour_utc, tzinfo=UTC)
                assert any(t.covers(start, end) for t in workers), (job.service_job_id, day)
