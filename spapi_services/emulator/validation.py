"""What each operation accepts: a compact rule table, and the check that applies it.

The rules restate the API model's constraints in our own terms (lengths, patterns,
enumerations, item counts, required fields, body shapes) so that the live emulator
needs no copy of the model at run time.  A request that breaks them gets a 400
``InvalidInput`` whose message names the offending parameters the way the service does
(``Missing or invalid request parameters: [serviceJobId]``) and whose details say why.
Rules that the service enforces with other statuses or words (a bad time is a 422 on
appointments, the capacity operations word their 400s differently) are left to the
operation handlers, which know those cases.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from multidict import MultiMapping

from .._routes import ROUTES
from ..models.enums import (
    CapacityType,
    DayOfWeek,
    ReservationType,
    ServiceJobStatus,
    SortField,
    SortOrder,
)
from .replies import ApiError, error_entry

__all__ = ["RULES", "Call", "OperationRules", "Param", "check_request"]


# --- value rules ------------------------------------------------------------------------


class Rule:
    """A constraint on one JSON value; ``check`` appends a sentence per problem."""

    __slots__ = ()

    def check(self, value: Any, where: str, problems: list[str]) -> None:
        raise NotImplementedError


@attrs.frozen
class Text(Rule):
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    _compiled: re.Pattern[str] | None = attrs.field(init=False, default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.pattern is not None:
            object.__setattr__(self, "_compiled", re.compile(self.pattern))

    def check(self, value: Any, where: str, problems: list[str]) -> None:
        if not isinstance(value, str):
            problems.append(f"{where} must be a string")
            return
        if self.min_length is not None and len(value) < self.min_length:
            problems.append(f"{where} must have at least {self.min_length} characters")
        elif self.max_length is not None and len(value) > self.max_length:
            problems.append(f"{where} must have at most {self.max_length} characters")
        elif self._compiled is not None and not self._compiled.fullmatch(value):
            problems.append(f"{where} must match {self.pattern}")


@attrs.frozen
class Whole(Rule):
    minimum: int | None = None
    maximum: int | None = None

    def check(self, value: Any, where: str, problems: list[str]) -> None:
        integral = isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        if isinstance(value, bool) or not integral:
            problems.append(f"{where} must be an integer")
        elif self.minimum is not None and value < self.minimum:
            problems.append(f"{where} must be at least {self.minimum}")
        elif self.maximum is not None and value > self.maximum:
            problems.append(f"{where} must be at most {self.maximum}")


@attrs.frozen
class OneOf(Rule):
    values: tuple[str, ...]

    def check(self, value: Any, where: str, problems: list[str]) -> None:
        if value not in self.values:
            problems.append(f"{where} must be one of {', '.join(self.values)}")


@attrs.frozen
class ListOf(Rule):
    item: Rule
    min_items: int | None = None
    max_items: int | None = None

    def check(self, value: Any, where: str, problems: list[str]) -> None:
        if not isinstance(value, list):
            problems.append(f"{where} must be an array")
            return
        if self.min_items is not None and len(value) < self.min_items:
            problems.append(f"{where} must have at least {self.min_items} item(s)")
        elif self.max_items is not None and len(value) > self.max_items:
            problems.append(f"{where} must have at most {self.max_items} item(s)")
        for index, item in enumerate(value):
            self.item.check(item, f"{where}[{index}]", problems)


@attrs.frozen
class Shape(Rule):
    fields: Mapping[str, Rule]
    required: tuple[str, ...] = ()

    def check(self, value: Any, where: str, problems: list[str]) -> None:
        if not isinstance(value, dict):
            problems.append(f"{where} must be an object")
            return
        for name in self.required:
            if value.get(name) is None:
                problems.append(f"{where}.{name} is required")
        for name, rule in self.fields.items():
            item = value.get(name)
            if item is not None:
                rule.check(item, f"{where}.{name}", problems)


def _enum(cls: Any) -> OneOf:
    return OneOf(tuple(cls.__members__))


# --- parameters and operations --------------------------------------------------------


@attrs.frozen
class Param:
    """A path or query parameter: its rule, whether it is required, how to read its text."""

    name: str
    rule: Rule
    required: bool = False
    kind: str = "string"  # "string", "integer" or "array" (comma-joined in the query)


@attrs.frozen
class OperationRules:
    path: tuple[Param, ...] = ()
    query: tuple[Param, ...] = ()
    body: Rule | None = None


@attrs.frozen(slots=True)
class Call:
    """A request that passed its operation's rules, its parameters read into JSON values."""

    operation: str
    path: Mapping[str, str]
    query: Mapping[str, Any]
    body: Any


_ID = Text(1, 100)
_TEXT = Text(min_length=1)
_MARKETPLACES = Param(
    "marketplaceIds", ListOf(Text(1, 100, r"[A-Z0-9]+"), 1, 1), required=True, kind="array"
)


def _path(*names: str) -> tuple[Param, ...]:
    return tuple(Param(name, _ID, required=True) for name in names)


def _array(name: str, item: Rule, most: int | None = None, least: int | None = 1) -> Param:
    return Param(name, ListOf(item, least, most), kind="array")


_TIME_INPUT = Shape({"startTime": _TEXT, "durationInMinutes": Whole(1)}, ("startTime",))
_RANGE = Shape({"startTime": _TEXT, "endTime": _TEXT})
_AVAILABILITY = Shape(
    {
        "startTime": _TEXT,
        "endTime": _TEXT,
        "recurrence": Shape(
            {
                "endTime": _TEXT,
                "daysOfWeek": ListOf(_enum(DayOfWeek)),
                "daysOfMonth": ListOf(Whole(1, 31)),
            },
            ("endTime",),
        ),
        "capacity": Whole(1),
    },
    ("startTime", "endTime"),
)
_RESERVATION_BODY = Shape(
    {
        "resourceId": _ID,
        "reservation": Shape(
            {
                "reservationId": _ID,
                "type": _enum(ReservationType),
                "availability": _AVAILABILITY,
            },
            ("availability", "type"),
        ),
    },
    ("resourceId", "reservation"),
)
_RESOURCE = Shape({"resourceId": _ID})
_CAPACITY = {
    "startDateTime": Text(),
    "endDateTime": Text(),
    "capacityTypes": ListOf(_enum(CapacityType)),
}
_SLOT_WINDOW = (Param("startTime", _TEXT), Param("endTime", _TEXT))

#: operationId -> its rules (``marketplaceIds`` is added from the route table).
RULES: Mapping[str, OperationRules] = {
    "getServiceJobByServiceJobId": OperationRules(path=_path("serviceJobId")),
    "cancelServiceJobByServiceJobId": OperationRules(
        path=_path("serviceJobId"),
        query=(Param("cancellationReasonCode", Text(1, 100, r"[A-Z0-9_]*"), required=True),),
    ),
    "completeServiceJobByServiceJobId": OperationRules(path=_path("serviceJobId")),
    "getServiceJobs": OperationRules(
        query=(
            _array("serviceOrderIds", Text(1, None, r"[0-9\-]+"), 20),
            _array("productOrderIds", Text(1, None, r"[0-9\-]+"), 20),
            _array("trackingIds", Text(1, None, r"[A-Za-z0-9\-]+"), 20),
            _array("serviceJobStatus", _enum(ServiceJobStatus)),
            Param("pageToken", _TEXT),
            Param("pageSize", Whole(1, 20), kind="integer"),
            Param("sortField", _enum(SortField)),
            Param("sortOrder", _enum(SortOrder)),
            Param("createdAfter", _TEXT),
            Param("createdBefore", _TEXT),
            Param("lastUpdatedAfter", _TEXT),
            Param("lastUpdatedBefore", _TEXT),
            Param("scheduleStartDate", _TEXT),
            Param("scheduleEndDate", _TEXT),
            _array("asins", Text(10, 10), 20),
            _array("requiredSkills", Text(1, 50), 20),
            _array("storeIds", _ID, 50),
        )
    ),
    "addAppointmentForServiceJobByServiceJobId": OperationRules(
        path=_path("serviceJobId"),
        body=Shape({"appointmentTime": _TIME_INPUT}, ("appointmentTime",)),
    ),
    "rescheduleAppointmentForServiceJobByServiceJobId": OperationRules(
        path=_path("serviceJobId", "appointmentId"),
        body=Shape(
            {"appointmentTime": _TIME_INPUT, "rescheduleReasonCode": _ID},
            ("appointmentTime", "rescheduleReasonCode"),
        ),
    ),
    "assignAppointmentResources": OperationRules(
        path=_path("serviceJobId", "appointmentId"),
        body=Shape({"resources": ListOf(_RESOURCE, 1)}, ("resources",)),
    ),
    "setAppointmentFulfillmentData": OperationRules(
        path=_path("serviceJobId", "appointmentId"),
        body=Shape(
            {
                "estimatedArrivalTime": _RANGE,
                "fulfillmentTime": _RANGE,
                "appointmentResources": ListOf(_RESOURCE),
                "fulfillmentDocuments": ListOf(
                    Shape({"uploadDestinationId": _TEXT, "contentSha256": _TEXT})
                ),
            }
        ),
    ),
    "getRangeSlotCapacity": OperationRules(
        path=_path("resourceId"),
        query=(Param("nextPageToken", _TEXT),),
        body=Shape(_CAPACITY),
    ),
    "getFixedSlotCapacity": OperationRules(
        path=_path("resourceId"),
        query=(Param("nextPageToken", _TEXT),),
        body=Shape({**_CAPACITY, "slotDuration": Whole()}),
    ),
    "updateSchedule": OperationRules(
        path=_path("resourceId"),
        body=Shape({"schedules": ListOf(_AVAILABILITY, 1)}, ("schedules",)),
    ),
    "createReservation": OperationRules(body=_RESERVATION_BODY),
    "updateReservation": OperationRules(path=_path("reservationId"), body=_RESERVATION_BODY),
    "cancelReservation": OperationRules(path=_path("reservationId")),
    "getAppointmmentSlotsByJobId": OperationRules(path=_path("serviceJobId"), query=_SLOT_WINDOW),
    "getAppointmentSlots": OperationRules(
        query=(
            Param("asin", _TEXT, required=True),
            Param("storeId", _ID, required=True),
            *_SLOT_WINDOW,
        )
    ),
    "createServiceDocumentUploadDestination": OperationRules(
        body=Shape(
            {
                # An unknown content type is a 422 in the sandbox, so the handler checks it.
                "contentType": _TEXT,
                "contentLength": Whole(1, 5_242_880),
                "contentMD5": Text(24, 24, r"[A-Za-z0-9+/]{22}={2}"),
            },
            ("contentType", "contentLength"),
        )
    ),
}

_QUERY: dict[str, tuple[Param, ...]] = {
    op: (*rules.query, _MARKETPLACES) if ROUTES[op].marketplace_ids else rules.query
    for op, rules in RULES.items()
}


# --- the check ------------------------------------------------------------------------


def check_request(
    operation: str,
    path: Mapping[str, str],
    query: MultiMapping[str],
    body: bytes,
    content_type: str,
) -> Call:
    """Read and check one request; :class:`ApiError` (400, or 415) if it breaks a rule."""
    rules = RULES[operation]
    problems: list[tuple[str, str]] = []
    for param in rules.path:
        _check_param(param, path.get(param.name), problems)
    values: dict[str, Any] = {}
    for param in _QUERY[operation]:
        raw = query.getall(param.name, [])
        value = _read_query(param, raw, problems)
        if value is not None:
            values[param.name] = value
            _check_param(param, value, problems)
        elif param.required:
            problems.append((param.name, f"{param.name} is required"))
    data: Any = None
    if rules.body is not None:
        data = _read_body(body, content_type, rules.body, problems)
    if problems:
        names = list(dict.fromkeys(name for name, _ in problems))
        raise ApiError(
            400,
            [
                error_entry(
                    "InvalidInput",
                    f"Missing or invalid request parameters: [{', '.join(names)}]",
                    "; ".join(message for _, message in problems),
                )
            ],
        )
    return Call(operation, path, values, data)


def _check_param(param: Param, value: Any, problems: list[tuple[str, str]]) -> None:
    found: list[str] = []
    if value is None:
        if param.required:
            found.append(f"{param.name} is required")
    else:
        param.rule.check(value, param.name, found)
    problems.extend((param.name, message) for message in found)


def _read_query(param: Param, raw: Sequence[str], problems: list[tuple[str, str]]) -> Any:
    if not raw:
        return None
    if param.kind == "array":
        # The model leaves collectionFormat at its default, csv; repeated keys are read too.
        return [item for text in raw for item in text.split(",") if item]
    if param.kind == "integer":
        try:
            return int(raw[-1])
        except ValueError:
            problems.append((param.name, f"{param.name} must be an integer"))
            return None
    return raw[-1]


def _read_body(body: bytes, content_type: str, rule: Rule, problems: list[tuple[str, str]]) -> Any:
    if not body:
        problems.append(("body", "a JSON request body is required"))
        return None
    if content_type != "application/json":
        raise ApiError(
            415,
            [
                error_entry(
                    "UnsupportedMediaType",
                    f"Content-Type {content_type or '(none)'} is not supported; "
                    "send application/json",
                )
            ],
        )
    try:
        data = json.loads(body)
    except ValueError:
        problems.append(("body", "the request body is not valid JSON"))
        return None
    found: list[str] = []
    rule.check(data, "body", found)
    for message in found:
        # Name the top-level field, as the service does ("[contentType, contentLength]").
        head = message.split(" ", 1)[0]
        parts = head.split(".")
        name = parts[1].split("[", 1)[0] if len(parts) > 1 else "body"
        problems.append((name, message))
    return data
