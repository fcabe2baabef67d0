"""Argument messages that say what was meant: the nearest enum value or filter name, a
list wanted where one string was given, one list of document types in one order, and
each end of a time window named as the caller wrote it.  All raised before sending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aioresponses import aioresponses

from spapi_services import ServicesClient
from spapi_services._upload import CONTENT_TYPES_HELP, check_content_type
from spapi_services._validation import check_enum, nearest
from spapi_services.models import ContentType, FulfillmentTime
from spapi_services.models.common import DateTimeRange
from spapi_services.models.enums import ServiceJobStatus, SortOrder

from ._helpers import ClientFactory

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
NAIVE = datetime(2026, 3, 1, 9, 30)
HOUR = timedelta(hours=1)
SINCE = {"created_after": T0 - 24 * HOUR}


@pytest.fixture
def client(mock_api: aioresponses, make_client: ClientFactory) -> ServicesClient:
    return make_client()


# --- enum values: the nearest one, in any case -----------------------


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("pending_schedule", "PENDING_SCHEDULE"),
        ("Pending_Schedule", "PENDING_SCHEDULE"),
        ("PENDING_SCHEDUL", "PENDING_SCHEDULE"),
        ("CANCELED", "CANCELLED"),
        ("completed", "COMPLETED"),
    ],
)
def test_a_status_in_another_case_or_misspelt_names_the_one_meant(
    client: ServicesClient, mock_api: aioresponses, typed: str, meant: str
) -> None:
    with pytest.raises(ValueError, match=r"^statuses\[0\]: ") as caught:
        client.service_jobs.list(statuses=[typed], **SINCE)
    message = str(caught.value)
    assert f"{typed!r} is not one of NOT_SERVICED, " in message
    assert message.endswith(f"; did you mean {meant!r}?")
    assert mock_api.requests == {}


def test_every_enum_argument_gets_the_hint_and_nothing_near_gets_none() -> None:
    with pytest.raises(ValueError, match=r"^sort_order: 'asc' .*; did you mean 'ASC'\?$"):
        check_enum("sort_order", "asc", SortOrder)
    with pytest.raises(ValueError, match=r"PAYMENT_DECLINED$"):  # nothing near: no guess
        check_enum("statuses[0]", "banana", ServiceJobStatus)
    assert nearest("created_afterr", ["created_after", "created_before"]) == "created_after"
    assert nearest("xyz", ["created_after"]) is None


# --- a single string where a list is wanted -----------------------
# Refused, as every list argument of the SDK refuses one (it would go out letter by
# letter), naming the argument: the same message everywhere.


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda c: c.service_jobs.list(statuses="PENDING_SCHEDULE", **SINCE), "statuses"),
        (lambda c: c.service_jobs.list(asins="B00CZ1EE2Y", **SINCE), "asins"),
        (lambda c: c.service_jobs.list(store_ids="STORE1", **SINCE), "store_ids"),
    ],
)
def test_one_string_for_a_list_is_refused_naming_the_argument(
    client: ServicesClient, mock_api: aioresponses, call: Any, name: str
) -> None:
    with pytest.raises(TypeError) as caught:
        call(client)
    assert str(caught.value) == f"{name}: expected a list, got str"
    assert mock_api.requests == {}


async def test_one_resource_id_for_a_list_is_refused_the_same_way(
    client: ServicesClient, mock_api: aioresponses
) -> None:
    with pytest.raises(TypeError, match=r"^resource_ids: expected a list, got str$"):
        await client.appointments.assign_resources("job", "appt", "TECH1")  # type: ignore[arg-type]
    assert mock_api.requests == {}


# --- a misspelt filter -----------------------


def test_a_misspelt_filter_names_the_filter_meant(
    client: ServicesClient, mock_api: aioresponses
) -> None:
    filters: dict[str, Any] = {"created_afterr": T0, "statusses": ["HOLD"], "colour": "red"}
    with pytest.raises(TypeError) as caught:
        client.service_jobs.list(**filters)
    assert str(caught.value) == (
        "unexpected job filter(s): colour, created_afterr (did you mean created_after?), "
        "statusses (did you mean statuses?)"
    )
    assert mock_api.requests == {}


# --- document types: one list, one order -----------------------


def test_the_document_types_are_listed_once_in_the_models_order() -> None:
    assert CONTENT_TYPES_HELP == (
        "TIFF, JPG, PNG, JPEG, GIF, PDF in any case, or a MIME type: image/tiff, image/jpg, "
        "image/png, image/jpeg, image/gif, application/pdf"
    )
    with pytest.raises(ValueError, match="is not one of") as caught:
        check_content_type("content_type", "image/webp")
    assert str(caught.value) == f"content_type: 'image/webp' is not one of {CONTENT_TYPES_HELP}"
    with pytest.raises(ValueError, match=r"; did you mean 'image/png'\?$"):
        check_content_type("content_type", "image/pgn")
    # Every MIME type listed is taken, image/jpg included.
    assert check_content_type("content_type", "image/jpg") is ContentType.JPG


def test_the_sdk_docstrings_list_the_types_in_the_same_order() -> None:
    from spapi_services.resources.documents import Documents

    names = "``TIFF``, ``JPG``, ``PNG``, ``JPEG``, ``GIF``, ``PDF``"
    for method in (Documents.create_upload_destination, Documents.upload):
        doc = " ".join((method.__doc__ or "").split())
        assert names in doc
        assert "``image/tiff``, ``image/jpg``, ``image/png``, ``image/jpeg``" in doc


# --- each end of a window named one way -----------------------
# ``.start_time`` and ``.end_time``, in every check, whether a pair or a model was given;
# for a pair, the message also says which item it was.


@pytest.mark.parametrize(
    ("window", "prefix", "where"),
    [
        ((NAIVE, T0), "fulfillment_time.start_time: ", " (given as fulfillment_time[0])"),
        ((T0 - HOUR, NAIVE), "fulfillment_time.end_time: ", " (given as fulfillment_time[1])"),
        (FulfillmentTime(start_time=NAIVE, end_time=T0), "fulfillment_time.start_time: ", ""),
        (FulfillmentTime(start_time=T0 - HOUR, end_time=NAIVE), "fulfillment_time.end_time: ", ""),
    ],
)
async def test_a_naive_fulfilment_time_is_named_by_its_end(
    client: ServicesClient, mock_api: aioresponses, window: Any, prefix: str, where: str
) -> None:
    with pytest.raises(ValueError, match=r"naive datetime") as caught:
        await client.appointments.set_fulfillment_data("job", "appt", fulfillment_time=window)
    message = str(caught.value)
    assert message.startswith(prefix)
    assert message.endswith(f"(for example with tzinfo=timezone.utc){where}")
    assert mock_api.requests == {}


@pytest.mark.parametrize(
    "window", [(T0, T0 + HOUR), FulfillmentTime(start_time=T0, end_time=T0 + HOUR)]
)
async def test_a_future_fulfilment_time_is_named_as_a_naive_one_is(
    client: ServicesClient, mock_api: aioresponses, monkeypatch: pytest.MonkeyPatch, window: Any
) -> None:
    monkeypatch.setattr(client, "_utcnow", lambda: T0 - 2 * HOUR)
    with pytest.raises(ValueError, match="is in the future") as caught:
        await client.appointments.set_fulfillment_data("job", "appt", fulfillment_time=window)
    assert str(caught.value).startswith("fulfillment_time.start_time: ")
    assert mock_api.requests == {}


async def test_a_naive_arrival_window_is_named_by_its_end_too(
    client: ServicesClient, mock_api: aioresponses
) -> None:
    window = DateTimeRange(start_time=T0, end_time=NAIVE)
    with pytest.raises(ValueError, match=r"^estimated_arrival_time\.end_time: naive datetime"):
        await client.appointments.set_fulfillment_data("job", "appt", estimated_arrival_time=window)
    with pytest.raises(ValueError, match=r"^estimated_arrival_time\.start_time: naive .*\[0\]\)$"):
        await client.appointments.set_fulfillment_data(
            "job", "appt", estimated_arrival_time=(NAIVE, T0)
        )
    assert mock_api.requests == {}
