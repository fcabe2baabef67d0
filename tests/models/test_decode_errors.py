"""Bodies of the wrong shape: one ResponseDecodeError, each problem at its camelCase JSON path."""

from __future__ import annotations

from typing import Any

import attrs
import cattrs
import pytest

from spapi_services import _serde
from spapi_services.errors import ResponseDecodeError, SpApiError
from spapi_services.models import (
    AppointmentSlotReport,
    CreateReservationRecord,
    JobListing,
    Reservation,
    ServiceDocumentUploadDestination,
    ServiceJob,
    ServiceUploadDocument,
    UpdateScheduleRecord,
)


def _problems(data: Any, cls: Any) -> tuple[str, ...]:
    with pytest.raises(ResponseDecodeError) as caught:
        _serde.structure(data, cls)
    error = caught.value
    assert isinstance(error, SpApiError)
    assert not isinstance(error, cattrs.BaseValidationError)
    assert error.problems
    return error.problems


@pytest.mark.parametrize(
    ("data", "cls", "problem"),
    [
        # The example from the docs: a string where an integer belongs, two jobs in.
        (
            {"jobs": [{}, {"scopeOfWork": {"quantity": "two"}}]},
            JobListing,
            "expected an integer, got a string @ $.jobs[1].scopeOfWork.quantity",
        ),
        # A string where an object is expected, nested and at the top.
        (
            {"jobs": [{"buyer": "Alex Example"}]},
            JobListing,
            "expected an object, got a string @ $.jobs[0].buyer",
        ),
        ("not an object", JobListing, "expected an object, got a string @ $"),
        ([], ServiceJob, "expected an object, got an array @ $"),
        (None, ServiceJob, "expected an object, got null @ $"),
        (
            {"reservation": "457"},
            CreateReservationRecord,
            "expected an object, got a string @ $.reservation",
        ),
        # A dict where a string is expected.
        (
            {"jobs": [{"serviceJobId": {"id": "x"}}]},
            JobListing,
            "expected a string, got an object @ $.jobs[0].serviceJobId",
        ),
        (
            {"jobs": [{"scopeOfWork": {"requiredSkills": ["A", {"name": "B"}]}}]},
            JobListing,
            "expected a string, got an object @ $.jobs[0].scopeOfWork.requiredSkills[1]",
        ),
        # A non-list where an array is expected.
        ({"jobs": {"0": {}}}, JobListing, "expected an array, got an object @ $.jobs"),
        (
            {"jobs": [{"productOrderIds": "113-1234567-1111111"}]},
            JobListing,
            "expected an array, got a string @ $.jobs[0].productOrderIds",
        ),
        (
            {"appointmentSlots": 3},
            AppointmentSlotReport,
            "expected an array, got a number @ $.appointmentSlots",
        ),
        ({}, tuple[UpdateScheduleRecord, ...], "expected an array, got an object @ $"),
        # Numbers and booleans are not interchangeable.
        (
            {"totalResultSize": True},
            JobListing,
            "expected an integer, got a boolean @ $.totalResultSize",
        ),
        (
            {"totalResultSize": 1.5},
            JobListing,
            "expected an integer, got a number @ $.totalResultSize",
        ),
        (
            {"jobs": [{"buyer": {"isPrimeMember": "yes"}}]},
            JobListing,
            "expected a boolean, got a string @ $.jobs[0].buyer.isPrimeMember",
        ),
        # A free-form map with a non-string value.
        (
            {
                "uploadDestinationId": "u",
                "url": "https://x",
                "headers": {"a": {"b": 1}},
                "encryptionDetails": {"standard": "AES", "initializationVector": "i", "key": "k"},
            },
            ServiceDocumentUploadDestination,
            "expected a string, got an object @ $.headers",
        ),
        # contentMD5 is the one wire name that is not plain camelCase.
        (
            {"contentType": "PDF", "contentLength": 3, "contentMD5": ["x"]},
            ServiceUploadDocument,
            "expected a string, got an array @ $.contentMD5",
        ),
        # Deep inside: the address line of the service location.
        (
            {"jobs": [{"serviceLocation": {"address": {"name": "A", "addressLine1": ["1"]}}}]},
            JobListing,
            "expected a string, got an array @ $.jobs[0].serviceLocation.address.addressLine1",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and "@" in v else "",
)
def test_each_mismatch_names_its_json_path(data: Any, cls: Any, problem: str) -> None:
    assert _problems(data, cls) == (problem,)


def test_missing_required_fields_are_each_reported() -> None:
    problems = _problems({"reservationId": "1"}, Reservation)
    assert set(problems) == {
        "required field missing @ $.type",
        "required field missing @ $.availability",
    }


def test_every_bad_item_is_reported_not_just_the_first() -> None:
    body = {
        "jobs": [
            {"scopeOfWork": {"quantity": "one"}},
            {"serviceJobId": "fine"},
            {"createTime": "yesterday", "buyer": []},
        ]
    }
    assert set(_problems(body, JobListing)) == {
        "expected an integer, got a string @ $.jobs[0].scopeOfWork.quantity",
        "expected an ISO 8601 timestamp, got 'yesterday' @ $.jobs[2].createTime",
        "expected an object, got an array @ $.jobs[2].buyer",
    }


def test_the_message_names_the_operation_and_the_problems() -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        _serde.structure({"jobs": 1}, JobListing, operation="getServiceJobs")
    error = caught.value
    assert error.operation == "getServiceJobs"
    assert str(error).startswith("getServiceJobs: response does not fit JobListing: ")
    assert "@ $.jobs" in str(error)
    assert isinstance(error.__cause__, Exception)


def test_messages_do_not_echo_personal_data() -> None:
    body = {"jobs": [{"buyer": {"name": ["Alex Example"], "phone": 2065550100}}]}
    problems = _problems(body, JobListing)
    assert problems == ("expected a string, got an array @ $.jobs[0].buyer.name",)
    assert "Alex" not in " ".join(problems)


def test_infinite_and_nan_numbers_are_decode_errors() -> None:
    assert _problems(float("inf"), int) == ("expected an integer, got a number @ $",)
    assert _problems({"totalResultSize": float("nan")}, JobListing) == (
        "expected an integer, got a number @ $.totalResultSize",
    )


def test_whole_floats_and_numeric_ids_are_accepted() -> None:
    # Lenient where nothing is lost: 2.0 is the integer 2; an id sent as a number is the id.
    listing = _serde.structure(
        {"totalResultSize": 2.0, "jobs": [{"serviceJobId": 12345}]}, JobListing
    )
    assert listing.total_result_size == 2
    assert listing.jobs is not None
    assert listing.jobs[0].service_job_id == "12345"


def test_structure_to_a_list_gives_a_list() -> None:
    records = _serde.structure([{"warnings": []}], list[UpdateScheduleRecord])
    assert records == [UpdateScheduleRecord(warnings=())]


# --- every leaf of a fully populated job, broken in turn --------------------------------


def full_job() -> dict[str, Any]:
    """A job with every field the model knows set."""
    time = {"startTime": "2026-03-02T15:00:00.000Z", "durationInMinutes": 120}
    technicians = [{"technicianId": "T1", "name": "Jane"}, {"technicianId": "T2", "name": "Sam"}]
    return {
        "createTime": "2026-02-27T09:14:53.952Z",
        "serviceJobId": "job-1",
        "serviceJobStatus": "COMPLETED",
        "scopeOfWork": {
            "asin": "B07BB1RGT5",
            "title": "Mount",
            "quantity": 1,
            "requiredSkills": ["TV_MOUNTING", "ELECTRICAL"],
        },
        "seller": {"sellerId": "A2SELLER"},
        "serviceJobProvider": {"serviceJobProviderId": "A3PROVIDER"},
        "preferredAppointmentTimes": [time],
        "appointments": [
            {
                "appointmentId": "a-1",
                "appointmentStatus": "COMPLETED",
                "appointmentTime": time,
                "assignedTechnicians": technicians,
                "rescheduledAppointmentId": "a-0",
                "poa": {
                    "appointmentTime": time,
                    "technicians": technicians,
                    "uploadingTechnician": "T1",
                    "uploadTime": "2026-03-02T17:05:12Z",
                    "poaType": "CUSTOMER_SIGNATURE",
                },
            }
        ],
        "serviceOrderId": "112-1234567-4463201",
        "productOrderIds": ["113-1234567-1111111"],
        "trackingIds": ["TBA301234567890"],
        "marketplaceId": "ATVPDKIKX0DER",
        "storeId": "store-1",
        "buyer": {
            "buyerId": "A1BUYER",
            "name": "Alex",
            "phone": "+1-206-555-0100",
            "isPrimeMember": True,
        },
        "associatedItems": [
            {
                "asin": "B08TVSAMPLE",
                "title": "TV",
                "quantity": 1,
                "orderId": "113-1",
                "itemStatus": "DELIVERED",
                "brandName": "Brand",
                "itemDelivery": {
                    "estimatedDeliveryDate": "2026-02-28T20:00:00Z",
                    "itemDeliveryPromise": {
                        "startTime": "2026-02-28T14:00:00Z",
                        "endTime": "2026-02-28T22:00:00Z",
                    },
                },
                "linkedAssets": [
                    {
                        "assetType": "VEHICLE",
                        "assetName": "Van",
                        "additionalAttributes": {"make": "Ford"},
                    }
                ],
            }
        ],
        "serviceLocation": {
            "serviceLocationType": "IN_HOME",
            "address": {
                "name": "Alex",
                "addressLine1": "410 Terry Ave N",
                "addressLine2": "5",
                "addressLine3": "B",
                "city": "Seattle",
                "county": "King",
                "district": "SLU",
                "stateOrRegion": "WA",
                "postalCode": "98109",
                "countryCode": "US",
                "phone": "+1-206-555-0100",
            },
        },
        "payments": [{"amount": {"value": 149.99, "currency": "USD"}, "instrument": "CARD"}],
    }


def _leaves(node: Any, path: str) -> list[tuple[str, list[Any]]]:
    """(JSON path, key path) of every scalar, array and map in ``node``."""
    found: list[tuple[str, list[Any]]] = []

    def walk(value: Any, text: str, keys: list[Any]) -> None:
        if isinstance(value, dict) and not text.endswith("additionalAttributes"):
            for key, child in value.items():
                walk(child, f"{text}.{key}", [*keys, key])
            return
        found.append((text, keys))
        if isinstance(value, list):
            for index, child in enumerate(value):
                walk(child, f"{text}[{index}]", [*keys, index])

    walk(node, path, [])
    return found


LEAVES = _leaves({"jobs": [full_job()]}, "$")


def test_the_full_job_sets_every_field() -> None:
    strict = _serde.make_converter(forbid_extra_keys=True)
    listing = strict.structure({"jobs": [full_job()]}, JobListing)
    assert listing.jobs is not None

    def unset(obj: Any, path: str) -> list[str]:
        missing = []
        for field in attrs.fields(type(obj)):
            value = getattr(obj, field.name)
            if value is None:
                missing.append(f"{path}.{field.name}")
            elif attrs.has(type(value)):
                missing += unset(value, f"{path}.{field.name}")
            elif isinstance(value, tuple):
                for index, item in enumerate(value):
                    if attrs.has(type(item)):
                        missing += unset(item, f"{path}.{field.name}[{index}]")
        return missing

    assert unset(listing.jobs[0], "job") == []


@pytest.mark.parametrize(("path", "keys"), LEAVES, ids=[p for p, _ in LEAVES])
def test_breaking_any_leaf_is_reported_at_its_path(path: str, keys: list[Any]) -> None:
    body: Any = {"jobs": [full_job()]}
    parent = body
    for key in keys[:-1]:
        parent = parent[key]
    original = parent[keys[-1]]
    # Something of the wrong kind: an object in place of a scalar or an array, and a
    # number in place of a map.
    parent[keys[-1]] = 5 if isinstance(original, dict) else {"wrong": "kind"}
    assert path in {p.rpartition(" @ ")[2] for p in _problems(body, JobListing)}
