"""Capacity arithmetic: what a resource can take, from its schedule, reservations and
appointments.

A resource's *scheduled* capacity is the sum of the availability windows covering an
instant; *reserved* is the capacity its reservations take; *encumbered* is the number of
active appointments it is busy with; *available* is what is left (never below zero).
All four are step functions of time.  They are computed once per query window by one
sweep over the windows' edges, then cut into ranges (equal neighbours merged) or into
fixed slots (a slot reports its worst moment: the least scheduled or available
capacity, the most reserved or encumbered).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from .store import ResourceRecord, Store
from .times import format_datetime

__all__ = ["CAPACITY_TYPES", "Piece", "appointment_slots", "fixed_slots", "pieces", "range_slots"]

CAPACITY_TYPES = (
    "SCHEDULED_CAPACITY",
    "AVAILABLE_CAPACITY",
    "ENCUMBERED_CAPACITY",
    "RESERVED_CAPACITY",
)
_SCHEDULED, _AVAILABLE, _ENCUMBERED, _RESERVED = range(4)
_FIXED_KEYS = ("scheduledCapacity", "availableCapacity", "encumberedCapacity", "reservedCapacity")

#: A stretch of time and its (scheduled, available, encumbered, reserved) capacities.
Piece = tuple[datetime, datetime, tuple[int, int, int, int]]


def pieces(store: Store, resource: ResourceRecord, lo: datetime, hi: datetime) -> list[Piece]:
    """The resource's four capacities over ``[lo, hi)`` as consecutive pieces."""
    deltas: dict[datetime, list[int]] = {lo: [0, 0, 0], hi: [0, 0, 0]}

    def add(spans: Iterable[tuple[datetime, datetime]], layer: int, amount: int) -> None:
        for start, end in spans:
            deltas.setdefault(start, [0, 0, 0])[layer] += amount
            deltas.setdefault(end, [0, 0, 0])[layer] -= amount

    for window in resource.schedule:
        add(window.occurrences(lo, hi), 0, window.capacity)
    for reservation in store.reservations_of(resource.resource_id):
        add(reservation.window.occurrences(lo, hi), 1, reservation.window.capacity)
    busy = (
        (max(s, lo), min(e, hi)) for s, e in store.busy_intervals(resource) if s < hi and e > lo
    )
    add(busy, 2, 1)

    out: list[Piece] = []
    scheduled = reserved = encumbered = 0
    edges = sorted(deltas)
    for start, end in itertools.pairwise(edges):
        ds, dr, de = deltas[start]
        scheduled, reserved, encumbered = scheduled + ds, reserved + dr, encumbered + de
        available = max(0, scheduled - reserved - encumbered)
        out.append((start, end, (scheduled, available, encumbered, reserved)))
    return out


def range_slots(parts: Sequence[Piece], capacity_types: Sequence[str]) -> list[dict[str, Any]]:
    """``RangeCapacity`` JSON per requested type, neighbours with equal capacity merged."""
    result = []
    for kind in capacity_types:
        index = CAPACITY_TYPES.index(kind)
        slots: list[list[Any]] = []
        for start, end, values in parts:
            value = values[index]
            if slots and slots[-1][2] == value and slots[-1][1] == start:
                slots[-1][1] = end
            else:
                slots.append([start, end, value])
        result.append(
            {
                "capacityType": kind,
                "slots": [
                    {
                        "startDateTime": format_datetime(s),
                        "endDateTime": format_datetime(e),
                        "capacity": c,
                    }
                    for s, e, c in slots
                ],
            }
        )
    return result


def _worst(
    parts: Sequence[Piece], first: int, start: datetime, end: datetime
) -> tuple[int, list[int]]:
    """The worst values over ``[start, end)``, and where the next slot may start looking."""
    low_s = low_a = 1 << 30
    high_e = high_r = 0
    index = first
    while index < len(parts) and parts[index][1] <= start:
        index += 1
    nxt = index
    while index < len(parts) and parts[index][0] < end:
        s, a, e, r = parts[index][2]
        low_s, low_a = min(low_s, s), min(low_a, a)
        high_e, high_r = max(high_e, e), max(high_r, r)
        index += 1
    if low_s == 1 << 30:
        low_s = low_a = 0
    return nxt, [low_s, low_a, high_e, high_r]


def fixed_slots(
    parts: Sequence[Piece],
    capacity_types: Sequence[str],
    start: datetime,
    end: datetime,
    minutes: int,
) -> list[dict[str, Any]]:
    """``FixedSlot`` JSON for each ``minutes``-long slot from ``start`` to ``end``."""
    wanted = [
        (CAPACITY_TYPES.index(k), _FIXED_KEYS[CAPACITY_TYPES.index(k)]) for k in capacity_types
    ]
    step = timedelta(minutes=minutes)
    out = []
    cursor = 0
    slot = start
    while slot < end:
        cursor, worst = _worst(parts, cursor, slot, min(slot + step, end))
        entry: dict[str, Any] = {"startDateTime": format_datetime(slot)}
        for index, key in wanted:
            entry[key] = worst[index]
        out.append(entry)
        slot += step
    return out


def appointment_slots(
    parts: Sequence[Piece], start: datetime, end: datetime, minutes: int
) -> list[dict[str, Any]]:
    """Bookable slots: hourly starts whose whole length is within working hours."""
    hour = timedelta(hours=1)
    length = timedelta(minutes=minutes)
    slot = start.replace(minute=0, second=0, microsecond=0)
    if slot < start:
        slot += hour
    out = []
    cursor = 0
    while slot + length <= end:
        cursor, worst = _worst(parts, cursor, slot, slot + length)
        if worst[_SCHEDULED] > 0:
            out.append(
                {
                    "startTime": format_datetime(slot),
                    "endTime": format_datetime(slot + length),
                    "capacity": worst[_AVAILABLE],
                }
            )
        slot += hour
    return out
