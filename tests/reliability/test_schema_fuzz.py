"""Response bodies generated from the official model, decoded by the SDK's own code.

For each operation, hypothesis-jsonschema draws bodies from the model's schema of its
success answer (``$ref`` resolved against the spec's definitions), and the operation's
public method decodes them: the JSON text goes through the transport's success path
(``_transport._success``, the same JSON parse and error check as on the wire) and then the
resource's decode helpers, exactly as for a real answer.  Only the HTTP exchange is left
out, so that thousands of bodies take seconds.

* Every schema-valid body decodes, with no exception at all.
* So does one with keys the model does not know yet and enums carrying values it does not
  know yet (Amazon adds both without notice).
* A body of the wrong shape (a leaf of the wrong JSON kind anywhere the SDK reads, or a
  body or payload that is not an object) raises :class:`ResponseDecodeError` with the
  request id, and nothing else.

Three adjustments to the schemas.  Two are about what a 2xx may carry: a top-level
``errors`` is left out (a 2xx with errors is :class:`OperationFailedError`, tested
elsewhere), and ``payload`` is required where the SDK returns it (a 200 without the payload
it asked for is an error, not a body to decode).  The third: the upload destination's
``headers`` is an object with no declared properties, so any JSON may sit in it; its values
are drawn from JSON scalars (null included), since an object or an array cannot be an HTTP
header's value and the SDK refuses one (``tests/models/test_decode_errors.py``).
"""

from __future__ import annotations

import copy
import functools
import json
import types
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any

import hypothesis_jsonschema._from_schema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as conjecture_utils
from hypothesis_jsonschema import from_schema
from multidict import CIMultiDict, CIMultiDictProxy
from spec_data import load_model

from spapi_services import RawResponse, ResponseDecodeError, ServicesClient, _serde, _transport
from spapi_services._routes import ROUTES
from spapi_services.models import AppointmentSlotReport, AppointmentTime, JobListing

from ._scenarios import SCENARIOS

#: The model's paths and definitions (the project's structure-only extract of it).
SPEC: dict[str, Any] = load_model()

#: Where in the body the SDK reads what it returns: "payload", the whole body (""), or
#: nowhere (None: the operation returns nothing, so its body is not decoded).
DECODED: dict[str, str | None] = {
    "getServiceJobByServiceJobId": "payload",
    "cancelServiceJobByServiceJobId": None,
    "completeServiceJobByServiceJobId": None,
    "getServiceJobs": "payload",
    "addAppointmentForServiceJobByServiceJobId": "",
    "rescheduleAppointmentForServiceJobByServiceJobId": "",
    "assignAppointmentResources": "payload",
    "setAppointmentFulfillmentData": None,
    "getRangeSlotCapacity": "",
    "getFixedSlotCapacity": "",
    "updateSchedule": "payload",
    "createReservation": "payload",
    "updateReservation": "payload",
    "cancelReservation": None,
    "getAppointmmentSlotsByJobId": "payload",
    "getAppointmentSlots": "payload",
    "createServiceDocumentUploadDestination": "payload",
}
#: Operations whose payload may be absent (their result can be empty).
OPTIONAL_PAYLOAD = frozenset(
    {
        "assignAppointmentResources",
        "updateSchedule",
        # No payload is an empty page, an empty slot report.
        "getServiceJobs",
        "getAppointmentSlots",
        "getAppointmmentSlotsByJobId",
    }
)
#: What the emulated transport answers with.
REQUEST_ID = "req-fuzz-1"
#: Enum values this release does not know (a small pool: the enum keeps each one).
NEW_ENUM_VALUES = ["NEW_VALUE", "ANOTHER_NEW_VALUE"]
NEW_KEY = "zzFieldFromTheFuture"

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
OPERATIONS = sorted(ROUTES)


# --- hypothesis-jsonschema 0.23 on a newer Hypothesis ------------------------------------


class _Many:
    """``cu.many`` as hypothesis-jsonschema 0.23.1 drives it (``while elements.more()``).

    Newer Hypothesis releases turned ``many`` into a context manager that is iterated, and
    object schemas fail with "'many' object has no attribute 'more'".  This drives the new
    one the old way; drop it once hypothesis-jsonschema catches up.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._many = conjecture_utils.many(*args, **kwargs)
        self._many.__enter__()
        self._steps = iter(self._many)

    def more(self) -> bool:
        if next(self._steps, StopIteration) is StopIteration:
            self._many.__exit__(None, None, None)
            return False
        return True

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


@pytest.fixture(autouse=True)
def _jsonschema_on_this_hypothesis(monkeypatch: pytest.MonkeyPatch) -> None:
    if not hasattr(conjecture_utils.many, "more"):
        shim = types.SimpleNamespace(**vars(conjecture_utils))
        shim.many = _Many
        monkeypatch.setattr(hypothesis_jsonschema._from_schema, "cu", shim)


# --- the schemas ----------------------------------------------------------------------


def _inline(node: Any, depth: int = 0) -> Any:
    """The schema with every ``$ref`` replaced by its definition, prose removed."""
    assert depth < 30, "a recursive $ref"
    if isinstance(node, list):
        return [_inline(item, depth) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].removeprefix("#/definitions/")
        return _inline(SPEC["definitions"][name], depth + 1)
    return {
        key: _inline(value, depth)
        for key, value in node.items()
        if key not in ("description", "example") and not key.startswith("x-")
    }


def _success_schema(operation: str) -> dict[str, Any]:
    for methods in SPEC["paths"].values():
        for spec_op in methods.values():
            if isinstance(spec_op, dict) and spec_op.get("operationId") == operation:
                responses = spec_op["responses"]
                answer = responses.get("200") or responses["204"]
                schema: dict[str, Any] = _inline(answer["schema"])
                return schema
    raise KeyError(operation)


def _objects(schema: Any) -> Iterator[dict[str, Any]]:
    """Every object schema with named properties, nested ones included."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and schema.get("properties"):
            yield schema
        for value in schema.values():
            yield from _objects(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _objects(item)


def _free_form(schema: Any) -> Iterator[dict[str, Any]]:
    """Every object schema that says nothing about its members."""
    if isinstance(schema, dict):
        free = not schema.get("properties") and "additionalProperties" not in schema
        if schema.get("type") == "object" and free:
            yield schema
        for value in schema.values():
            yield from _free_form(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _free_form(item)


def _enums(schema: Any) -> Iterator[dict[str, Any]]:
    if isinstance(schema, dict):
        if "enum" in schema:
            yield schema
        for value in schema.values():
            yield from _enums(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _enums(item)


@functools.cache
def body_schema(operation: str, variant: str = "valid") -> dict[str, Any]:
    """The success schema as adjusted for 2xx answers: as it is, or with a future in it."""
    schema = copy.deepcopy(_success_schema(operation))
    for free in _free_form(schema):
        free["additionalProperties"] = {"type": ["string", "number", "boolean", "null"]}
    if schema.get("type") == "object":
        schema["properties"].pop("errors", None)
        if DECODED[operation] == "payload" and operation not in OPTIONAL_PAYLOAD:
            schema["required"] = [*schema.get("required", []), "payload"]
    if variant == "future":
        # What Amazon may send tomorrow: keys the model does not have, anywhere, and
        # values its enums do not have.
        for obj in _objects(schema):
            obj["properties"][NEW_KEY] = {
                "type": ["string", "integer", "boolean", "object", "array", "null"]
            }
        if schema.get("type") == "object":
            schema["required"] = [*schema.get("required", []), NEW_KEY]
        for enum in _enums(schema):
            enum["enum"] = [*enum["enum"], *NEW_ENUM_VALUES]
    return schema


def strategy(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid under ``schema``: objects and arrays built here, leaves by
    hypothesis-jsonschema.

    hypothesis-jsonschema builds each object property's strategy afresh on every draw
    (about 70 ms a body for a job); ``fixed_dictionaries`` over the same leaf strategies
    draws the same bodies some twenty times faster.  Arrays are kept to 3 items.
    """
    kind = schema.get("type")
    if kind == "object" and schema.get("properties"):
        properties = {key: strategy(sub) for key, sub in schema["properties"].items()}
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: v for k, v in properties.items() if k in required},
            optional={k: v for k, v in properties.items() if k not in required},
        )
    if kind == "object":
        values = _leaf(json.dumps(schema.get("additionalProperties", {}), sort_keys=True))
        return st.dictionaries(st.text(max_size=8), values, max_size=3)
    if kind == "array":
        low = schema.get("minItems", 0)
        high = max(low, min(schema.get("maxItems", 3), 3))
        return st.lists(strategy(schema["items"]), min_size=low, max_size=high)
    leaf = _leaf(json.dumps(schema, sort_keys=True))
    if schema.get("format") == "date-time":
        return leaf | RFC3339_RARITIES
    return leaf


@functools.cache
def _leaf(schema: str) -> st.SearchStrategy[Any]:
    return from_schema(json.loads(schema))


#: RFC 3339 date-times in the forms hypothesis-jsonschema never draws: "t" and "z" in
#: lower case, a leap second, a space for the "T" (section 5.6's note), more than six
#: digits of fraction.
RFC3339_RARITIES = st.builds(
    "{}{}{:02d}:{:02d}:{:02d}{}{}".format,
    st.dates().map(str),
    st.sampled_from(["T", "t", " "]),
    st.integers(0, 23),
    st.integers(0, 59),
    st.integers(0, 60),
    st.none().map(lambda _: "") | st.from_regex(r"\.[0-9]{1,12}", fullmatch=True),
    st.sampled_from(["Z", "z"])
    | st.builds(
        "{}{:02d}:{:02d}".format, st.sampled_from("+-"), st.integers(0, 23), st.integers(0, 59)
    ),
)


@functools.cache
def bodies(operation: str, variant: str = "valid") -> st.SearchStrategy[Any]:
    return strategy(body_schema(operation, variant))


# --- the SDK's decode path, without the HTTP exchange ----------------------------------

#: Whatever each scenario's call needs; nothing is looked up, every answer is ours.
_STATE = {
    "job": "job-1",
    "appointment": "appointment-1",
    "technician": "TECH1",
    "resource": "RES1",
    "reservation": "1001",
    "store": "store-1",
    "asin": "B000000001",
}


async def _no_token() -> str:
    return "Atza|fuzz"


def _drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never has to wait (its only I/O is the stub below)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the call waited on something")


def decode(operation: str, body: Any) -> Any:
    """Call ``operation``'s public method with ``body`` as the API's 2xx answer (JSON)."""
    route = ROUTES[operation]
    raw = json.dumps(body).encode()
    client = ServicesClient(
        endpoint="http://api.invalid",
        access_token_provider=_no_token,
        marketplace_id="ATVPDKIKX0DER",
        rate_limits=False,
    )
    calls = 0
    headers = CIMultiDictProxy(CIMultiDict({"x-amzn-RequestId": REQUEST_ID}))

    async def answer(operation_id: str, **_: Any) -> _transport.ApiResponse:
        nonlocal calls
        assert operation_id == operation
        calls += 1
        text = raw
        if calls > 1 and isinstance(body, dict):  # a paged operation asks again: last page
            text = json.dumps({k: v for k, v in body.items() if k != "nextPageToken"}).encode()
        answered = RawResponse(route.success_status, headers, text)
        return _transport._success(route, answered, REQUEST_ID, None)

    client._call = answer  # type: ignore[method-assign]
    return _drive(SCENARIOS[operation].call(client, _STATE))


# --- schema-valid bodies ---------------------------------------------------------------


DECODING = [op for op in OPERATIONS if DECODED[op] is not None]
CELLS = [(op, variant) for op in DECODING for variant in ("valid", "future")] + [
    (op, "valid") for op in OPERATIONS if op not in DECODING
]


@pytest.mark.parametrize(("operation", "variant"), CELLS)
@SETTINGS
@given(data=st.data())
def test_every_schema_valid_body_decodes(operation: str, variant: str, data: st.DataObject) -> None:
    body = data.draw(bodies(operation, variant))
    result = decode(operation, body)
    if DECODED[operation] is not None and operation not in OPTIONAL_PAYLOAD:
        assert result is not None


def test_the_future_is_in_the_schema() -> None:
    future = body_schema("getServiceJobByServiceJobId", "future")
    job = future["properties"]["payload"]
    assert NEW_KEY in future["required"]
    assert NEW_KEY in job["properties"]["buyer"]["properties"]
    assert "NEW_VALUE" in job["properties"]["serviceJobStatus"]["enum"]
    assert "errors" not in body_schema("getServiceJobs")["properties"]


@SETTINGS
@given(body=bodies("getServiceJobByServiceJobId", "future"))
def test_unknown_enum_values_survive_decoding(body: dict[str, Any]) -> None:
    job = decode("getServiceJobByServiceJobId", body)
    sent = body["payload"].get("serviceJobStatus")
    if sent is not None:
        assert job.service_job_status == sent
        assert job.service_job_status.is_known == (sent not in NEW_ENUM_VALUES)


# --- bodies of the wrong shape -----------------------------------------------------------

_WRONG: dict[str, list[Any]] = {
    # For each JSON kind the model expects, values the SDK must refuse (a number where a
    # string is expected is an id sent as a number, and a numeric string is a fine amount:
    # neither is here).
    "string": [{"an": "object"}, ["a list"], True],
    "integer": ["seven", {"an": "object"}, [1], True, 1.5],
    "number": [{"an": "object"}, [1], True, "not a number"],
    "boolean": ["yes", 1, {"an": "object"}],
    "object": ["text", [1, 2], 5],
    "array": ["text", {"an": "object"}, 5],
}


def _slots(value: Any, schema: dict[str, Any], path: tuple[Any, ...]) -> Iterator[Any]:
    """(path, expected JSON kind) of every value in ``value`` that ``schema`` describes."""
    kind = schema.get("type")
    if isinstance(kind, str) and kind in _WRONG and path:
        yield path, kind
    if isinstance(value, dict) and kind == "object":
        for key, child in schema.get("properties", {}).items():
            if key in value:
                yield from _slots(value[key], child, (*path, key))
    elif isinstance(value, list) and kind == "array" and "items" in schema:
        for index, item in enumerate(value):
            yield from _slots(item, schema["items"], (*path, index))


def _replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    body = copy.deepcopy(body)
    holder = body
    for step in path[:-1]:
        holder = holder[step]
    holder[path[-1]] = new
    return body


@pytest.mark.parametrize("operation", DECODING)
@SETTINGS
@given(data=st.data())
def test_a_leaf_of_the_wrong_kind_is_a_decode_error(operation: str, data: st.DataObject) -> None:
    schema = body_schema(operation)
    body = data.draw(bodies(operation))
    root = DECODED[operation]
    slots = [
        (path, kind)
        for path, kind in _slots(body, schema, ())
        if path[0] != NEW_KEY and (not root or path[0] == root)
    ]
    if not slots:
        return
    path, kind = data.draw(st.sampled_from(slots))
    wrong = data.draw(st.sampled_from(_WRONG[kind]))
    with pytest.raises(ResponseDecodeError) as caught:
        decode(operation, _replaced(body, path, wrong))
    assert caught.value.request_id == REQUEST_ID
    assert caught.value.operation == operation


@pytest.mark.parametrize("operation", DECODING)
@pytest.mark.parametrize("body", [[], "text", 7, None, True], ids=repr)
def test_a_body_that_is_not_an_object_is_a_decode_error(operation: str, body: Any) -> None:
    if body is None and operation in OPTIONAL_PAYLOAD:
        result = decode(operation, body)  # JSON null: nothing to say
        assert result in (None, [], JobListing(), AppointmentSlotReport())
        return
    with pytest.raises(ResponseDecodeError) as caught:
        decode(operation, body)
    assert caught.value.request_id == REQUEST_ID


@pytest.mark.parametrize("operation", [op for op in DECODING if DECODED[op] == "payload"])
@pytest.mark.parametrize("payload", [[], "text", 7, True], ids=repr)
def test_a_payload_of_the_wrong_kind_is_a_decode_error(operation: str, payload: Any) -> None:
    if operation == "updateSchedule" and payload == []:
        assert decode(operation, {"payload": payload}) == []  # its payload is a list
        return
    with pytest.raises(ResponseDecodeError) as caught:
        decode(operation, {"payload": payload})
    assert caught.value.request_id == REQUEST_ID


# --- RFC 3339 date-times ----------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=RFC3339_RARITIES | from_schema({"type": "string", "format": "date-time"}))
def test_every_rfc3339_date_time_parses(text: str) -> None:
    parsed = _serde.parse_datetime(text)
    assert parsed.tzinfo is not None
    # The same instant as the form fromisoformat reads (a leap second: its last microsecond).
    plain = text.upper().replace(" ", "T").replace("Z", "+00:00")
    if plain[17:19] == "60":
        plain = plain[:17] + "59.999999" + plain[19:].lstrip(".0123456789")
    assert parsed == datetime.fromisoformat(plain)
    assert (
        _serde.structure({"startTime": text, "durationInMinutes": 5}, AppointmentTime).start_time
        == parsed
    )


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2016-12-31T23:59:60Z", datetime(2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2026-06-17t12:00:00z", datetime(2026, 6, 17, 12, tzinfo=UTC)),
        ("2026-06-17 12:00:00.1234567890Z", datetime(2026, 6, 17, 12, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_rfc3339_rarities(text: str, instant: datetime) -> None:
    assert _serde.parse_datetime(text) == instant


@pytest.mark.parametrize("text", ["2026-13-01T00:00:00z", "2026-06-17T24:00:60Z", "yesterday"])
def test_what_is_not_a_date_time_still_fails(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be in|Invalid isoformat"):
        _serde.parse_datetime(text)
    with pytest.raises(ResponseDecodeError):
        _serde.structure({"startTime": text, "durationInMinutes": 5}, AppointmentTime)
