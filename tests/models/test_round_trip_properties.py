"""Property: any model survives unstructure -> JSON text -> structure unchanged.

The strategies are built from the attrs classes themselves, so a field added to a model
is covered without touching this file.  Datetimes are aware with any whole-minute offset
and truncated to milliseconds (what the wire keeps); money is a Decimal with cents.
"""

from __future__ import annotations

import string
import types
import typing
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spapi_services import _serde
from spapi_services import models as m
from spapi_services.models import (
    ApiEnum,
    AvailabilityRecord,
    FixedSlotCapacity,
    JobListing,
    Reservation,
    ServiceJob,
)

MODELS: list[type] = [obj for name in sorted(m.__all__) if attrs.has(obj := getattr(m, name))]

STRICT = _serde.make_converter(forbid_extra_keys=True)
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
_OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
DATETIMES = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.just(UTC) | _OFFSETS,
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
MONEY = st.decimals(
    min_value=Decimal("-1000000000"),
    max_value=Decimal("1000000000"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)
# A small, fixed pool of values the enums do not know, so the pseudo-member cache stays small.
NEW_ENUM_VALUES = st.sampled_from(["NEW_VALUE", "ANOTHER_ONE"])


@cache
def strategy_for(tp: Any) -> st.SearchStrategy[Any]:
    """A strategy producing valid values of a model field's type."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        (inner,) = (a for a in typing.get_args(tp) if a is not type(None))
        return st.none() | strategy_for(inner)
    if origin is tuple or origin is Sequence:
        return st.lists(strategy_for(typing.get_args(tp)[0]), max_size=3).map(tuple)
    if origin is dict:
        return st.dictionaries(_TEXT, _TEXT, max_size=3)
    if isinstance(tp, type) and issubclass(tp, ApiEnum):
        return st.sampled_from(list(tp)) | NEW_ENUM_VALUES.map(tp)
    if attrs.has(tp):
        hints = typing.get_type_hints(tp)
        fields = {a.name: strategy_for(hints[a.name]) for a in attrs.fields(tp)}
        return st.builds(tp, **fields)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        str: _TEXT,
        int: st.integers(min_value=-(2**53), max_value=2**53),
        bool: st.booleans(),
        Decimal: MONEY,
        datetime: DATETIMES,
    }
    return simple[tp]


def through_json(obj: Any) -> Any:
    """What the other side of the wire would structure: dumps, then loads."""
    return _serde.structure(_serde.loads(_serde.dumps(_serde.unstructure(obj))), type(obj))


def test_the_models_are_discovered() -> None:
    wanted = {ServiceJob, JobListing, Reservation, AvailabilityRecord, FixedSlotCapacity}
    assert wanted <= set(MODELS)


@pytest.mark.parametrize("model", MODELS, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_round_trip(model: type, data: st.DataObject) -> None:
    obj = data.draw(strategy_for(model))
    wire = _serde.unstructure(obj)
    assert _serde.structure(wire, model) == obj
    assert through_json(obj) == obj
    # The lean path and cattrs' own (the strict twin uses only cattrs') agree.
    assert STRICT.structure(wire, model) == obj


# The shapes that matter most get more examples.


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(job=strategy_for(ServiceJob))
def test_service_job_round_trips(job: ServiceJob) -> None:
    assert through_json(job) == job


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(listing=strategy_for(JobListing))
def test_job_listing_round_trips(listing: JobListing) -> None:
    again = through_json(listing)
    assert again == listing
    # Datetimes come back as the same instants, now in UTC.
    for before, after in zip(listing.jobs or (), again.jobs or (), strict=True):
        if before.create_time is not None:
            assert after.create_time == before.create_time
            assert after.create_time is not None
            assert after.create_time.utcoffset() == timedelta(0)


@settings(max_examples=60, deadline=None)
@given(
    record=strategy_for(AvailabilityRecord),
    reservation=strategy_for(Reservation),
    capacity=strategy_for(FixedSlotCapacity),
)
def test_scheduling_shapes_round_trip(
    record: AvailabilityRecord, reservation: Reservation, capacity: FixedSlotCapacity
) -> None:
    assert through_json(record) == record
    assert through_json(reservation) == reservation
    assert through_json(capacity) == capacity


@settings(max_examples=60, deadline=None)
@given(value=MONEY)
def test_money_survives_the_wire_exactly(value: Decimal) -> None:
    amount = m.MoneyAmount(value=value, currency="USD")
    again = through_json(amount)
    assert again == amount
    assert isinstance(again.value, Decimal)


@settings(max_examples=60, deadline=None)
@given(moment=DATETIMES)
def test_datetimes_are_written_in_utc_with_z(moment: datetime) -> None:
    text = _serde.format_datetime(moment)
    assert text.endswith("Z")
    assert "+" not in text
    assert _serde.parse_datetime(text) == moment


@settings(max_examples=30, deadline=None)
@given(
    letters=st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=8), n=st.integers(0, 9)
)
def test_camel_case_names(letters: str, n: int) -> None:
    assert _serde.to_camel(f"{letters}_{letters}{n}") == f"{letters}{letters.capitalize()}{n}"
