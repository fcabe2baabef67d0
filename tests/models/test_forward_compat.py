"""New enum values and new keys from Amazon must never break decoding."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Any

import cattrs
import pytest

from spapi_services import _serde
from spapi_services import models as m
from spapi_services.errors import ResponseDecodeError
from spapi_services.models import (
    ApiEnum,
    AppointmentStatus,
    CapacityType,
    ItemStatus,
    JobListing,
    ServiceJobStatus,
)

ALL_ENUMS: list[type[ApiEnum]] = [
    obj
    for name in sorted(m.__all__)
    if isinstance(obj := getattr(m, name), type) and issubclass(obj, ApiEnum) and obj is not ApiEnum
]


def _job_with_surprises() -> dict[str, Any]:
    """A job where every level carries a key we do not know, and enums carry new values."""
    return {
        "serviceJobId": "job-1",
        "serviceJobStatus": "AWAITING_PARTS",
        "futureTopLevelFlag": True,
        "scopeOfWork": {"asin": "B07BB1RGT5", "skillLevel": "EXPERT"},
        "appointments": [
            {
                "appointmentId": "a-1",
                "appointmentStatus": "ACTIVE",
                "travelMinutes": 15,
                "appointmentTime": {
                    "startTime": "2026-03-02T15:00:00Z",
                    "durationInMinutes": 60,
                    "timeZone": "America/Los_Angeles",
                },
                "assignedTechnicians": [{"technicianId": "T1", "rating": {"stars": 5}}],
                "poa": {"poaType": "VIDEO_PROOF", "geo": [47.6, -122.3]},
            },
            {"appointmentId": "a-2", "appointmentStatus": "NO_SHOW"},
        ],
        "associatedItems": [
            {
                "asin": "B08TVSAMPLE",
                "itemStatus": "RETURNED_TO_SENDER",
                "itemDelivery": {
                    "itemDeliveryPromise": {
                        "startTime": "2026-02-28T14:00:00Z",
                        "endTime": "2026-02-28T22:00:00Z",
                        "confidence": "HIGH",
                    },
                    "carrier": {"name": "AMZL"},
                },
                "linkedAssets": [{"assetType": "VEHICLE", "vin": "1FT..."}],
            },
            {"asin": "B08MOUNT01", "itemStatus": "DELIVERED"},
        ],
        "serviceLocation": {
            "serviceLocationType": "CURBSIDE",
            "address": {"name": "A", "addressLine1": "1 Main St", "plusCode": "84VVJM+"},
        },
        "payments": [{"amount": {"value": 10.5, "currency": "USD", "taxIncluded": True}}],
    }


def _listing_body() -> dict[str, Any]:
    return {"jobs": [_job_with_surprises()], "totalResultSize": 1, "facets": {"x": 1}}


def test_unknown_keys_and_values_at_every_depth_decode() -> None:
    listing = _serde.structure(_serde.loads(json.dumps(_listing_body())), JobListing)
    assert listing.jobs is not None
    job = listing.jobs[0]
    assert job.service_job_status == "AWAITING_PARTS"
    assert job.appointments is not None
    assert job.appointments[1].appointment_status == "NO_SHOW"
    assert job.appointments[0].poa is not None
    assert job.appointments[0].poa.poa_type == "VIDEO_PROOF"
    assert job.associated_items is not None
    assert job.associated_items[0].item_status == "RETURNED_TO_SENDER"
    assert job.service_location is not None
    assert job.service_location.service_location_type == "CURBSIDE"
    # The known parts beside the surprises are intact.
    assert job.appointments[0].appointment_time is not None
    assert job.appointments[0].appointment_time.duration_in_minutes == 60
    assert job.associated_items[0].item_delivery is not None
    promise = job.associated_items[0].item_delivery.item_delivery_promise
    assert promise is not None
    assert promise.end_time is not None


def test_the_surprises_really_are_unknown_keys() -> None:
    # The strict twin names each unknown key, so the test above exercised every depth.
    strict = _serde.make_converter(forbid_extra_keys=True)
    with pytest.raises(cattrs.BaseValidationError) as caught:
        strict.structure(_listing_body(), JobListing)
    found = " ".join(cattrs.transform_error(caught.value))
    for key in (
        "facets",
        "futureTopLevelFlag",
        "skillLevel",
        "travelMinutes",
        "timeZone",
        "rating",
        "geo",
        "confidence",
        "carrier",
        "vin",
        "plusCode",
        "taxIncluded",
    ):
        assert key in found, key


def test_unknown_values_are_members_that_behave_like_their_string() -> None:
    listing = _serde.structure(_listing_body(), JobListing)
    assert listing.jobs is not None
    job = listing.jobs[0]
    status = job.service_job_status
    assert isinstance(status, ServiceJobStatus)
    assert status == "AWAITING_PARTS"
    assert status.value == "AWAITING_PARTS"
    assert str(status) == "AWAITING_PARTS"
    assert f"{status}" == "AWAITING_PARTS"
    assert status.is_known is False
    assert job.associated_items is not None
    item_status = job.associated_items[0].item_status
    assert isinstance(item_status, ItemStatus)
    assert item_status.is_known is False


def test_known_values_stay_the_singletons() -> None:
    listing = _serde.structure(_listing_body(), JobListing)
    assert listing.jobs is not None
    job = listing.jobs[0]
    assert job.appointments is not None
    assert job.appointments[0].appointment_status is AppointmentStatus.ACTIVE
    assert job.appointments[0].appointment_status.is_known is True
    assert job.associated_items is not None
    assert job.associated_items[1].item_status is ItemStatus.DELIVERED


def test_unknown_values_go_back_out_unchanged() -> None:
    body = _listing_body()
    listing = _serde.structure(body, JobListing)
    out = json.loads(_serde.dumps(_serde.unstructure(listing)))
    job = out["jobs"][0]
    assert job["serviceJobStatus"] == "AWAITING_PARTS"
    assert job["appointments"][1]["appointmentStatus"] == "NO_SHOW"
    assert job["appointments"][0]["poa"]["poaType"] == "VIDEO_PROOF"
    assert job["associatedItems"][0]["itemStatus"] == "RETURNED_TO_SENDER"
    assert job["serviceLocation"]["serviceLocationType"] == "CURBSIDE"
    # Unknown keys are dropped, not echoed.
    assert "futureTopLevelFlag" not in job


@pytest.mark.parametrize("enum", ALL_ENUMS, ids=lambda e: e.__name__)
def test_every_enum_tolerates_a_new_value(enum: type[ApiEnum]) -> None:
    member = _serde.converter.structure("SOMETHING_NEW_2031", enum)
    assert isinstance(member, enum)
    assert member == "SOMETHING_NEW_2031"
    assert member.is_known is False
    assert _serde.unstructure(member) == "SOMETHING_NEW_2031"
    assert json.loads(_serde.dumps([member])) == ["SOMETHING_NEW_2031"]
    # The same unknown value is the same object, and survives pickling.
    assert enum("SOMETHING_NEW_2031") is member
    assert pickle.loads(pickle.dumps(member)) == member
    assert copy.deepcopy(member) == member
    # It is not added to the known members.
    assert "SOMETHING_NEW_2031" not in enum.__members__
    assert all(known.is_known for known in enum)


@pytest.mark.parametrize("enum", ALL_ENUMS, ids=lambda e: e.__name__)
def test_every_known_value_structures_to_its_singleton(enum: type[ApiEnum]) -> None:
    for known in enum:
        assert _serde.converter.structure(known.value, enum) is known
        assert _serde.unstructure(known) == known.value
        assert type(_serde.unstructure(known)) is str


@pytest.mark.parametrize("enum", ALL_ENUMS, ids=lambda e: e.__name__)
def test_names_equal_values(enum: type[ApiEnum]) -> None:
    # check_enum looks plain strings up by name; that is only right if names are values.
    assert [member.name for member in enum] == [member.value for member in enum]


def test_a_non_string_enum_value_is_a_decode_error() -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        _serde.structure({"jobs": [{"serviceJobStatus": 3}]}, JobListing)
    assert caught.value.problems == (
        "expected a ServiceJobStatus string, got a number @ $.jobs[0].serviceJobStatus",
    )


def test_enums_format_as_their_value_in_query_strings() -> None:
    # A (str, Enum) would give "CapacityType.SCHEDULED_CAPACITY" here.
    assert f"{CapacityType.SCHEDULED_CAPACITY}" == "SCHEDULED_CAPACITY"
    assert ",".join([ServiceJobStatus.HOLD, ServiceJobStatus("LATER")]) == "HOLD,LATER"


def test_every_enum_is_covered() -> None:
    assert len(ALL_ENUMS) == 14
