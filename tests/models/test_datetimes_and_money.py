"""Timestamps in every form the API sends, UTC on the way out; money as exact Decimals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from spapi_services import _serde
from spapi_services._validation import check_datetime, check_request
from spapi_services.errors import ResponseDecodeError
from spapi_services.models import (
    AddAppointmentRequest,
    AppointmentSlot,
    AppointmentTimeInput,
    AvailabilityRecord,
    MoneyAmount,
    Payment,
    Recurrence,
    ServiceJob,
    SetAppointmentFulfillmentDataRequest,
    UpdateScheduleRequest,
)
from spapi_services.models.common import DateTimeRange

NOON_UTC = datetime(2021, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2021-01-01T12:00:00Z",
        "2021-01-01T12:00:00.000Z",
        "2021-01-01T12:00:00.0000000Z",
        "2021-01-01T12:00:00+00:00",
        "2021-01-01T17:30:00+05:30",
        "2021-01-01T17:30:00.000+05:30",
        "2021-01-01T05:00:00.00-07",  # the sandbox's hour-only offset
        "2021-01-01T05:00:00-0700",
        "2021-01-01T12:00:00",  # no offset: the API's times are UTC
    ],
)
def test_every_form_parses_to_the_same_aware_instant(text: str) -> None:
    parsed = _serde.structure({"startTime": text, "endTime": text}, AppointmentSlot).start_time
    assert parsed is not None
    assert parsed.tzinfo is not None
    assert parsed == NOON_UTC


def test_fractional_seconds_are_kept_to_the_millisecond() -> None:
    parsed = _serde.parse_datetime("2019-12-11T14:49:53.952Z")
    assert parsed.microsecond == 952_000
    assert _serde.format_datetime(parsed) == "2019-12-11T14:49:53.952Z"
    # Finer fractions than the wire keeps are truncated, not rounded up.
    assert _serde.format_datetime(parsed.replace(microsecond=952_999)) == (
        "2019-12-11T14:49:53.952Z"
    )


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (NOON_UTC, "2021-01-01T12:00:00Z"),
        (datetime(2021, 1, 1, 17, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))), None),
        (datetime(2021, 1, 1, 5, 0, tzinfo=timezone(timedelta(hours=-7))), None),
        (datetime(2020, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-13))), None),
    ],
)
def test_output_is_utc_with_z(moment: datetime, text: str | None) -> None:
    assert _serde.format_datetime(moment) == (text or "2021-01-01T12:00:00Z")


def test_early_years_keep_four_digits() -> None:
    early = datetime(999, 3, 4, 5, 6, 7, 8000, tzinfo=UTC)
    assert _serde.format_datetime(early) == "0999-03-04T05:06:07.008Z"
    assert _serde.parse_datetime(_serde.format_datetime(early)) == early


def test_request_bodies_carry_utc() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    body = AddAppointmentRequest(
        appointment_time=AppointmentTimeInput(start_time=datetime(2021, 1, 1, 15, 30, tzinfo=india))
    )
    check_request(body, "body")
    assert _serde.unstructure(body) == {"appointmentTime": {"startTime": "2021-01-01T10:00:00Z"}}


def test_format_datetime_refuses_naive() -> None:
    with pytest.raises(ValueError, match="naive"):
        _serde.format_datetime(datetime(2021, 1, 1, 12))


def test_unstructuring_a_naive_datetime_fails_rather_than_guessing() -> None:
    body = AddAppointmentRequest(
        appointment_time=AppointmentTimeInput(start_time=datetime(2021, 1, 1, 12))
    )
    with pytest.raises(ValueError, match="naive"):
        _serde.unstructure(body)


@pytest.mark.parametrize(
    ("request_body", "path"),
    [
        (
            AddAppointmentRequest(
                appointment_time=AppointmentTimeInput(start_time=datetime(2021, 1, 1, 12))
            ),
            "body.appointment_time.start_time",
        ),
        (
            UpdateScheduleRequest(
                schedules=[
                    AvailabilityRecord(start_time=NOON_UTC, end_time=NOON_UTC),
                    AvailabilityRecord(
                        start_time=NOON_UTC,
                        end_time=NOON_UTC,
                        recurrence=Recurrence(end_time=datetime(2021, 2, 1)),
                    ),
                ]
            ),
            "body.schedules[1].recurrence.end_time",
        ),
        (
            SetAppointmentFulfillmentDataRequest(
                estimated_arrival_time=DateTimeRange(
                    start_time=NOON_UTC, end_time=datetime(2021, 1, 1, 13)
                )
            ),
            "body.estimated_arrival_time.end_time",
        ),
    ],
)
def test_check_request_refuses_naive_datetimes_naming_the_field(
    request_body: object, path: str
) -> None:
    with pytest.raises(ValueError, match="naive") as caught:
        check_request(request_body, "body")
    assert str(caught.value).startswith(path + ":")


def test_check_datetime() -> None:
    assert check_datetime("start_time", NOON_UTC) is NOON_UTC
    with pytest.raises(ValueError, match=r"^start_time: naive"):
        check_datetime("start_time", datetime(2021, 1, 1))
    with pytest.raises(TypeError, match=r"^start_time: expected a datetime, got str"):
        check_datetime("start_time", "2021-01-01T00:00:00Z")


@pytest.mark.parametrize(
    "text", ["2021-9", "2021-01-01T10-00:00.000Z", "20-21-04-04T01:00:00Z", ""]
)
def test_unparseable_timestamps_are_decode_errors_with_the_path(text: str) -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        _serde.structure({"createTime": text}, ServiceJob)
    (problem,) = caught.value.problems
    assert problem.startswith("expected an ISO 8601 timestamp")
    assert problem.endswith("@ $.createTime")


# --- money -------------------------------------------------------------------------------


def _money(body: str) -> MoneyAmount:
    return _serde.structure(_serde.loads(body), MoneyAmount)


def test_money_is_a_decimal_never_a_float() -> None:
    amount = _money('{"value": 19.99, "currency": "USD"}')
    assert type(amount.value) is Decimal
    assert amount.value == Decimal("19.99")
    assert str(amount.value) == "19.99"


def test_money_keeps_every_digit(monkeypatch: pytest.MonkeyPatch) -> None:
    # The standard library's parser: exact to the last digit (orjson's: see test_pipeline).
    monkeypatch.setattr(_serde, "_orjson", None)
    assert str(_money('{"value": 12345678901234567.89, "currency": "JPY"}').value) == (
        "12345678901234567.89"
    )
    assert str(_money('{"value": 0.10, "currency": "USD"}').value) == "0.10"
    total = (
        _money('{"value": 0.1, "currency": "USD"}').value
        + _money('{"value": 0.2, "currency": "USD"}').value
    )
    assert total == Decimal("0.3")  # 0.1 + 0.2 as floats is 0.30000000000000004


def test_whole_amounts_and_float_input() -> None:
    assert _money('{"value": 20, "currency": "USD"}').value == Decimal(20)
    # Data that was parsed with floats (plain json.loads) still ends up a Decimal, by its
    # shortest repr rather than the binary expansion.
    from_float = _serde.structure(json.loads('{"value": 19.99, "currency": "USD"}'), MoneyAmount)
    assert from_float.value == Decimal("19.99")


@pytest.mark.parametrize("bad", ['"abc"', "true", "null", "{}", "[]"])
def test_money_that_is_not_a_number_is_a_decode_error(bad: str) -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        _serde.structure(
            _serde.loads('{"amount": {"value": ' + bad + ', "currency": "USD"}}'), Payment
        )
    assert any(p.endswith("@ $.amount.value") for p in caught.value.problems)


def test_money_is_written_as_a_json_number() -> None:
    text = _serde.dumps(_serde.unstructure(MoneyAmount(value=Decimal("149.99"), currency="USD")))
    assert text == '{"value":149.99,"currency":"USD"}'
    assert _serde.dumps(
        _serde.unstructure(MoneyAmount(value=Decimal("20.00"), currency="USD"))
    ) == ('{"value":20.00,"currency":"USD"}')  # digit for digit, as the amount was given
