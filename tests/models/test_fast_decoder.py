"""msgspec's decoder (the ``speedups`` extra) gives what the attrs hooks give, or defers to them.

Each body is decoded twice through an operation's public method, with msgspec's mirrors
of the models and with the hooks alone (the JSON parser the same both times), and the two
outcomes compared: the same models, to the type and representation of every value
(``repr``: a Decimal's digits, a timestamp's offset, a tuple not a list), or the same
problems.  The bodies: drawn from the official model's schemas (with keys and enum values
from the future), then broken at any place with values the mirrors must not take
differently from the hooks.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.test_schema_fuzz import (
    DECODING,
    _jsonschema_on_this_hypothesis,  # noqa: F401  (autouse: hypothesis-jsonschema's shim)
    bodies,
    decode,
)

from spapi_services import _serde
from spapi_services import models as m
from spapi_services.errors import ResponseDecodeError

from .test_decode_errors import full_job

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("msgspec") is None, reason="msgspec (the speedups extra) missing"
)

SETTINGS = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Values put anywhere in a body: each kind the hooks read leniently, strictly, or by a
#: rule of their own (timestamps finer than a microsecond, without an offset or in RFC
#: 3339's rarer forms; amounts as text, not finite, huge; whole floats; big integers).
ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    2.0,
    1.5,
    -0.0,
    2**70,
    1e-7,
    123456789012345678.0,
    "",
    "7",
    "1.5",
    "1e2",
    "NaN",
    "Infinity",
    "-Infinity",
    " 1.5 ",
    "1_000",
    "NEW_VALUE",
    "COMPLETED",
    "2026-06-17T12:00:00Z",
    "2026-06-17T12:00:00.1234567Z",
    "2026-06-17T12:00:00.9999995Z",
    "9999-12-31T23:59:59.9999999Z",
    "2026-06-17T12:00:00",
    "2026-06-17t12:00:00z",
    "2016-12-31T23:59:60Z",
    "2026-06-17T05:00:00-07",
    "2026-06-17T17:30:00+0530",
    "2026-06-17 12:00:00Z",
    "2026-06-17",
    "2026-06-17T12:00Z",
    [],
    ["x"],
    [1, None],
    {},
    {"a": 1},
    {"a": None, "b": "c"},
]


def outcome(operation: str, body: Any, *, fast: bool) -> tuple[str, Any]:
    """What decoding ``body`` as ``operation``'s answer gives, with or without the mirrors.

    The job's operation decodes the payload straight away (the same decoding, without a
    client made for each of the thousands of bodies below).
    """
    saved = _serde._msgspec
    if not fast:
        _serde._msgspec = None
    try:
        if operation == "getServiceJobByServiceJobId":
            result = _serde.structure(body["payload"], m.ServiceJob, operation=operation)
        else:
            result = decode(operation, body)
    except ResponseDecodeError as exc:
        return "problems", exc.problems
    finally:
        _serde._msgspec = saved
    return "result", _shape(result)


def _shape(value: Any) -> Any:
    """``repr`` with the type of every value inside: a tuple and a list differ."""
    if attrs.has(type(value)):
        fields = {f.name: _shape(getattr(value, f.name)) for f in attrs.fields(type(value))}
        return (type(value).__name__, fields)
    if isinstance(value, list | tuple):
        return (type(value).__name__, [_shape(item) for item in value])
    if isinstance(value, dict):
        return ("dict", {k: _shape(v) for k, v in value.items()})
    return (type(value).__name__, repr(value))


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value inside ``value`` (objects' members and arrays' items)."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _places(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _places(child, (*path, index))


def _replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    body = copy.deepcopy(body)
    holder = body
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = new
    return body


@pytest.mark.parametrize("variant", ["valid", "future"])
@pytest.mark.parametrize("operation", DECODING)
@SETTINGS
@given(data=st.data())
def test_schema_valid_bodies_decode_the_same(
    operation: str, variant: str, data: st.DataObject
) -> None:
    body = data.draw(bodies(operation, variant))
    fast = outcome(operation, body, fast=True)
    assert fast == outcome(operation, body, fast=False)
    assert fast[0] == "result"


#: Every place in a job with every field set (objects, arrays, their members and items).
FULL_JOB = {"payload": full_job()}
PLACES = list(_places(FULL_JOB))


@pytest.mark.parametrize("path", PLACES, ids=["/".join(map(str, p)) for p in PLACES])
def test_a_job_broken_anywhere_decodes_the_same_or_fails_the_same(path: tuple[Any, ...]) -> None:
    for value in ODD_VALUES:
        body = _replaced(FULL_JOB, path, value)
        fast = outcome("getServiceJobByServiceJobId", body, fast=True)
        assert fast == outcome("getServiceJobByServiceJobId", body, fast=False), value


@pytest.mark.parametrize("operation", DECODING)
@SETTINGS
@given(data=st.data())
def test_broken_bodies_decode_the_same_or_fail_the_same(
    operation: str, data: st.DataObject
) -> None:
    body = data.draw(bodies(operation, "future"))
    places = list(_places(body))
    if places:
        path = data.draw(st.sampled_from(places))
        body = _replaced(body, path, data.draw(st.sampled_from(ODD_VALUES)))
    assert outcome(operation, body, fast=True) == outcome(operation, body, fast=False)


# --- what the mirrors do themselves ---------------------------------------------------


def _job(**fields: Any) -> dict[str, Any]:
    return {"payload": {"serviceJobId": "job-1", **fields}}


def test_every_answer_model_is_decoded_by_msgspec_unless_it_holds_a_sequence() -> None:
    answers = [
        m.ServiceJob,
        m.JobListing,
        m.AppointmentResult,
        m.AppointmentSlotReport,
        m.AssignAppointmentResourcesResult,
        m.FixedSlotCapacity,
        m.RangeSlotCapacity,
        m.ServiceDocumentUploadDestination,
        m.UpdateReservationRecord,
        m.CreateReservationRecord,
        m.UpdateScheduleRecord,
    ]
    # A Sequence field is a tuple by the hooks and would be a list by msgspec: such
    # classes (those holding a reservation's availability) are left to the hooks.
    expected_hooks = {m.UpdateReservationRecord, m.CreateReservationRecord, m.UpdateScheduleRecord}
    assert {cls for cls in answers if _serde._fast_decoder(cls) is None} == expected_hooks


def test_a_good_job_is_decoded_without_the_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoHooks:
        def structure(self, *_: Any) -> Any:
            raise AssertionError("the hooks were asked")

    body = _job(
        createTime="2026-06-17T12:00:00.250Z",
        serviceJobStatus="NOT_YET_KNOWN",
        payments=[{"amount": {"value": 149.99, "currency": "USD"}}],
        appointments=[
            {"appointmentTime": {"startTime": "2026-06-18T09:00:00+02:00", "durationInMinutes": 60}}
        ],
    )
    monkeypatch.setattr(_serde, "converter", NoHooks())
    job = decode("getServiceJobByServiceJobId", body)
    assert job.create_time == datetime(2026, 6, 17, 12, 0, 0, 250000, tzinfo=UTC)
    assert job.service_job_status == "NOT_YET_KNOWN"
    assert not job.service_job_status.is_known
    assert str(job.payments[0].amount.value) == "149.99"
    assert job.appointments[0].appointment_time.start_time.utcoffset().total_seconds() == 7200


@pytest.mark.parametrize(
    ("text", "microsecond"),
    [
        # fromisoformat's rule (the hooks'), not msgspec's rounding: the digits past the
        # sixth are dropped.
        ("2026-06-17T12:00:00.1234567Z", 123456),
        ("2026-06-17T12:00:00.9999995Z", 999999),
        ("2026-06-17T12:00:00.5Z", 500000),
    ],
)
def test_fractions_finer_than_a_microsecond_are_cut_not_rounded(
    text: str, microsecond: int
) -> None:
    job = decode("getServiceJobByServiceJobId", _job(createTime=text))
    assert job.create_time.microsecond == microsecond
    assert job.create_time.second == 0


@pytest.mark.parametrize("amount", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_an_amount_that_is_no_number_is_refused(amount: str) -> None:
    body = _job(payments=[{"amount": {"value": amount, "currency": "USD"}}])
    with pytest.raises(ResponseDecodeError) as caught:
        decode("getServiceJobByServiceJobId", body)
    assert caught.value.problems[0].endswith("@ $.payments[0].amount.value")


def test_unknown_enum_values_are_the_same_member_either_way() -> None:
    body = _job(serviceJobStatus="STATUS_FROM_THE_FUTURE")
    fast = decode("getServiceJobByServiceJobId", body).service_job_status
    _serde._msgspec, saved = None, _serde._msgspec
    try:
        hooks = decode("getServiceJobByServiceJobId", body).service_job_status
    finally:
        _serde._msgspec = saved
    assert fast is hooks


def test_data_not_from_a_json_parser_is_read_by_the_hooks() -> None:
    # An enum member is a str subclass: msgspec would keep it as text, the hooks refuse it.
    data = {"serviceJobId": m.ServiceJobStatus.COMPLETED}
    with pytest.raises(ResponseDecodeError, match="serviceJobId"):
        m.ServiceJob.from_api_dict(data)


def test_the_variable_turns_both_speedups_off() -> None:
    probe = (
        "from spapi_services import _serde, models;"
        "_serde.structure({'serviceJobId': 'x'}, models.ServiceJob);"
        "print(_serde._orjson is None, _serde._msgspec is None)"
    )
    env = {**os.environ, _serde.NO_SPEEDUPS_VARIABLE: "1"}
    off = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert off.stdout.split() == ["True", "True"]
    env[_serde.NO_SPEEDUPS_VARIABLE] = "0"
    on = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert on.stdout.split() == ["False", "False"]
