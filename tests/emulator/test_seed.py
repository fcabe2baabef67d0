"""The seeded world: deterministic, varied, and consistent with itself."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from spapi_services._serde import make_converter
from spapi_services.emulator import FakeClock
from spapi_services.emulator.catalog import MARKETPLACES
from spapi_services.emulator.seed import seed_store
from spapi_services.emulator.store import AvailabilityWindow, Store
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
