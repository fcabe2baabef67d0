"""Every one of the 17 operations: what goes on the wire, and what comes back typed."""

from __future__ import annotations

import platform
import re
import sys
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from aioresponses import aioresponses

from spapi_services import ServicesClient, __version__
from spapi_services.models import (
    AppointmentResult,
    AppointmentSlotReport,
    AvailabilityRecord,
    CapacityType,
    CreateReservationRecord,
    DayOfWeek,
    FixedSlotCapacity,
    FulfillmentDocument,
    JobListing,
    RangeSlotCapacity,
    Recurrence,
    Reservation,
    ReservationType,
    SchedulingType,
    ServiceDocumentUploadDestination,
    ServiceJob,
    ServiceJobStatus,
    SortField,
    UpdateReservationRecord,
    UpdateScheduleRecord,
    Warning,
)

from ._helpers import ACCESS_TOKEN, MARKETPLACE, ClientFactory, Sent, expect, lwa_ok

USER_AGENT = (
    f"spapi-services/{__version__} "
    f"(Language=Python/{sys.version_info.major}.{sys.version_info.minor}; "
    f"Platform={platform.system()})"
)
T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))


def only(sent: list[Sent]) -> Sent:
    assert len(sent) == 1, f"expected one request, got {len(sent)}"
    return sent[0]


def check_headers(request: Sent, *, has_body: bool) -> None:
    assert request.headers["x-amz-access-token"] == ACCESS_TOKEN
    assert request.headers["User-Agent"] == USER_AGENT
    assert "Authorization" not in request.headers
    if has_body:
        assert request.headers["Content-Type"] == "application/json"
    else:
        assert "Content-Type" not in request.headers
        assert request.data is None


# --- service jobs ------------------------------------------------------------------

JOB = {
    "serviceJobId": "job-1",
    "serviceJobStatus": "NOT_SERVICED",
    "createTime": "2026-02-01T10:00:00Z",
    "scopeOfWork": {"asin": "B00EXAMPLE", "title": "TV mount", "quantity": 1},
    "buyer": {"buyerId": "A1", "name": "Jane Buyer", "isPrimeMember": True},
    "payments": [{"amount": {"value": 19.99, "currency": "USD"}, "instrument": "CARD"}],
    "appointments": [
        {
            "appointmentId": "appt-1",
            "appointmentStatus": "ACTIVE",
            "appointmentTime": {"startTime": "2026-03-01T09:30:00Z", "durationInMinutes": 60},
        }
    ],
}


async def test_get_service_job(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "GET", payload={"payload": JOB})
    job = await client.service_jobs.get("job-1")

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceJobs/job-1"
    assert request.query == {}  # no marketplaceIds on this route
    check_headers(request, has_body=False)
    assert isinstance(job, ServiceJob)
    assert job.service_job_id == "job-1"
    assert job.service_job_status is ServiceJobStatus.NOT_SERVICED
    assert job.create_time == datetime(2026, 2, 1, 10, tzinfo=UTC)
    assert job.buyer is not None
    assert job.buyer.is_prime_member is True
    assert job.payments is not None
    assert job.payments[0].amount is not None
    assert job.payments[0].amount.value == Decimal("19.99")
    assert job.appointments is not None
    assert job.appointments[0].appointment_time is not None
    assert job.appointments[0].appointment_time.duration_in_minutes == 60


async def test_path_ids_are_percent_encoded_as_one_segment(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    sent = expect(mock_api, "GET", payload={"payload": JOB})
    await client.service_jobs.get("a/b c+%?#")
    assert only(sent).url.raw_path == "/service/v1/serviceJobs/a%2Fb%20c%2B%25%3F%23"


async def test_cancel_service_job(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "PUT", payload={})
    result = await client.service_jobs.cancel("job 1", reason_code="V1")

    request = only(sent)
    assert result is None
    assert request.url.raw_path == "/service/v1/serviceJobs/job%201/cancellations"
    assert request.query == {"cancellationReasonCode": "V1"}
    check_headers(request, has_body=False)


async def test_complete_service_job(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "PUT", body="")
    assert await client.service_jobs.complete("job-1") is None

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceJobs/job-1/completions"
    assert request.query == {}
    check_headers(request, has_body=False)


async def test_get_service_jobs_sends_every_filter(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    listing = {
        "payload": {
            "totalResultSize": 1,
            "nextPageToken": None,
            "previousPageToken": "prev+/=",
            "jobs": [JOB],
        }
    }
    sent = expect(mock_api, "GET", payload=listing)
    page = await client.service_jobs.list_page(
        service_order_ids=["123-1234567-1234567", "2345324"],
        product_order_ids=["111-2222222-3333333"],
        tracking_ids=["TRK-1", "TRK2"],
        statuses=[ServiceJobStatus.NOT_SERVICED, "CANCELLED"],
        created_after=datetime(2026, 1, 1, 10, 0, tzinfo=IST),
        created_before=datetime(2026, 2, 1, tzinfo=UTC),
        schedule_start_date=datetime(2026, 1, 5, tzinfo=UTC),
        schedule_end_date=datetime(2026, 1, 6, 0, 0, 0, 250000, tzinfo=UTC),
        asins=["B00EXAMPLE", "B00EXAMPL2"],
        required_skills=["mounting", "wiring"],
        store_ids=["store-1"],
        sort_field=SortField.JOB_DATE,
        sort_order="DESC",
        page_size=5,
    )

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceJobs"
    assert request.query == {
        "marketplaceIds": MARKETPLACE,
        "serviceOrderIds": "123-1234567-1234567,2345324",
        "productOrderIds": "111-2222222-3333333",
        "trackingIds": "TRK-1,TRK2",
        "serviceJobStatus": "NOT_SERVICED,CANCELLED",
        "createdAfter": "2026-01-01T04:30:00Z",
        "createdBefore": "2026-02-01T00:00:00Z",
        "scheduleStartDate": "2026-01-05T00:00:00Z",
        "scheduleEndDate": "2026-01-06T00:00:00.250Z",
        "asins": "B00EXAMPLE,B00EXAMPL2",
        "requiredSkills": "mounting,wiring",
        "storeIds": "store-1",
        "sortField": "JOB_DATE",
        "sortOrder": "DESC",
        "pageSize": "5",
    }
    check_headers(request, has_body=False)
    assert isinstance(page, JobListing)
    assert page.total_result_size == 1
    assert page.previous_page_token == "prev+/="
    assert page.jobs is not None
    assert page.jobs[0].service_job_id == "job-1"


async def test_get_service_jobs_last_updated_and_marketplace_override(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    sent = expect(mock_api, "GET", payload={"payload": {"jobs": []}})
    await client.service_jobs.list_page(
        last_updated_after=T0,
        last_updated_before=T0 + timedelta(hours=1),
        marketplace_id="A2EUQ1WTGCTBG2",
    )
    assert only(sent).query == {
        "marketplaceIds": "A2EUQ1WTGCTBG2",
        "lastUpdatedAfter": "2026-03-01T09:30:00Z",
        "lastUpdatedBefore": "2026-03-01T10:30:00Z",
        "pageSize": "20",
    }


# --- appointments --------------------------------------------------------------------


async def test_add_appointment(mock_api: aioresponses, client: ServicesClient) -> None:
    answer = {
        "appointmentId": "job-1_00b9d5f2",
        "warnings": [{"code": "RESOURCES_UNASSIGNED", "message": "none yet"}],
    }
    sent = expect(mock_api, "POST", payload=answer)
    result = await client.appointments.add(
        "job/1", start_time=datetime(2026, 3, 1, 15, 0, tzinfo=IST), duration_minutes=60
    )

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceJobs/job%2F1/appointments"
    assert request.query == {}
    assert request.json == {
        "appointmentTime": {"startTime": "2026-03-01T09:30:00Z", "durationInMinutes": 60}
    }
    check_headers(request, has_body=True)
    assert isinstance(result, AppointmentResult)
    assert result.appointment_id == "job-1_00b9d5f2"
    assert result.warnings == (Warning(code="RESOURCES_UNASSIGNED", message="none yet"),)


async def test_add_appointment_without_duration(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    sent = expect(mock_api, "POST", payload={"appointmentId": "a-12345"})
    await client.appointments.add("job-1", start_time=T0)
    assert only(sent).json == {"appointmentTime": {"startTime": "2026-03-01T09:30:00Z"}}


async def test_reschedule_appointment(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "POST", payload={"appointmentId": "appt_new_1"})
    result = await client.appointments.reschedule(
        "job-1", "appt 1", start_time=T0, reason_code="R1", duration_minutes=90
    )

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceJobs/job-1/appointments/appt%201"
    assert request.query == {}
    assert request.json == {
        "appointmentTime": {"startTime": "2026-03-01T09:30:00Z", "durationInMinutes": 90},
        "rescheduleReasonCode": "R1",
    }
    check_headers(request, has_body=True)
    assert result.appointment_id == "appt_new_1"
    assert result.warnings is None


async def test_assign_appointment_resources(mock_api: aioresponses, client: ServicesClient) -> None:
    answer = {"payload": {"warnings": [{"code": "RESOURCES_OVERBOOKED", "message": "busy"}]}}
    sent = expect(mock_api, "PUT", payload=answer)
    warnings = await client.appointments.assign_resources("job-1", "appt-1", ["tech-7", "t 8"])

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceJobs/job-1/appointments/appt-1/resources"
    assert request.query == {}
    assert request.json == {"resources": [{"resourceId": "tech-7"}, {"resourceId": "t 8"}]}
    check_headers(request, has_body=True)
    assert warnings == [Warning(code="RESOURCES_OVERBOOKED", message="busy")]


async def test_assign_appointment_resources_empty_answer(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    expect(mock_api, "PUT", payload={})
    assert await client.appointments.assign_resources("job-1", "appt-1", ["tech-7"]) == []


async def test_set_fulfillment_data(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "PUT", status=204, body='""')
    document = FulfillmentDocument(upload_destination_id="amzn1.tortuga.3.x", content_sha256="c2Q=")
    result = await client.appointments.set_fulfillment_data(
        "job-1",
        "appt-1",
        fulfillment_time=(T0, T0 + timedelta(hours=1)),
        resources=["tech-7"],
        documents=[document],
        estimated_arrival_time=(T0 - timedelta(minutes=30), T0),
    )

    request = only(sent)
    assert result is None
    assert request.url.raw_path == ("/service/v1/serviceJobs/job-1/appointments/appt-1/fulfillment")
    assert request.query == {}
    assert request.json == {
        "fulfillmentTime": {"startTime": "2026-03-01T09:30:00Z", "endTime": "2026-03-01T10:30:00Z"},
        "appointmentResources": [{"resourceId": "tech-7"}],
        "fulfillmentDocuments": [
            {"uploadDestinationId": "amzn1.tortuga.3.x", "contentSha256": "c2Q="}
        ],
        "estimatedArrivalTime": {
            "startTime": "2026-03-01T09:00:00Z",
            "endTime": "2026-03-01T09:30:00Z",
        },
    }
    check_headers(request, has_body=True)


SLOT_REPORT = {
    "payload": {
        "schedulingType": "REAL_TIME_SCHEDULING",
        "startTime": "2026-03-01T00:00:00Z",
        "endTime": "2026-03-02T00:00:00Z",
        "appointmentSlots": [
            {"startTime": "2026-03-01T09:00:00Z", "endTime": "2026-03-01T10:00:00Z", "capacity": 2},
            {"startTime": "2026-03-01T10:00:00Z", "endTime": "2026-03-01T11:00:00Z", "capacity": 0},
        ],
    }
}


async def test_slots_for_job(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "GET", payload=SLOT_REPORT)
    report = await client.appointments.slots_for_job(
        "job-1", start_time=T0, end_time=T0 + timedelta(days=7)
    )

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceJobs/job-1/appointmentSlots"
    assert request.query == {
        "marketplaceIds": MARKETPLACE,
        "startTime": "2026-03-01T09:30:00Z",
        "endTime": "2026-03-08T09:30:00Z",
    }
    check_headers(request, has_body=False)
    assert isinstance(report, AppointmentSlotReport)
    assert report.scheduling_type is SchedulingType.REAL_TIME_SCHEDULING
    assert report.appointment_slots is not None
    assert [s.capacity for s in report.appointment_slots] == [2, 0]


async def test_slots_for_job_without_window(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "GET", payload=SLOT_REPORT)
    await client.appointments.slots_for_job("job-1")
    assert only(sent).query == {"marketplaceIds": MARKETPLACE}


async def test_slots(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "GET", payload=SLOT_REPORT)
    report = await client.appointments.slots(
        asin="B00EXAMPLE",
        store_id="store 1",
        start_time=T0,
        end_time=T0 + timedelta(days=1),
    )

    request = only(sent)
    assert request.url.raw_path == "/service/v1/appointmentSlots"
    assert request.query == {
        "marketplaceIds": MARKETPLACE,
        "asin": "B00EXAMPLE",
        "storeId": "store 1",
        "startTime": "2026-03-01T09:30:00Z",
        "endTime": "2026-03-02T09:30:00Z",
    }
    check_headers(request, has_body=False)
    assert report.end_time == datetime(2026, 3, 2, tzinfo=UTC)


# --- schedules -----------------------------------------------------------------------


async def test_update_schedule(mock_api: aioresponses, client: ServicesClient) -> None:
    answer = {
        "payload": [
            {
                "availability": {
                    "startTime": "2026-03-01T09:30:00Z",
                    "endTime": "2026-03-01T17:30:00Z",
                },
                "warnings": [{"code": "ScheduleOverride", "message": "overridden"}],
            }
        ]
    }
    sent = expect(mock_api, "PUT", payload=answer)
    record = AvailabilityRecord(
        start_time=T0,
        end_time=T0 + timedelta(hours=8),
        recurrence=Recurrence(
            end_time=T0 + timedelta(days=30), days_of_week=[DayOfWeek.MONDAY, DayOfWeek.FRIDAY]
        ),
        capacity=2,
    )
    records = await client.schedules.update("res/1", [record])

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceResources/res%2F1/schedules"
    assert request.query == {"marketplaceIds": MARKETPLACE}
    assert request.json == {
        "schedules": [
            {
                "startTime": "2026-03-01T09:30:00Z",
                "endTime": "2026-03-01T17:30:00Z",
                "recurrence": {
                    "endTime": "2026-03-31T09:30:00Z",
                    "daysOfWeek": ["MONDAY", "FRIDAY"],
                },
                "capacity": 2,
            }
        ]
    }
    check_headers(request, has_body=True)
    assert len(records) == 1
    assert isinstance(records[0], UpdateScheduleRecord)
    assert records[0].warnings == (Warning(code="ScheduleOverride", message="overridden"),)


async def test_update_schedule_nothing_to_report(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    expect(mock_api, "PUT", payload={})
    record = AvailabilityRecord(start_time=T0, end_time=T0 + timedelta(hours=1))
    assert await client.schedules.update("res-1", [record]) == []


async def test_range_capacity(mock_api: aioresponses, client: ServicesClient) -> None:
    answer = {
        "resourceId": "res-1",
        "capacities": [
            {
                "capacityType": "AVAILABLE_CAPACITY",
                "slots": [
                    {
                        "startDateTime": "2026-03-01T09:30:00Z",
                        "endDateTime": "2026-03-01T10:30:00Z",
                        "capacity": 3,
                    }
                ],
            }
        ],
    }
    sent = expect(mock_api, "POST", payload=answer)
    pages = [
        page
        async for page in client.schedules.range_capacity(
            "res-1",
            start_time=T0,
            end_time=T0 + timedelta(days=1),
            capacity_types=[CapacityType.AVAILABLE_CAPACITY, "RESERVED_CAPACITY"],
        )
    ]

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceResources/res-1/capacity/range"
    assert request.query == {"marketplaceIds": MARKETPLACE}
    assert request.json == {
        "startDateTime": "2026-03-01T09:30:00Z",
        "endDateTime": "2026-03-02T09:30:00Z",
        "capacityTypes": ["AVAILABLE_CAPACITY", "RESERVED_CAPACITY"],
    }
    check_headers(request, has_body=True)
    assert len(pages) == 1
    assert isinstance(pages[0], RangeSlotCapacity)
    assert pages[0].capacities is not None
    assert pages[0].capacities[0].capacity_type is CapacityType.AVAILABLE_CAPACITY
    assert pages[0].capacities[0].slots is not None
    assert pages[0].capacities[0].slots[0].capacity == 3


async def test_fixed_capacity(mock_api: aioresponses, client: ServicesClient) -> None:
    answer = {
        "resourceId": "res-1",
        "slotDuration": 30,
        "capacities": [
            {"startDateTime": "2026-03-01T09:30:00Z", "scheduledCapacity": 4, "reservedCapacity": 1}
        ],
    }
    sent = expect(mock_api, "POST", payload=answer)
    pages = [
        page
        async for page in client.schedules.fixed_capacity(
            "res 1", start_time=T0, end_time=T0 + timedelta(hours=2), slot_duration=30
        )
    ]

    request = only(sent)
    assert request.url.raw_path == "/service/v1/serviceResources/res%201/capacity/fixed"
    assert request.query == {"marketplaceIds": MARKETPLACE}
    assert request.json == {
        "startDateTime": "2026-03-01T09:30:00Z",
        "endDateTime": "2026-03-01T11:30:00Z",
        "slotDuration": 30,
    }
    check_headers(request, has_body=True)
    assert len(pages) == 1
    assert isinstance(pages[0], FixedSlotCapacity)
    assert pages[0].slot_duration == 30
    assert pages[0].capacities is not None
    assert pages[0].capacities[0].scheduled_capacity == 4
    assert pages[0].capacities[0].available_capacity is None


# --- reservations --------------------------------------------------------------------

RESERVATION = Reservation(
    type=ReservationType.BREAK,
    availability=AvailabilityRecord(start_time=T0, end_time=T0 + timedelta(minutes=30)),
)
RESERVATION_JSON = {
    "type": "BREAK",
    "availability": {"startTime": "2026-03-01T09:30:00Z", "endTime": "2026-03-01T10:00:00Z"},
}
RESERVATION_ANSWER = {
    "payload": {
        "reservation": {
            "reservationId": "457",
            "type": "APPOINTMENT",
            "availability": {
                "startTime": "2026-03-01T09:30:00Z",
                "endTime": "2026-03-01T10:00:00Z",
            },
        }
    }
}


async def test_create_reservation(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "POST", payload=RESERVATION_ANSWER)
    record = await client.reservations.create("res-1", RESERVATION)

    request = only(sent)
    assert request.url.raw_path == "/service/v1/reservation"
    assert request.query == {"marketplaceIds": MARKETPLACE}
    assert request.json == {"resourceId": "res-1", "reservation": RESERVATION_JSON}
    check_headers(request, has_body=True)
    assert isinstance(record, CreateReservationRecord)
    assert record.reservation is not None
    assert record.reservation.reservation_id == "457"
    assert record.reservation.type is ReservationType.APPOINTMENT


async def test_update_reservation(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "PUT", payload=RESERVATION_ANSWER)
    record = await client.reservations.update("457/x", "res-1", RESERVATION)

    request = only(sent)
    assert request.url.raw_path == "/service/v1/reservation/457%2Fx"
    assert request.query == {"marketplaceIds": MARKETPLACE}
    assert request.json == {"resourceId": "res-1", "reservation": RESERVATION_JSON}
    check_headers(request, has_body=True)
    assert isinstance(record, UpdateReservationRecord)
    assert record.reservation is not None
    assert record.reservation.availability.end_time == T0 + timedelta(minutes=30)


async def test_cancel_reservation(mock_api: aioresponses, client: ServicesClient) -> None:
    sent = expect(mock_api, "DELETE", status=204, payload={})
    assert await client.reservations.cancel("457") is None

    request = only(sent)
    assert request.url.raw_path == "/service/v1/reservation/457"
    assert request.query == {"marketplaceIds": MARKETPLACE}
    check_headers(request, has_body=False)


# --- documents -----------------------------------------------------------------------


async def test_create_upload_destination(mock_api: aioresponses, client: ServicesClient) -> None:
    answer = {
        "payload": {
            "uploadDestinationId": "amzn1.tortuga.3.abc<->amzn1.tortuga.1.token.a+b/c=",
            "url": "https://s3.test/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "encryptionDetails": {
                "standard": "AES",
                "initializationVector": "paPlpo1iBBLmyOhU0mIo5g==",
                "key": "PDuDJm2l+0ydObrRpS48tB+t2qbtOmWhSEOiFWKnH2k=",
            },
        }
    }
    sent = expect(mock_api, "POST", payload=answer)
    destination = await client.documents.create_upload_destination(
        content_type="PDF", content_length=1386437, content_md5="97WrSKv9ffHkDopCdB32mw=="
    )

    request = only(sent)
    assert request.url.raw_path == "/service/v1/documents"
    assert request.query == {}  # no marketplaceIds on this route
    assert request.json == {
        "contentType": "PDF",
        "contentLength": 1386437,
        "contentMD5": "97WrSKv9ffHkDopCdB32mw==",
    }
    check_headers(request, has_body=True)
    assert isinstance(destination, ServiceDocumentUploadDestination)
    assert destination.upload_destination_id.endswith("token.a+b/c=")
    assert destination.encryption_details.key.startswith("PDuDJm2l")
    assert destination.headers is None


# --- headers -------------------------------------------------------------------------


async def test_user_agent_with_application_prefix(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    client = make_client(user_agent="  MyShop/2.1 (Language=Python) ")
    sent = expect(mock_api, "GET", payload={"payload": JOB})
    await client.service_jobs.get("job-1")
    assert only(sent).headers["User-Agent"] == f"MyShop/2.1 (Language=Python) {USER_AGENT}"


async def test_user_agent_never_exceeds_500_characters(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    lwa_ok(mock_api)
    client = make_client(user_agent="MyShop/2.1 " + "x" * 600)
    sent = expect(mock_api, "GET", payload={"payload": JOB})
    await client.service_jobs.get("job-1")
    agent = only(sent).headers["User-Agent"]
    assert len(agent) <= 500
    assert agent.startswith("MyShop/2.1 ")  # the application keeps its name
    assert agent.endswith(USER_AGENT)  # and ours is whole


def test_user_agent_refuses_line_breaks(make_client: ClientFactory) -> None:
    with pytest.raises(ValueError, match="user_agent"):
        make_client(user_agent="MyShop/1.0\r\nX-Injected: 1")


def test_user_agent_format() -> None:
    assert re.fullmatch(
        r"spapi-services/\d+\.\d+\.\d+\S* \(Language=Python/3\.\d+; Platform=\w+\)", USER_AGENT
    )
