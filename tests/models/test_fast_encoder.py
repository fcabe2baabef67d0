"""The models written out by generated functions give exactly what the converter gives.

``_serde.unstructure`` (behind ``to_api_dict``, ``to_api_json``, request bodies and the
sync's records) uses a function generated per class; the converter (cattrs) is the
reference.  Both write every model drawn from its attrs class, and models holding values
of other types than declared (an enum member for text, a list for a tuple, a bool for a
number, naive and odd datetimes), and the outputs must be the same to the type and
representation of every value, or both fail with the same error.  Timestamps are written
the same way with msgspec's writer and without it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spapi_services import _serde
from spapi_services import models as m

from .test_fast_decoder import _shape
from .test_round_trip_properties import MODELS, strategy_for

SETTINGS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def both_ways(obj: Any) -> tuple[Any, Any]:
    """(generated, converter) outputs for ``obj``, each its shape or the error it raised."""

    def outcome(write: Any) -> Any:
        try:
            return _shape(write(obj))
        except Exception as exc:
            return ("raised", type(exc), str(exc))

    return outcome(_serde.unstructure), outcome(_serde.converter.unstructure)


@pytest.fixture(params=["msgspec", "plain"])
def writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Timestamps written by msgspec's writer, or without msgspec."""
    if request.param == "plain":
        monkeypatch.setattr(_serde, "_msgspec", None)
    elif _serde._load_msgspec() is None:
        pytest.skip("msgspec (the speedups extra) is not installed")
    mode: str = request.param
    return mode


@pytest.mark.parametrize("model", MODELS, ids=lambda c: c.__name__)
@SETTINGS
@given(data=st.data())
def test_every_model_is_written_as_the_converter_writes_it(
    model: type, data: st.DataObject
) -> None:
    obj = data.draw(strategy_for(model))
    generated, reference = both_ways(obj)
    assert generated == reference
    assert generated[0] == "dict"


def _job(**fields: Any) -> m.ServiceJob:
    return m.ServiceJob(**{"service_job_id": "job-1", **fields})


NOON = datetime(2026, 6, 17, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "obj",
    [
        # Values of other types than declared: the converter's hooks decide.
        _job(service_job_id=m.ServiceJobStatus.COMPLETED),
        _job(service_job_status="NOT_AN_ENUM_MEMBER"),
        _job(product_order_ids=["a", "b"]),
        _job(product_order_ids=("a", m.ServiceJobStatus.HOLD)),
        _job(appointments=[m.Appointment(appointment_id="a")]),
        _job(appointments=()),
        _job(scope_of_work=m.ScopeOfWork(quantity=True)),
        _job(scope_of_work=m.ScopeOfWork(quantity=2.0)),  # type: ignore[arg-type]
        _job(payments=(m.Payment(amount=m.MoneyAmount(value=1.5, currency="USD")),)),  # type: ignore[arg-type]
        _job(payments=(m.Payment(amount=m.MoneyAmount(value=Decimal("1E+2"), currency="X")),)),
        _job(scope_of_work=m.ScopeOfWork(required_skills=("A", 5))),  # type: ignore[arg-type]
        # Timestamps: naive (refused), in other zones, at the calendar's ends.
        _job(create_time=datetime(2026, 1, 1)),
        _job(create_time=datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))),
        _job(create_time=datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))),
        _job(create_time=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        _job(create_time=NOON.replace(microsecond=999)),
        _job(create_time=NOON.replace(microsecond=250_999)),
        _job(create_time="2026-06-17T12:00:00Z"),  # type: ignore[arg-type]
        m.LinkedAsset(additional_attributes={"make": "Ford"}),
        m.AppointmentTime(start_time=NOON, duration_in_minutes=30),
        m.AppointmentTime(start_time=None, duration_in_minutes=30),  # type: ignore[arg-type]
    ],
    ids=repr,
)
def test_odd_values_are_written_as_the_converter_writes_them(obj: Any, writer: str) -> None:
    generated, reference = both_ways(obj)
    assert generated == reference


def test_a_model_of_another_kind_is_written_by_the_converter() -> None:
    @attrs.frozen
    class WithDefault:
        count: int = 3

    assert _serde.unstructure(WithDefault()) == _serde.converter.unstructure(WithDefault())
    assert _serde.unstructure([m.Seller(seller_id="s")]) == [{"sellerId": "s"}]


def _reference_text(value: datetime) -> str:
    """RFC 3339 in UTC with a Z, to the millisecond: what the API writes."""
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds" if utc.microsecond >= 1000 else "seconds") + "Z"


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.just(UTC)
        | st.integers(-14 * 60, 14 * 60).map(lambda n: timezone(timedelta(minutes=n))),
    )
)
def test_timestamps_are_written_the_same_with_msgspec_and_without(moment: datetime) -> None:
    expected = _reference_text(moment)
    assert _serde.format_datetime(moment) == expected
    saved, _serde._msgspec = _serde._msgspec, None
    try:
        assert _serde.format_datetime(moment) == expected
    finally:
        _serde._msgspec = saved
