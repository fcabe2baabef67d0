"""Reference data the seeded world is drawn from: marketplaces, services, names, places.

Everything here is invented for the emulator (the names, streets and phone numbers are
fictional; US phone numbers use the 555-01xx range set aside for fiction).
"""

from __future__ import annotations

from decimal import Decimal

import attrs

__all__ = ["MARKETPLACES", "SERVICES", "Marketplace", "ServiceOffer"]


@attrs.frozen
class Marketplace:
    marketplace_id: str
    country_code: str
    currency: str
    price_factor: Decimal
    """Multiplies the USD list price into this marketplace's currency."""
    open_hour_utc: int
    close_hour_utc: int
    cities: tuple[tuple[str, str, str], ...]
    """(city, state or region, postal code prefix)."""
    phone_prefix: str


MARKETPLACES: tuple[Marketplace, ...] = (
    Marketplace(
        "ATVPDKIKX0DER",
        "US",
        "USD",
        Decimal("1"),
        14,
        22,
        (("Seattle", "WA", "981"), ("Austin", "TX", "787"), ("Columbus", "OH", "432")),
        "+1-206-555-01",
    ),
    Marketplace(
        "A2EUQ1WTGCTBG2",
        "CA",
        "CAD",
        Decimal("1.35"),
        13,
        21,
        (("Toronto", "ON", "M5V"), ("Calgary", "AB", "T2P")),
        "+1-416-555-01",
    ),
    Marketplace(
        "A1AM78C64UM0Y8",
        "MX",
        "MXN",
        Decimal("17"),
        15,
        23,
        (("Ciudad de México", "CDMX", "06"), ("Guadalajara", "JAL", "44")),
        "+52-55-5550-01",
    ),
    Marketplace(
        "A1F83G8C2ARO7P",
        "GB",
        "GBP",
        Decimal("0.8"),
        8,
        17,
        (("Manchester", "Greater Manchester", "M1"), ("Leeds", "West Yorkshire", "LS1")),
        "+44-161-496-0",
    ),
    Marketplace(
        "A1PA6795UKMFR9",
        "DE",
        "EUR",
        Decimal("0.92"),
        7,
        16,
        (("Berlin", "BE", "101"), ("München", "BY", "803")),
        "+49-30-555-01",
    ),
)


@attrs.frozen
class ServiceOffer:
    title: str
    skills: tuple[str, ...]
    duration: int
    """Minutes an appointment takes."""
    price: Decimal
    """List price in USD."""
    location: str
    item: tuple[str, str] | None
    """(title, brand) of the product bought with the service, if any."""
    vehicle: bool = False
    """Whether the job is tied to a vehicle (a linked asset)."""


SERVICES: tuple[ServiceOffer, ...] = (
    ServiceOffer(
        "TV Wall Mounting, up to 65 inches",
        ("TV_MOUNTING",),
        90,
        Decimal("129.99"),
        "IN_HOME",
        ("65-inch 4K Smart TV", "Northlight"),
    ),
    ServiceOffer(
        "Smart Thermostat Installation",
        ("THERMOSTAT_INSTALLATION", "ELECTRICAL"),
        60,
        Decimal("99.00"),
        "IN_HOME",
        ("Learning Thermostat, 3rd generation", "Clima"),
    ),
    ServiceOffer(
        "Dishwasher Installation",
        ("APPLIANCE_INSTALLATION", "PLUMBING"),
        120,
        Decimal("159.00"),
        "IN_HOME",
        ("24-inch Built-In Dishwasher", "Brightwash"),
    ),
    ServiceOffer(
        "Ceiling Fan Installation",
        ("ELECTRICAL",),
        90,
        Decimal("119.50"),
        "IN_HOME",
        ("52-inch Ceiling Fan with Light", "Aerio"),
    ),
    ServiceOffer(
        "Video Doorbell Installation",
        ("SMART_HOME", "ELECTRICAL"),
        60,
        Decimal("79.99"),
        "IN_HOME",
        ("Video Doorbell Pro", "Porchlight"),
    ),
    ServiceOffer(
        "Furniture Assembly, one item", ("ASSEMBLY",), 120, Decimal("89.00"), "IN_HOME", None
    ),
    ServiceOffer(
        "Home Theater Setup",
        ("AV_SETUP", "TV_MOUNTING"),
        120,
        Decimal("199.00"),
        "IN_HOME",
        ("5.1 Surround Sound System", "Sonora"),
    ),
    ServiceOffer(
        "Tire Installation, set of four",
        ("TIRE_INSTALLATION",),
        60,
        Decimal("96.00"),
        "IN_STORE",
        ("All-Season Tire 225/65R17", "Roadwise"),
        vehicle=True,
    ),
    ServiceOffer(
        "Oil Change, synthetic",
        ("AUTOMOTIVE",),
        45,
        Decimal("69.99"),
        "IN_STORE",
        ("Full Synthetic Motor Oil, 5 quarts", "Lubrix"),
        vehicle=True,
    ),
    ServiceOffer("Smart Home Consultation", ("SMART_HOME",), 45, Decimal("49.00"), "ONLINE", None),
    ServiceOffer(
        "Laptop Setup and Data Transfer",
        ("TECH_SUPPORT",),
        60,
        Decimal("59.99"),
        "ONLINE",
        ("14-inch Laptop", "Keystone"),
    ),
)

FIRST_NAMES = (
    "Alex", "Sam", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Avery", "Quinn",
    "Maria", "Jonas", "Lena", "Mateo", "Sofia", "Noah", "Priya", "Wei", "Amara", "Lucas",
)  # fmt: skip
LAST_NAMES = (
    "Garcia", "Smith", "Müller", "Nguyen", "Okafor", "Rossi", "Kowalski", "Hernández",
    "Brown", "Schmidt", "Tanaka", "Patel", "Dubois", "Silva", "Johansson", "Murphy",
)  # fmt: skip
STREETS = (
    "Maple Avenue", "Harbor Street", "Elm Court", "Lakeview Drive", "Station Road",
    "Hillside Lane", "Orchard Way", "Mill Street", "Park Terrace", "River Road",
)  # fmt: skip
VEHICLES = (
    ("Compact hatchback", "2019"), ("Mid-size sedan", "2021"), ("Crossover SUV", "2018"),
    ("Pickup truck", "2022"), ("Minivan", "2017"),
)  # fmt: skip
INSTRUMENTS = ("CREDIT_CARD", "DEBIT_CARD", "GIFT_CARD")
