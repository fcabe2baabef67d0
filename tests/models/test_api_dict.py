"""Every model as the API's JSON and back: ``to_api_dict``, ``to_api_json``, ``from_api_dict``.

What is promised (``ApiModel``'s docstring says it to users):

* ``M.from_api_dict(d).to_api_dict() == d`` exactly for every dict in the API's form: every
  body of the official model's sandbox that the API writes, every request body of it whose
  timestamps are in that form, and every body drawn from the model's schemas once put in
  that form.  Numbers with a fraction are read as Decimals, as the SDK promises exact money.
* Any other dict comes back in the API's form, which is checked here against a rewriting
  written independently (:func:`api_form`): keys the model does not know and nulls left out,
  each timestamp the same instant in UTC with a ``Z`` (to the millisecond), free-form header
  values as their text.  Nothing else changes.
* ``type(m).from_api_dict(m.to_api_dict()) == m`` for models built from the attrs classes.
* The command line's ``--json`` prints ``to_api_dict()`` of the job, and so does the
  emulator's own answer for it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import typing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import attrs
import click.testing
import pytest
from _pages import US, client, emulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability.test_schema_fuzz import (
    DECODED,
    SPEC,
    _inline,
    _jsonschema_on_this_hypothesis,  # noqa: F401  (autouse: hypothesis-jsonschema's shim)
    bodies,
    body_schema,
    strategy,
)

from spapi_services import ServicesClient, _serde
from spapi_services import models as m
from spapi_services.cli import cli
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.__main__ import environment
from spapi_services.errors import ResponseDecodeError
from spapi_services.models import (
    ApiModel,
    AppointmentSlotReport,
    Error,
    JobListing,
    MoneyAmount,
    ServiceJob,
    ServiceJobStatus,
)
from spapi_services.models._base import ApiModel as BaseFromItsModule

from ._sandbox import NO_BODY, SandboxCase, sandbox_cases
from .test_round_trip_properties import MODELS, strategy_for
from .test_sandbox_cases import INVALID_REQUESTS, REQUEST_MODELS, RESPONSES

__all__ = ["client", "emulator"]  # the fixtures the CLI test uses

CASES = sandbox_cases()
MODEL_MODULES = [m.common, m.jobs, m.appointments, m.documents, m.scheduling]


def read_exactly(data: Any) -> Any:
    """``data`` as its JSON text read back with every fractional number a Decimal."""
    return json.loads(json.dumps(data), parse_float=Decimal)


# --- every model, present and future ------------------------------------------------------


def test_every_model_class_has_the_one_base() -> None:
    defined = {
        obj
        for module in MODEL_MODULES
        for obj in vars(module).values()
        if attrs.has(obj) and obj.__module__ == module.__name__
    }
    assert len(defined) == 52
    assert [c.__name__ for c in defined if not issubclass(c, ApiModel)] == []
    # Nothing overrides the conversions, and the base adds no state to a model.
    for cls in defined:
        assert cls.to_api_dict is ApiModel.to_api_dict
        assert cls.from_api_dict.__func__ is ApiModel.from_api_dict.__func__
        assert not hasattr(cls(**_required_fields(cls)), "__dict__")
    assert defined == set(MODELS)
    assert m.ApiModel is BaseFromItsModule


def _required_fields(cls: Any) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {
        f.name: _any_value(hints[f.name]) for f in attrs.fields(cls) if f.default is attrs.NOTHING
    }


def _any_value(tp: Any) -> Any:
    if attrs.has(tp):
        return tp(**_required_fields(tp))
    if isinstance(tp, type) and issubclass(tp, m.ApiEnum):
        return next(iter(tp))
    if typing.get_origin(tp) is not None:
        return ()
    return {str: "x", int: 1, Decimal: Decimal(1), datetime: datetime(2026, 1, 1, tzinfo=UTC)}[tp]


# --- the shape ---------------------------------------------------------------------------

#: A job as the API writes it: every kind of value a job carries, and things this release
#: does not know (an enum value) that must come back as they came.
JOB_TEXT = """{
  "createTime": "2026-06-17T12:00:00.250Z",
  "serviceJobId": "45433695494736",
  "serviceJobStatus": "AWAITING_PARTS",
  "scopeOfWork": {"asin": "B0C49D2OFK", "quantity": 3, "requiredSkills": ["ASSEMBLY"]},
  "appointments": [
    {
      "appointmentId": "a-1",
      "appointmentStatus": "ACTIVE",
      "appointmentTime": {"startTime": "2026-06-18T09:00:00Z", "durationInMinutes": 120},
      "assignedTechnicians": [{"technicianId": "TECH1", "name": "Ada"}]
    }
  ],
  "productOrderIds": [],
  "buyer": {"buyerId": "B1", "name": "Amara Garcia", "isPrimeMember": false},
  "associatedItems": [
    {"asin": "B1", "linkedAssets": [{"assetType": "VEHICLE", "additionalAttributes": {"a": "b"}}]}
  ],
  "payments": [
    {"amount": {"value": 81.88, "currency": "EUR"}, "instrument": "DEBIT_CARD"},
    {"amount": {"value": 12345678901234567.891, "currency": "EUR"}},
    {"amount": {"value": 100, "currency": "EUR"}}
  ]
}"""


def test_a_job_as_the_api_writes_it_comes_back_exactly() -> None:
    data = json.loads(JOB_TEXT, parse_float=Decimal)
    job = ServiceJob.from_api_dict(data)
    assert job.service_job_status == "AWAITING_PARTS"
    assert not job.service_job_status.is_known
    assert job.payments is not None
    assert job.payments[1].amount == MoneyAmount(
        value=Decimal("12345678901234567.891"), currency="EUR"
    )
    assert job.to_api_dict() == data
    # The text: the same JSON, compact, every amount digit for digit.
    assert job.to_api_json() == json.dumps(json.loads(JOB_TEXT), separators=(",", ":")).replace(
        "1.2345678901234568e+16", "12345678901234567.891"
    )
    assert json.loads(job.to_api_json(), parse_float=Decimal) == data


def _kinds(value: Any) -> Iterator[type]:
    yield type(value)
    if isinstance(value, dict):
        assert all(type(k) is str for k in value)
        for item in value.values():
            yield from _kinds(item)
    elif isinstance(value, list):
        for item in value:
            yield from _kinds(item)


def test_the_dict_holds_json_values_and_exact_decimals_only() -> None:
    job = ServiceJob.from_api_dict(json.loads(JOB_TEXT))
    kinds = set(_kinds(job.to_api_dict()))
    # Enum members come out as plain strings (a framework's encoder needs no hook for
    # them), datetimes as text; the one non-JSON type is the exact amount.
    assert kinds == {dict, list, str, int, bool, Decimal}
    assert job.to_api_dict()["serviceJobStatus"].__class__ is str
    assert ServiceJob(service_job_status=ServiceJobStatus.COMPLETED).to_api_dict() == {
        "serviceJobStatus": "COMPLETED"
    }


def test_the_dict_is_new_each_time() -> None:
    job = ServiceJob.from_api_dict(json.loads(JOB_TEXT))
    first = job.to_api_dict()
    first["buyer"]["name"] = "changed"
    assert job.to_api_dict()["buyer"]["name"] == "Amara Garcia"


PLUS_0530 = timezone(timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("moment", "written"),
    [
        (datetime(2026, 6, 17, 12, 0, tzinfo=UTC), "2026-06-17T12:00:00Z"),
        (datetime(2026, 6, 17, 12, 0, 0, 250_000, tzinfo=UTC), "2026-06-17T12:00:00.250Z"),
        # The API keeps milliseconds: a finer part is dropped, not rounded.
        (datetime(2026, 6, 17, 12, 0, 0, 999_999, tzinfo=UTC), "2026-06-17T12:00:00.999Z"),
        (datetime(2026, 6, 17, 12, 0, 0, 999, tzinfo=UTC), "2026-06-17T12:00:00Z"),
        (datetime(2026, 6, 17, 17, 30, tzinfo=PLUS_0530), "2026-06-17T12:00:00Z"),
        (datetime(999, 1, 2, tzinfo=UTC), "0999-01-02T00:00:00Z"),
        # No UTC date a datetime can hold: the instant with its own offset.
        (
            datetime(9999, 12, 31, 23, 0, tzinfo=timezone(-timedelta(hours=5))),
            "9999-12-31T23:00:00-05:00",
        ),
        (
            datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            "0001-01-01T00:30:00+01:00",
        ),
    ],
)
def test_times_are_written_as_the_api_writes_them(moment: datetime, written: str) -> None:
    report = AppointmentSlotReport(start_time=moment)
    assert report.to_api_dict() == {"startTime": written}
    again = AppointmentSlotReport.from_api_dict({"startTime": written})
    assert again.start_time == moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert again.to_api_dict() == {"startTime": written}


def test_a_naive_datetime_is_refused_with_the_rule() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        AppointmentSlotReport(start_time=datetime(2026, 6, 17, 12)).to_api_dict()


# --- the official model's sandbox bodies ---------------------------------------------------

#: A timestamp in the form the API writes: UTC, "Z", milliseconds only when there are any.
API_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.(?!000)\d{3})?Z")
ANY_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d")


def api_timestamp(text: str) -> str:
    """``text``'s instant in the API's form, written here without the SDK's writer."""
    moment = _serde.parse_datetime(text)
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # at the calendar's ends: the instant with its own offset
        utc = moment
    millis = utc.microsecond // 1000
    written = (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
        f"{utc.second:02d}{f'.{millis:03d}' if millis else ''}"
    )
    offset = utc.utcoffset()
    if utc is moment and offset:
        return written + moment.isoformat()[-6:]
    return written + "Z"


def with_api_timestamps(value: Any) -> Any:
    """A sandbox body with every timestamp in it rewritten in the API's form."""
    if isinstance(value, dict):
        return {k: with_api_timestamps(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_api_timestamps(v) for v in value]
    if isinstance(value, str) and ANY_TIMESTAMP.match(value):
        return api_timestamp(value)
    return value


def model_bodies(case: SandboxCase) -> Iterator[tuple[type[ApiModel], Any]]:
    """(model, JSON object) for every model-shaped object of a case's response body."""
    envelope, model = RESPONSES[case.operation_id]
    body = read_exactly(case.response)
    if isinstance(body, list):  # a bare array of errors
        yield from ((Error, entry) for entry in body)
        return
    if not isinstance(body, dict):
        return
    bare = envelope == "bare" or (envelope == "capacity" and case.success)
    if bare:
        yield model, body
        return
    for entry in body.get("errors", []):
        yield Error, entry
    if "payload" in body:
        payload = body["payload"]
        if isinstance(payload, list):  # updateSchedule: an array of records
            (item,) = typing.get_args(model)[:1]
            yield from ((item, record) for record in payload)
        else:
            yield model, payload


RESPONSE_BODIES = [
    pytest.param(model, data, id=f"{case.id}-{model.__name__}-{n}")
    for case in CASES
    for n, (model, data) in enumerate(model_bodies(case))
]
REQUEST_BODIES = [
    pytest.param(REQUEST_MODELS[case.operation_id], read_exactly(case.body), id=case.id)
    for case in CASES
    if case.body is not NO_BODY and case.key not in INVALID_REQUESTS
]


def test_the_sandbox_bodies_are_counted() -> None:
    # 140 objects in the responses of 132 of the 147 cases (the other 15 answer with no
    # body, or with an empty object); 99 request bodies (116, less the 17 the sandbox
    # sends to be refused for their shape).
    assert len(RESPONSE_BODIES) == 140
    assert len({case.key for case in CASES if any(model_bodies(case))}) == 132
    assert len(REQUEST_BODIES) == 99


@pytest.mark.parametrize(("model", "data"), RESPONSE_BODIES)
def test_every_sandbox_response_body_round_trips_exactly(model: type[ApiModel], data: Any) -> None:
    assert model.from_api_dict(data).to_api_dict() == data


#: Request bodies of the sandbox that callers wrote with timestamps in other forms
#: ("+05:30", "-07", ".000Z"): they come back as the same instants in the API's form.
OTHER_TIMESTAMP_FORMS = 38


@pytest.mark.parametrize(("model", "data"), REQUEST_BODIES)
def test_every_sandbox_request_body_round_trips_in_the_apis_form(
    model: type[ApiModel], data: Any
) -> None:
    again = model.from_api_dict(data).to_api_dict()
    assert again == with_api_timestamps(data)
    assert model.from_api_dict(again).to_api_dict() == again


def test_which_sandbox_request_bodies_have_other_timestamp_forms() -> None:
    other = [p.id for p in REQUEST_BODIES if with_api_timestamps(p.values[1]) != p.values[1]]
    assert len(other) == OTHER_TIMESTAMP_FORMS
    # and the response bodies, which the API writes, never do
    assert all(with_api_timestamps(p.values[1]) == p.values[1] for p in RESPONSE_BODIES)


# --- bodies drawn from the model's schemas -----------------------------------------------

FUZZ = settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)


def api_form(value: Any, schema: dict[str, Any]) -> Any:
    """What ``to_api_dict`` must give for ``value``, from the schema alone.

    Keys the schema does not name, and nulls, are left out; timestamps become the API's
    form; a free-form object's scalar values become text.  Everything else is unchanged.
    """
    kind = schema.get("type")
    if kind == "object" and schema.get("properties"):
        known = schema["properties"]
        return {k: api_form(v, known[k]) for k, v in value.items() if k in known and v is not None}
    if kind == "object":
        return {k: _as_text(v) for k, v in value.items() if v is not None}
    if kind == "array":
        return [api_form(item, schema["items"]) for item in value]
    if schema.get("format") == "date-time":
        return api_timestamp(value)
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _response_parts(operation: str, body: Any) -> Iterator[tuple[type[ApiModel], Any, Any]]:
    """(model, JSON object, its schema as the model knows it) in a drawn 2xx body."""
    _, model = RESPONSES[operation]
    schema = body_schema(operation, "valid")
    if DECODED[operation] == "payload":
        body, schema = body.get("payload"), schema["properties"]["payload"]
        if body is None:
            return
    if schema.get("type") == "array":
        (item,) = typing.get_args(model)[:1]
        yield from ((item, record, schema["items"]) for record in body)
    else:
        yield model, body, schema


DECODING = sorted(op for op, where in DECODED.items() if where is not None)


@pytest.mark.parametrize("variant", ["valid", "future"])
@pytest.mark.parametrize("operation", DECODING)
@FUZZ
@given(data=st.data())
def test_fuzzed_response_bodies_come_back_in_the_apis_form(
    operation: str, variant: str, data: st.DataObject
) -> None:
    body = read_exactly(data.draw(bodies(operation, variant)))
    for model, drawn, schema in _response_parts(operation, body):
        _check_round_trip(model, drawn, schema)


@pytest.mark.parametrize("model", sorted(REQUEST_MODELS.values(), key=lambda c: c.__name__))
@FUZZ
@given(data=st.data())
def test_fuzzed_request_bodies_come_back_in_the_apis_form(
    model: type[ApiModel], data: st.DataObject
) -> None:
    schema = _whole_numbers(_inline(SPEC["definitions"][model.__name__]))
    _check_round_trip(model, read_exactly(data.draw(strategy(schema))), schema)


def _whole_numbers(schema: Any) -> Any:
    """The schema with a "number" of format int64 (a document's length) an integer, as the
    model has it (a length of 1.5 bytes is refused, as a fractional count is)."""
    if isinstance(schema, dict):
        schema = {k: _whole_numbers(v) for k, v in schema.items()}
        if schema.get("type") == "number" and schema.get("format") in ("int32", "int64"):
            schema["type"] = "integer"
    return schema


def _check_round_trip(model: type[ApiModel], drawn: Any, schema: dict[str, Any]) -> None:
    untouched = copy.deepcopy(drawn)
    expected = api_form(drawn, schema)
    # Any body comes back in the API's form; one in that form comes back exactly.
    assert model.from_api_dict(drawn).to_api_dict() == expected
    assert model.from_api_dict(expected).to_api_dict() == expected
    assert drawn == untouched  # from_api_dict leaves its argument alone
    for text in _strings(expected):
        if ANY_TIMESTAMP.match(text) and text.endswith("Z"):
            assert API_TIMESTAMP.fullmatch(text), text


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


# --- models built from the attrs classes ----------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda c: c.__name__)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_model_survives_its_api_dict_and_its_api_json(
    model: type[ApiModel], data: st.DataObject
) -> None:
    obj = data.draw(strategy_for(model))
    as_dict = obj.to_api_dict()
    assert model.from_api_dict(as_dict) == obj
    assert model.from_api_dict(as_dict).to_api_dict() == as_dict
    assert json.loads(obj.to_api_json(), parse_float=Decimal) == as_dict
    # The same JSON as the SDK sends and the command line prints.
    assert obj.to_api_json() == _serde.dumps(_serde.unstructure(obj))


# --- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (
            {"serviceJobId": 123.5, "buyer": {"name": ["x"]}},
            "expected a string, got an array @ $.buyer.name",
        ),
        (
            {"createTime": "yesterday"},
            "expected an ISO 8601 timestamp, got 'yesterday' @ $.createTime",
        ),
        (
            {"payments": [{"amount": {"value": "lots", "currency": "EUR"}}]},
            "@ $.payments[0].amount.value",
        ),
        (
            {"payments": [{"amount": {"value": 5}}]},
            "required field missing @ $.payments[0].amount.currency",
        ),
        (
            {"appointments": {"appointmentId": "a"}},
            "expected an array, got an object @ $.appointments",
        ),
        ("a job", "expected an object, got a string @ $"),
    ],
)
def test_from_api_dict_refuses_as_decoding_an_answer_does(data: Any, problem: str) -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        ServiceJob.from_api_dict(data)
    assert str(caught.value).startswith("data does not fit ServiceJob: ")
    assert any(p.endswith(problem) for p in caught.value.problems), caught.value.problems
    # The same problems, at the same paths, as an answer of the API with this body.
    with pytest.raises(ResponseDecodeError) as answered:
        _serde.structure(data, ServiceJob)
    assert caught.value.problems == answered.value.problems


def test_snake_case_keys_are_refused_by_name() -> None:
    job = ServiceJob.from_api_dict(json.loads(JOB_TEXT))
    as_attrs = attrs.asdict(job)
    with pytest.raises(ResponseDecodeError) as caught:
        ServiceJob.from_api_dict(as_attrs)
    problems = caught.value.problems
    assert "a snake_case key; the API's name is 'serviceJobId' @ $.service_job_id" in problems
    assert "a snake_case key; the API's name is 'createTime' @ $.create_time" in problems
    # One-word names are the same in both spellings, and are not mistakes.
    assert not any("$.buyer" in p for p in problems)


def test_a_whole_answer_is_refused_with_what_to_pass() -> None:
    answer = {"payload": json.loads(JOB_TEXT)}
    with pytest.raises(ResponseDecodeError, match=r"pass its 'payload' @ \$\.payload"):
        ServiceJob.from_api_dict(answer)
    assert ServiceJob.from_api_dict(answer["payload"]).service_job_id == "45433695494736"


def test_keys_the_model_does_not_know_are_left_out() -> None:
    data = {"serviceJobId": "1", "comesNextYear": {"x": 1}, "buyer": {"name": "A", "new": 2}}
    job = ServiceJob.from_api_dict(data)
    assert job.to_api_dict() == {"serviceJobId": "1", "buyer": {"name": "A"}}
    listing = JobListing.from_api_dict({"jobs": [data], "totalResultSize": 1})
    assert listing.to_api_dict() == {
        "totalResultSize": 1,
        "jobs": [{"serviceJobId": "1", "buyer": {"name": "A"}}],
    }


# --- the command line prints the same ----------------------------------------------------


async def test_the_cli_json_of_a_job_is_its_api_dict(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    record = next(
        job
        for job in emulator.store.find_jobs(marketplace_id=US)
        if job.appointments
        and any(p["amount"]["value"] % 1 for p in job.details.get("payments", []))
    )
    job_id = record.service_job_id
    runner = click.testing.CliRunner()
    env = environment(emulator)
    printed = await asyncio.to_thread(
        runner.invoke, cli, ["--json", "jobs", "get", job_id], env=env, catch_exceptions=False
    )
    assert printed.exit_code == 0, printed.stderr
    job = await client.service_jobs.get(job_id)
    from_the_cli = json.loads(printed.stdout, parse_float=Decimal)
    assert from_the_cli == job.to_api_dict()
    assert printed.stdout == job.to_api_json() + "\n"
    # ... which is the emulator's own JSON for the job, read exactly.
    assert from_the_cli == json.loads(record.payload_json(), parse_float=Decimal)["payload"]
