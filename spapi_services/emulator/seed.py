"""A believable world, grown deterministically from a seed.

The same ``seed`` and ``reference`` time always give the same stores, technicians,
schedules and jobs.  Jobs are spread over the 90 days before ``reference`` across five
marketplaces, in every status, with appointments that fit the status (a completed job
has a completed appointment with a proof of appointment; a job waiting for service has
an active one, often staffed, sometimes rescheduled).  Technicians are generated so that
every service a store offers has at least two qualified technicians, one of whom works
every weekday.  Names, addresses and phone numbers are invented.

Whatever day ``reference`` falls on, a seed draws the same jobs (statuses, marketplaces,
ages): only what depends on the calendar itself (which technicians are on duty for an
appointment, weekends moved to Monday) differs.  And the first job of each marketplace
was created 6 to 12 hours before ``reference``: at any moment of the day that starts at
``reference``, every marketplace with jobs has one created in the last 36 hours.
"""

from __future__ import annotations

import hashlib
import random
import string
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .catalog import (
    FIRST_NAMES,
    INSTRUMENTS,
    LAST_NAMES,
    MARKETPLACES,
    SERVICES,
    STREETS,
    VEHICLES,
    Marketplace,
    ServiceOffer,
)
from .store import (
    AppointmentRecord,
    AvailabilityWindow,
    JobRecord,
    ReservationRecord,
    ResourceRecord,
    Store,
    StoreRecord,
)
from .times import format_datetime

__all__ = ["NEW_JOB_STATUSES", "seed_store", "seller_seed"]

_UPPER = string.ascii_uppercase + string.digits
_STATUSES = (
    ("NOT_SERVICED", 30),
    ("COMPLETED", 30),
    ("PENDING_SCHEDULE", 15),
    ("CANCELLED", 12),
    ("HOLD", 5),
    ("NOT_FULFILLABLE", 4),
    ("PAYMENT_DECLINED", 4),
)
_MARKET_WEIGHTS = (50, 13, 12, 13, 12)
#: How long before the reference the first job of each marketplace is created.
_RECENT = (timedelta(hours=6), timedelta(hours=12))
_WEEKDAYS = frozenset(range(5))
_POA_TYPES = ("NO_SIGNATURE_DUMMY_POS", "CUSTOMER_SIGNATURE", "DUMMY_RECEIPT", "POA_RECEIPT")


#: The statuses a new job (``Store.new_job`` without a status) is drawn from, and weights.
NEW_JOB_STATUSES = (("NOT_SERVICED", 3), ("PENDING_SCHEDULE", 2))


def seed_store(store: Store, *, jobs: int, seed: int, reference: datetime) -> None:
    """Fill an empty ``store`` with ``jobs`` jobs and the stores and people behind them.

    The store keeps the generator afterwards, so :meth:`Store.new_job` makes jobs like
    the seeded ones, drawn from a sequence of their own (the same seed, the same jobs,
    in the same order of calls).
    """
    rng = random.Random(seed)
    world = _World(store, rng, reference)
    world.build_stores()
    for _ in range(jobs):
        world.add_job()
    world.rng = random.Random(f"new jobs:{seed}")
    store.maker = world


def seller_seed(seed: int, index: int) -> int:
    """The seed of the world of the emulator's ``index``-th seller: ``seed`` itself for
    the first, one drawn from both for the others (the same pair, the same world)."""
    if index == 0:
        return seed
    digest = hashlib.sha256(f"seller world:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class _World:
    def __init__(self, store: Store, rng: random.Random, reference: datetime) -> None:
        self.store = store
        self.rng = rng
        self.ref = reference
        self.used_ids: set[str] = set()
        self.recent: set[str] = set()
        """Marketplaces that have their recent job."""
        store.seller_id = "A" + self.code(13)
        self.provider_id = "A" + self.code(12)
        self.asins = {offer.title: "B0" + self.code(8) for offer in SERVICES}
        self.item_asins = {offer.title: "B0" + self.code(8) for offer in SERVICES}
        self.offers: dict[str, list[ServiceOffer]] = {}
        self.by_market: dict[str, list[StoreRecord]] = {}
        self.markets = {m.marketplace_id: m for m in MARKETPLACES}

    # --- small draws --------------------------------------------------------------

    def code(self, length: int) -> str:
        return "".join(self.rng.choices(_UPPER, k=length))

    def digits(self, length: int) -> str:
        return "".join(self.rng.choices(string.digits, k=length))

    def unique(self, make: Any) -> str:
        while True:
            value: str = make()
            if value not in self.used_ids:
                self.used_ids.add(value)
                return value

    def order_id(self) -> str:
        return self.unique(lambda: f"{self.digits(3)}-{self.digits(7)}-{self.digits(7)}")

    def person(self) -> str:
        return f"{self.rng.choice(FIRST_NAMES)} {self.rng.choice(LAST_NAMES)}"

    def at_hour(self, day: datetime, market: Marketplace) -> datetime:
        """A whole hour of the working day; weekends move to the Monday after."""
        hour = self.rng.randrange(market.open_hour_utc, market.close_hour_utc - 2)
        if day.weekday() >= 5:
            day += timedelta(days=7 - day.weekday())
        return day.replace(hour=hour, minute=0, second=0, microsecond=0)

    # --- stores, technicians, schedules -------------------------------------------

    def build_stores(self) -> None:
        for market in MARKETPLACES:
            count = 3 if market.country_code == "US" else 2
            for index in range(count):
                self.add_store(market, index)

    def add_store(self, market: Marketplace, index: int) -> None:
        rng = self.rng
        city = market.cities[index % len(market.cities)][0]
        auto_center = index % 2 == 0
        offers = [
            o
            for o in SERVICES
            if o.location != "IN_STORE" or auto_center
            if rng.random() < 0.85 or o.location == "IN_STORE"
        ]
        record = StoreRecord(
            store_id=self.store.new_uuid(),
            marketplace_id=market.marketplace_id,
            name=f"{city} Service Center {index + 1}",
            services={self.asins[o.title]: o.duration for o in offers},
            scheduling_type="REAL_TIME_SCHEDULING" if index != 1 else "NON_REAL_TIME_SCHEDULING",
        )
        self.store.stores[record.store_id] = record
        self.offers[record.store_id] = offers
        self.by_market.setdefault(market.marketplace_id, []).append(record)
        techs = [self.add_technician(record, offers) for _ in range(rng.randint(4, 7))]
        self.cover(techs, offers)
        if len(techs) >= 5:
            rng.choice(techs).background_checked = False
            self.cover(techs, offers)
        self.add_schedules(record, techs, market)

    def add_technician(self, shop: StoreRecord, offers: list[ServiceOffer]) -> ResourceRecord:
        rng = self.rng
        skills = {s for o in rng.sample(offers, k=min(len(offers), 2)) for s in o.skills}
        locations = {o.location for o in offers if rng.random() < 0.6} or {"IN_HOME"}
        tech = ResourceRecord(
            resource_id=self.unique(lambda: "T" + self.code(11)),
            name=self.person(),
            store_id=shop.store_id,
            kind="TECHNICIAN",
            skills=frozenset(skills),
            location_types=frozenset(locations),
        )
        self.store.resources[tech.resource_id] = tech
        shop.technicians.append(tech.resource_id)
        return tech

    def cover(self, techs: list[ResourceRecord], offers: list[ServiceOffer]) -> None:
        """Make sure every offered service has two qualified, background-checked technicians."""
        for offer in offers:
            needed = set(offer.skills)

            def qualified(
                t: ResourceRecord, needed: set[str] = needed, o: ServiceOffer = offer
            ) -> bool:
                return (
                    t.background_checked and needed <= t.skills and o.location in t.location_types
                )

            pool = [t for t in techs if t.background_checked]
            while sum(qualified(t) for t in techs) < 2:
                tech = self.rng.choice([t for t in pool if not qualified(t)])
                tech.skills = tech.skills | needed
                tech.location_types = tech.location_types | {offer.location}

    def add_schedules(
        self, shop: StoreRecord, techs: list[ResourceRecord], market: Marketplace
    ) -> None:
        rng = self.rng
        first_day = (self.ref - timedelta(days=120)).replace(hour=0, minute=0, second=0)
        last_day = self.ref + timedelta(days=365)

        def window(days: frozenset[int], capacity: int) -> AvailabilityWindow:
            start = datetime.combine(first_day.date(), time(market.open_hour_utc), self.ref.tzinfo)
            end = start.replace(hour=market.close_hour_utc)
            return AvailabilityWindow(start, end, capacity, last_day, days)

        shifts = [_WEEKDAYS if rng.random() < 0.6 else frozenset(range(1, 6)) for _ in techs]
        _cover_weekdays(techs, shifts, self.offers[shop.store_id])
        for tech, days in zip(techs, shifts, strict=True):
            tech.schedule.append(window(days, 1))
        whole = ResourceRecord(
            resource_id=shop.store_id,
            name=shop.name,
            store_id=shop.store_id,
            kind="STORE",
            location_types=frozenset({"IN_HOME", "IN_STORE", "ONLINE"}),
        )
        whole.schedule.append(window(frozenset(range(6)), len(techs)))
        self.store.resources[whole.resource_id] = whole
        # A few breaks and trainings in the coming fortnight.
        for tech in rng.sample(techs, k=min(3, len(techs))):
            day = self.ref + timedelta(days=rng.randint(1, 14))
            start = self.at_hour(day, market)
            reservation = ReservationRecord(
                reservation_id=self.store.new_reservation_id(),
                resource_id=tech.resource_id,
                type=rng.choice(("BREAK", "TRAINING", "TRAVEL")),
                window=AvailabilityWindow(start, start + timedelta(hours=1)),
            )
            self.store.reservations[reservation.reservation_id] = reservation

    # --- jobs -----------------------------------------------------------------------

    def add_job(self) -> None:
        rng = self.rng
        market = rng.choices(MARKETPLACES, weights=_MARKET_WEIGHTS)[0]
        age = rng.uniform(6 * 3600, 90 * 86400)
        if market.marketplace_id not in self.recent:
            # A marketplace's first job is a recent one: every world has fresh work.
            self.recent.add(market.marketplace_id)
            age = rng.uniform(*(bound.total_seconds() for bound in _RECENT))
        shop = rng.choice(self.by_market[market.marketplace_id])
        offer = rng.choice(self.offers[shop.store_id])
        status = rng.choices([s for s, _ in _STATUSES], weights=[w for _, w in _STATUSES])[0]
        created = _to_millisecond(self.ref - timedelta(seconds=age))
        job = self.assemble(market, shop, offer, status, created, self.ref)
        stamps = [created] + [a.start for a in job.appointments if a.start < self.ref]
        job.last_updated = min(self.ref, max(stamps) + timedelta(minutes=rng.randint(5, 600)))

    def new_job(
        self, *, marketplace_id: str | None, status: str | None, created: datetime
    ) -> JobRecord:
        """A job created at ``created``, drawn like the seeded ones (see ``Store.new_job``)."""
        rng = self.rng
        if marketplace_id is None:
            market = rng.choices(MARKETPLACES, weights=_MARKET_WEIGHTS)[0]
        else:
            market = self.markets[marketplace_id]
        shop = rng.choice(self.by_market[market.marketplace_id])
        offer = rng.choice(self.offers[shop.store_id])
        if status is None:
            statuses = [s for s, _ in NEW_JOB_STATUSES]
            status = rng.choices(statuses, weights=[w for _, w in NEW_JOB_STATUSES])[0]
        created = _to_millisecond(created)
        # Built as of its creation: its appointments are ahead of it.
        job = self.assemble(market, shop, offer, status, created, created)
        job.last_updated = created
        return job

    def book(self, job: JobRecord, now: datetime) -> AppointmentRecord:
        """An active appointment for ``job`` in the days after ``now``, often staffed."""
        market = self.markets[job.marketplace_id]
        start = self.at_hour(now + timedelta(days=self.rng.randint(1, 14)), market)
        appointment = self.appointment(job, "ACTIVE", start, staffed=self.rng.random() < 0.7)
        job.appointments.append(appointment)
        return appointment

    def assemble(
        self,
        market: Marketplace,
        shop: StoreRecord,
        offer: ServiceOffer,
        status: str,
        created: datetime,
        ref: datetime,
    ) -> JobRecord:
        """The job itself, its details and appointments, added to the store."""
        rng = self.rng
        job_id = self.unique(lambda: str(rng.randrange(10**13, 10**14)))
        product_orders = (self.order_id(),) if offer.item else ()
        tracking = ("TBA" + self.digits(12),) if offer.item and status != "CANCELLED" else ()
        job = JobRecord(
            service_job_id=job_id,
            status=status,
            created=created,
            last_updated=created,
            marketplace_id=market.marketplace_id,
            store_id=shop.store_id,
            service_order_id=self.order_id(),
            asin=self.asins[offer.title],
            required_skills=offer.skills,
            location_type=offer.location,
            duration=offer.duration,
            product_order_ids=product_orders,
            tracking_ids=tracking,
        )
        job.details = self.details(job, offer, market, shop)
        self.store.add_job(job)
        self.add_appointments(job, market, ref)
        return job

    def details(
        self, job: JobRecord, offer: ServiceOffer, market: Marketplace, shop: StoreRecord
    ) -> dict[str, Any]:
        rng = self.rng
        preferred_day = job.created + timedelta(days=rng.randint(2, 10))
        details: dict[str, Any] = {
            "scopeOfWork": {
                "asin": job.asin,
                "title": offer.title,
                "quantity": rng.randint(1, 3) if offer.skills == ("ASSEMBLY",) else 1,
                "requiredSkills": list(offer.skills),
            },
            "seller": {"sellerId": self.store.seller_id},
            "serviceJobProvider": {"serviceJobProviderId": self.provider_id},
            "preferredAppointmentTimes": [
                {
                    "startTime": format_datetime(self.at_hour(preferred_day, market)),
                    "durationInMinutes": offer.duration,
                }
            ],
            "buyer": {
                "buyerId": "A" + self.code(13),
                "name": self.person(),
                "phone": market.phone_prefix + self.digits(2),
                "isPrimeMember": rng.random() < 0.6,
            },
        }
        if offer.item is not None:
            details["associatedItems"] = [self.item(job, offer, market)]
        location: dict[str, Any] = {"serviceLocationType": offer.location}
        if offer.location == "IN_HOME":
            location["address"] = self.address(market, details["buyer"]["name"])
        elif offer.location == "IN_STORE":
            location["address"] = self.address(market, shop.name)
        details["serviceLocation"] = location
        price = (offer.price * market.price_factor).quantize(Decimal("0.01"), ROUND_HALF_UP)
        details["payments"] = [
            {
                "amount": {"value": _number(price), "currency": market.currency},
                "instrument": rng.choice(INSTRUMENTS),
            }
        ]
        return details

    def item(self, job: JobRecord, offer: ServiceOffer, market: Marketplace) -> dict[str, Any]:
        rng = self.rng
        assert offer.item is not None
        title, brand = offer.item
        if job.status == "CANCELLED":
            item_status = rng.choice(("CANCELLED", "DELIVERED"))
        else:
            item_status = rng.choice(("DELIVERED", "DELIVERED", "SHIPPED", "ACTIVE"))
        promise_start = job.created + timedelta(days=rng.randint(1, 4))
        item: dict[str, Any] = {
            "asin": self.item_asins[offer.title],
            "title": title,
            "quantity": 4 if "Tire" in title else 1,
            "orderId": job.product_order_ids[0],
            "itemStatus": item_status,
            "brandName": brand,
            "itemDelivery": {
                "estimatedDeliveryDate": format_datetime(promise_start + timedelta(days=1)),
                "itemDeliveryPromise": {
                    "startTime": format_datetime(promise_start),
                    "endTime": format_datetime(promise_start + timedelta(days=2)),
                },
            },
        }
        if offer.vehicle:
            kind, year = rng.choice(VEHICLES)
            item["linkedAssets"] = [
                {
                    "assetType": "VEHICLE",
                    "assetName": f"{year} {kind}",
                    "additionalAttributes": {
                        "vehicleType": kind,
                        "modelYear": year,
                        "tireSize": "225/65R17",
                    },
                }
            ]
        return item

    def address(self, market: Marketplace, name: str) -> dict[str, Any]:
        rng = self.rng
        city, region, postal = rng.choice(market.cities)
        address: dict[str, Any] = {
            "name": name,
            "addressLine1": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}",
        }
        if rng.random() < 0.2:
            address["addressLine2"] = f"Unit {rng.randint(1, 40)}"
        address.update(
            city=city,
            stateOrRegion=region,
            postalCode=postal + self.digits(2),
            countryCode=market.country_code,
            phone=market.phone_prefix + self.digits(2),
        )
        return address

    def add_appointments(self, job: JobRecord, market: Marketplace, ref: datetime) -> None:
        rng = self.rng
        status = job.status
        if status == "NOT_SERVICED" or (status == "HOLD" and rng.random() < 0.5):
            if rng.random() < 0.8:
                day = ref + timedelta(days=rng.randint(1, 21))
            else:
                day = max(job.created + timedelta(days=1), ref - timedelta(days=3))
            start = self.at_hour(day, market)
            if rng.random() < 0.25:
                old = self.appointment(job, "CANCELLED", start - timedelta(days=2))
                job.appointments.append(old)
                new = self.appointment(job, "ACTIVE", start, staffed=rng.random() < 0.7)
                new.rescheduled_appointment_id = old.appointment_id
                job.appointments.append(new)
            else:
                job.appointments.append(
                    self.appointment(job, "ACTIVE", start, staffed=rng.random() < 0.7)
                )
        elif status == "COMPLETED":
            latest = ref - timedelta(hours=2)
            day = min(job.created + timedelta(days=rng.randint(1, 10)), latest)
            start = min(self.at_hour(day, market), latest - timedelta(minutes=job.duration))
            start = max(start, job.created + timedelta(minutes=30))
            appointment = self.appointment(job, "COMPLETED", start, staffed=True)
            appointment.poa = self.poa(appointment)
            job.appointments.append(appointment)
        elif status in ("CANCELLED", "PENDING_SCHEDULE") and rng.random() < 0.4:
            start = self.at_hour(job.created + timedelta(days=rng.randint(1, 5)), market)
            job.appointments.append(self.appointment(job, "CANCELLED", start))

    def appointment(
        self, job: JobRecord, status: str, start: datetime, *, staffed: bool = False
    ) -> AppointmentRecord:
        technicians: list[tuple[str, str]] = []
        # One draw whatever the pool: who is on duty depends on the weekday, and the rest
        # of the world must not.
        pick = random.Random(self.rng.getrandbits(64))
        if staffed:
            slot = AppointmentRecord("", status, start, job.duration)
            pool = self.store.qualified_resources(job, slot)
            chosen = pick.sample(pool, k=min(len(pool), pick.choice((1, 1, 2))))
            technicians = [(t.resource_id, t.name) for t in chosen]
        return AppointmentRecord(
            appointment_id=f"{job.service_job_id}_{self.store.new_uuid()}",
            status=status,
            start=start,
            duration=job.duration,
            technicians=technicians,
        )

    def poa(self, appointment: AppointmentRecord) -> dict[str, Any]:
        technicians = [{"technicianId": t, "name": n} for t, n in appointment.technicians]
        poa: dict[str, Any] = {
            "appointmentTime": {
                "startTime": format_datetime(appointment.start),
                "durationInMinutes": appointment.duration,
            },
            "uploadTime": format_datetime(appointment.end),
            "poaType": self.rng.choice(_POA_TYPES),
        }
        if technicians:
            poa["technicians"] = technicians
            poa["uploadingTechnician"] = appointment.technicians[0][0]
        return poa


def _cover_weekdays(
    techs: list[ResourceRecord], shifts: list[frozenset[int]], offers: list[ServiceOffer]
) -> None:
    """Put one qualified technician of each offered service on the Monday-to-Friday shift,
    so that an appointment on any weekday has someone to staff it."""
    for offer in offers:
        qualified = [
            i
            for i, tech in enumerate(techs)
            if tech.background_checked
            and set(offer.skills) <= tech.skills
            and offer.location in tech.location_types
        ]
        if qualified and not any(shifts[i] == _WEEKDAYS for i in qualified):
            shifts[qualified[0]] = _WEEKDAYS


def _to_millisecond(value: datetime) -> datetime:
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _number(value: Decimal) -> int | float:
    # JSON has one number type; the API writes whole amounts without a fraction.
    return int(value) if value == value.to_integral_value() else float(value)
