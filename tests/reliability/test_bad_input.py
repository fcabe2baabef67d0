"""Bad arguments to every public method fail at once, by name, and nothing is sent.

Each case calls one method the way a hurried caller would get it wrong: the wrong type,
an empty or over-long identifier, a naive datetime, a number out of range, filters that
contradict each other.  The call must raise ``ValueError`` or ``TypeError`` whose message
names the argument (by its Python name, with the index or field path inside it), and the
emulator's request log must stay empty: not an API request, not even a token exchange.
Paginating methods must refuse at the call, not at the first page.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spapi_services import ServicesClient
from spapi_services.models import (
    AvailabilityRecord,
    FulfillmentDocument,
    Recurrence,
    Reservation,
    ReservationType,
    ServiceJob,
)

from ._scenarios import NOW
from .conftest import MakeClient, StartEmulator

LATER = NOW + timedelta(days=2)
NAIVE = datetime(2026, 6, 20, 10, 0)
LONG_ID = "x" * 101
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _record(**changes: Any) -> AvailabilityRecord:
    fields: dict[str, Any] = {"start_time": LATER, "end_time": LATER + timedelta(hours=8)}
    fields.update(changes)
    return AvailabilityRecord(**fields)


def _reservation(**changes: Any) -> Reservation:
    fields: dict[str, Any] = {"type": ReservationType.BREAK, "availability": _record()}
    fields.update(changes)
    return Reservation(**fields)


Call = Callable[[ServicesClient], Any]

# (id, the call, what the message must name)
CASES: list[tuple[str, Call, str]] = [
    # --- service_jobs.get / cancel / complete ---
    ("get-none", lambda c: c.service_jobs.get(None), "service_job_id"),
    ("get-int", lambda c: c.service_jobs.get(12345), "service_job_id"),
    ("get-bytes", lambda c: c.service_jobs.get(b"job-1"), "service_job_id"),
    ("get-empty", lambda c: c.service_jobs.get(""), "service_job_id"),
    ("get-long", lambda c: c.service_jobs.get(LONG_ID), "service_job_id"),
    ("get-dotdot", lambda c: c.service_jobs.get(".."), "service_job_id"),
    ("cancel-no-reason", lambda c: c.service_jobs.cancel("j", reason_code=""), "reason_code"),
    ("cancel-lowercase", lambda c: c.service_jobs.cancel("j", reason_code="v1"), "reason_code"),
    ("cancel-reason-int", lambda c: c.service_jobs.cancel("j", reason_code=1), "reason_code"),
    ("cancel-long-reason", lambda c: c.service_jobs.cancel("j", reason_code="V" * 101), "reason"),
    ("cancel-empty-id", lambda c: c.service_jobs.cancel("", reason_code="V1"), "service_job_id"),
    ("complete-long", lambda c: c.service_jobs.complete(LONG_ID), "service_job_id"),
    ("complete-list", lambda c: c.service_jobs.complete(["j"]), "service_job_id"),
    # ... a job (anything with .service_job_id) is taken, but not one without an id
    ("get-job-no-id", lambda c: c.service_jobs.get(ServiceJob()), "service_job_id"),
    (
        "cancel-job-empty-id",
        lambda c: c.service_jobs.cancel(ServiceJob(service_job_id=""), reason_code="V1"),
        "service_job_id",
    ),
    ("complete-job-json", lambda c: c.service_jobs.complete({"serviceJobId": "j"}), "service_job"),
    # --- service_jobs.list (checked at the call) and list_page ---
    ("list-no-since", lambda c: c.service_jobs.list(), "created_after"),
    (
        "list-both-sinces",
        lambda c: c.service_jobs.list(created_after=NOW, last_updated_after=NOW),
        "last_updated_after",
    ),
    ("list-naive", lambda c: c.service_jobs.list(created_after=NAIVE), "created_after"),
    ("list-text-date", lambda c: c.service_jobs.list(created_after="2026-06-01"), "created_after"),
    (
        "list-before-after",
        lambda c: c.service_jobs.list(created_after=NOW, created_before=NOW - timedelta(days=1)),
        "created_before",
    ),
    (
        "list-naive-before",
        lambda c: c.service_jobs.list(created_after=NOW, created_before=NAIVE),
        "created_before",
    ),
    (
        "list-schedule-backwards",
        lambda c: c.service_jobs.list(
            created_after=NOW, schedule_start_date=LATER, schedule_end_date=NOW
        ),
        "schedule_end_date",
    ),
    ("list-page-0", lambda c: c.service_jobs.list(created_after=NOW, page_size=0), "page_size"),
    ("list-page-21", lambda c: c.service_jobs.list(created_after=NOW, page_size=21), "page_size"),
    ("list-page-str", lambda c: c.service_jobs.list(created_after=NOW, page_size="5"), "page_size"),
    ("list-page-bool", lambda c: c.service_jobs.list(created_after=NOW, page_size=True), "page"),
    (
        "list-status-unknown",
        lambda c: c.service_jobs.list(created_after=NOW, statuses=["DONE"]),
        "statuses[0]",
    ),
    (
        "list-status-str",
        lambda c: c.service_jobs.list(created_after=NOW, statuses="COMPLETED"),
        "statuses",
    ),
    (
        "list-status-empty",
        lambda c: c.service_jobs.list(created_after=NOW, statuses=[]),
        "statuses",
    ),
    (
        "list-order-pattern",
        lambda c: c.service_jobs.list(created_after=NOW, service_order_ids=["12-ab"]),
        "service_order_ids[0]",
    ),
    (
        "list-orders-21",
        lambda c: c.service_jobs.list(
            created_after=NOW, service_order_ids=[str(i) for i in range(21)]
        ),
        "service_order_ids",
    ),
    (
        "list-asin-short",
        lambda c: c.service_jobs.list(created_after=NOW, asins=["B01"]),
        "asins[0]",
    ),
    (
        "list-tracking-pattern",
        lambda c: c.service_jobs.list(created_after=NOW, tracking_ids=["1Z 99"]),
        "tracking_ids[0]",
    ),
    (
        "list-store-empty",
        lambda c: c.service_jobs.list(created_after=NOW, store_ids=[""]),
        "store_ids[0]",
    ),
    (
        "list-sort-field",
        lambda c: c.service_jobs.list(created_after=NOW, sort_field="NAME"),
        "sort_field",
    ),
    (
        "list-sort-order",
        lambda c: c.service_jobs.list(created_after=NOW, sort_order=1),
        "sort_order",
    ),
    ("list-max-items", lambda c: c.service_jobs.list(created_after=NOW, max_items=-1), "max_items"),
    ("list-token-empty", lambda c: c.service_jobs.list(created_after=NOW, page_token=""), "token"),
    (
        "list-marketplace-empty",
        lambda c: c.service_jobs.list(created_after=NOW, marketplace_id=""),
        "marketplace_id",
    ),
    (
        "list-unknown-filter",
        lambda c: c.service_jobs.list(created_after=NOW, status=["COMPLETED"]),
        "status",
    ),
    (
        "list-page-naive",
        lambda c: c.service_jobs.list_page(last_updated_after=NAIVE),
        "last_updated_after",
    ),
    (
        "list-page-unknown",
        lambda c: c.service_jobs.list_page(created_after=NOW, createdAfter=NOW),
        "createdAfter",
    ),
    # --- appointments ---
    ("add-naive", lambda c: c.appointments.add("j", start_time=NAIVE), "start_time"),
    ("add-text-time", lambda c: c.appointments.add("j", start_time="tomorrow"), "start_time"),
    (
        "add-zero-minutes",
        lambda c: c.appointments.add("j", start_time=LATER, duration_minutes=0),
        "duration_minutes",
    ),
    (
        "add-float-minutes",
        lambda c: c.appointments.add("j", start_time=LATER, duration_minutes=30.5),
        "duration_minutes",
    ),
    (
        "add-bool-minutes",
        lambda c: c.appointments.add("j", start_time=LATER, duration_minutes=True),
        "duration_minutes",
    ),
    ("add-empty-job", lambda c: c.appointments.add("", start_time=LATER), "service_job_id"),
    (
        "reschedule-empty-appointment",
        lambda c: c.appointments.reschedule("j", "", start_time=LATER, reason_code="R1"),
        "appointment_id",
    ),
    (
        "reschedule-no-reason",
        lambda c: c.appointments.reschedule("j", "a", start_time=LATER, reason_code=""),
        "reason_code",
    ),
    (
        "reschedule-naive",
        lambda c: c.appointments.reschedule("j", "a", start_time=NAIVE, reason_code="R1"),
        "start_time",
    ),
    ("assign-none", lambda c: c.appointments.assign_resources("j", "a", []), "resource_ids"),
    ("assign-str", lambda c: c.appointments.assign_resources("j", "a", "T1"), "resource_ids"),
    (
        "assign-twice",
        lambda c: c.appointments.assign_resources("j", "a", ["T1", "T1"]),
        "resource_ids[1]",
    ),
    (
        "assign-empty-id",
        lambda c: c.appointments.assign_resources("j", "a", [""]),
        "resource_ids[0]",
    ),
    ("assign-int-id", lambda c: c.appointments.assign_resources("j", "a", [7]), "resource_ids[0]"),
    (
        "assign-long-appointment",
        lambda c: c.appointments.assign_resources("j", LONG_ID, ["T1"]),
        "appointment_id",
    ),
    (
        "fulfil-nothing",
        lambda c: c.appointments.set_fulfillment_data("j", "a"),
        "fulfillment_time",
    ),
    (
        "fulfil-naive",
        lambda c: c.appointments.set_fulfillment_data("j", "a", fulfillment_time=(NAIVE, NAIVE)),
        "fulfillment_time[0]",
    ),
    (
        "fulfil-backwards",
        lambda c: c.appointments.set_fulfillment_data("j", "a", fulfillment_time=(LATER, NOW)),
        "fulfillment_time",
    ),
    (
        "fulfil-text",
        lambda c: c.appointments.set_fulfillment_data("j", "a", fulfillment_time="yesterday"),
        "fulfillment_time",
    ),
    (
        "fulfil-arrival-backwards",
        lambda c: c.appointments.set_fulfillment_data(
            "j", "a", estimated_arrival_time=(LATER, NOW)
        ),
        "estimated_arrival_time",
    ),
    (
        "fulfil-no-resources",
        lambda c: c.appointments.set_fulfillment_data("j", "a", resources=[]),
        "resources",
    ),
    (
        "fulfil-document-str",
        lambda c: c.appointments.set_fulfillment_data("j", "a", documents=["doc-1"]),
        "documents[0]",
    ),
    (
        "fulfil-document-hex-sha",
        lambda c: c.appointments.set_fulfillment_data(
            "j",
            "a",
            documents=[FulfillmentDocument(upload_destination_id="u", content_sha256=5)],  # type: ignore[arg-type]
        ),
        "content_sha256",
    ),
    (
        "job-slots-half-window",
        lambda c: c.appointments.slots_for_job("j", start_time=LATER),
        "start_time / end_time",
    ),
    (
        "job-slots-91-days",
        lambda c: c.appointments.slots_for_job(
            "j", start_time=NOW, end_time=NOW + timedelta(days=91)
        ),
        "end_time",
    ),
    (
        "job-slots-backwards",
        lambda c: c.appointments.slots_for_job("j", start_time=LATER, end_time=NOW),
        "end_time",
    ),
    (
        "job-slots-naive",
        lambda c: c.appointments.slots_for_job("j", start_time=NAIVE, end_time=LATER),
        "start_time",
    ),
    ("slots-empty-asin", lambda c: c.appointments.slots(asin="", store_id="s"), "asin"),
    ("slots-no-store", lambda c: c.appointments.slots(asin="B0", store_id=None), "store_id"),
    ("slots-long-store", lambda c: c.appointments.slots(asin="B0", store_id=LONG_ID), "store_id"),
    # --- schedules ---
    ("schedule-none", lambda c: c.schedules.update("r", []), "schedules"),
    ("schedule-dict", lambda c: c.schedules.update("r", [{"startTime": "x"}]), "schedules[0]"),
    (
        "schedule-naive",
        lambda c: c.schedules.update("r", [_record(start_time=NAIVE)]),
        "schedules[0].start_time",
    ),
    (
        "schedule-capacity-0",
        lambda c: c.schedules.update("r", [_record(), _record(capacity=0)]),
        "schedules[1].capacity",
    ),
    (
        "schedule-day-32",
        lambda c: c.schedules.update(
            "r", [_record(recurrence=Recurrence(end_time=LATER, days_of_month=[1, 32]))]
        ),
        "schedules[0].recurrence.days_of_month[1]",
    ),
    ("schedule-empty-resource", lambda c: c.schedules.update("", [_record()]), "resource_id"),
    (
        "range-backwards",
        lambda c: c.schedules.range_capacity("r", start_time=LATER, end_time=NOW),
        "end_time",
    ),
    (
        "range-naive",
        lambda c: c.schedules.range_capacity("r", start_time=NAIVE, end_time=LATER),
        "start_time",
    ),
    (
        "range-unknown-type",
        lambda c: c.schedules.range_capacity(
            "r", start_time=NOW, end_time=LATER, capacity_types=["FREE"]
        ),
        "capacity_types[0]",
    ),
    (
        "range-no-types",
        lambda c: c.schedules.range_capacity(
            "r", start_time=NOW, end_time=LATER, capacity_types=[]
        ),
        "capacity_types",
    ),
    (
        "range-empty-token",
        lambda c: c.schedules.range_capacity("r", start_time=NOW, end_time=LATER, page_token=""),
        "page_token",
    ),
    (
        "fixed-slot-7",
        lambda c: c.schedules.fixed_capacity("r", start_time=NOW, end_time=LATER, slot_duration=7),
        "slot_duration",
    ),
    (
        "fixed-slot-400",
        lambda c: c.schedules.fixed_capacity(
            "r", start_time=NOW, end_time=LATER, slot_duration=400
        ),
        "slot_duration",
    ),
    (
        "fixed-slot-text",
        lambda c: c.schedules.fixed_capacity(
            "r", start_time=NOW, end_time=LATER, slot_duration="30"
        ),
        "slot_duration",
    ),
    (
        "fixed-long-resource",
        lambda c: c.schedules.fixed_capacity(LONG_ID, start_time=NOW, end_time=LATER),
        "resource_id",
    ),
    # --- reservations ---
    ("reserve-dict", lambda c: c.reservations.create("r", {"type": "BREAK"}), "reservation"),
    (
        "reserve-naive",
        lambda c: c.reservations.create("r", _reservation(availability=_record(end_time=NAIVE))),
        "reservation.availability.end_time",
    ),
    (
        "reserve-unknown-type",
        lambda c: c.reservations.create("r", _reservation(type="NAP")),
        "reservation.type",
    ),
    ("reserve-empty-resource", lambda c: c.reservations.create("", _reservation()), "resource_id"),
    (
        "re-reserve-empty-id",
        lambda c: c.reservations.update("", "r", _reservation()),
        "reservation_id",
    ),
    (
        "re-reserve-capacity",
        lambda c: c.reservations.update("1", "r", _reservation(availability=_record(capacity=-1))),
        "reservation.availability.capacity",
    ),
    ("unreserve-none", lambda c: c.reservations.cancel(None), "reservation_id"),
    ("unreserve-long", lambda c: c.reservations.cancel(LONG_ID), "reservation_id"),
    # --- documents ---
    (
        "destination-docx",
        lambda c: c.documents.create_upload_destination(content_type="DOCX", content_length=10),
        "content_type",
    ),
    (
        "destination-0-bytes",
        lambda c: c.documents.create_upload_destination(content_type="PDF", content_length=0),
        "content_length",
    ),
    (
        "destination-too-big",
        lambda c: c.documents.create_upload_destination(
            content_type="PDF", content_length=5 * 1024 * 1024 + 1
        ),
        "content_length",
    ),
    (
        "destination-length-text",
        lambda c: c.documents.create_upload_destination(content_type="PDF", content_length="10"),
        "content_length",
    ),
    (
        "destination-hex-md5",
        lambda c: c.documents.create_upload_destination(
            content_type="PDF", content_length=10, content_md5="9e107d9d372bb6826bd81d3542a419d6"
        ),
        "content_md5",
    ),
    ("upload-empty", lambda c: c.documents.upload(b""), "document"),
    ("upload-number", lambda c: c.documents.upload(12345), "document source"),
    ("upload-too-big", lambda c: c.documents.upload(b"%PDF" + b"0" * 5 * 1024 * 1024), "document"),
    ("upload-no-type", lambda c: c.documents.upload(b"plain text"), "content_type"),
    ("upload-docx", lambda c: c.documents.upload(PNG, content_type="DOCX"), "content_type"),
    ("upload-encrypt-text", lambda c: c.documents.upload(PNG, encrypt="yes"), "encrypt"),
    # The first hour's: what a new user gets wrong.
    (
        "fulfil-future",  # the booked slot, not the visit that happened
        lambda c: c.appointments.set_fulfillment_data(
            "j", "a", fulfillment_time=(_now() + HOUR, _now() + 2 * HOUR)
        ),
        "fulfillment_time.start_time",
    ),
    (
        "job-slots-lowercase-marketplace",
        lambda c: c.appointments.slots_for_job("j", marketplace_id="atvpdkikx0der"),
        "marketplace_id",
    ),
    (
        "list-country-marketplace",
        lambda c: c.service_jobs.list(created_after=NOW, marketplace_id="US"),
        "marketplace_id",
    ),
    (
        "re-short-marketplace",
        lambda c: c.reservations.update("rid", "r", _reservation(), marketplace_id="XYZ"),
        "marketplace_id",
    ),
    (
        "assign-dict-resource",
        lambda c: c.appointments.assign_resources("j", "a", [{"resourceId": "T1"}]),
        "resource_ids[0]",
    ),
    (
        "range-record-without-id",
        lambda c: c.schedules.range_capacity(object(), start_time=NOW, end_time=LATER),
        "resource_id",
    ),
    ("upload-webp", lambda c: c.documents.upload(PNG, content_type="image/webp"), "content_type"),
]


def _now() -> datetime:
    """This machine's clock, which a fulfilment time must not run ahead of."""
    return datetime.now(UTC)


def test_every_public_method_has_bad_input_cases() -> None:
    covered = {case_id.split("-")[0] for case_id, _, _ in CASES}
    assert covered >= {
        "get", "cancel", "complete", "list", "add", "reschedule", "assign", "fulfil",
        "job", "slots", "schedule", "range", "fixed", "reserve", "re", "unreserve",
        "destination", "upload",
    }  # fmt: skip


async def _make(call: Call, client: ServicesClient) -> None:
    result = call(client)  # a paginator must refuse here, at the call
    if not inspect.isawaitable(result):
        raise AssertionError(f"{result!r} accepted its arguments")
    await result


@pytest.mark.parametrize(("call", "name"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_input_fails_by_name_before_anything_is_sent(
    call: Call, name: str, start_emulator: StartEmulator, make_client: MakeClient
) -> None:
    emu = await start_emulator(jobs=1)
    client = make_client(emu)
    with pytest.raises((ValueError, TypeError)) as caught:
        await _make(call, client)
    assert name in str(caught.value)
    assert emu.requests == []
    assert emu.lwa_exchanges == 0


# --- a sweep: every argument of every method, given each kind of wrong value ---------------

HOUR = timedelta(hours=1)
US = "ATVPDKIKX0DER"

#: A call of each public method that is valid in every argument.
VALID: dict[str, dict[str, Any]] = {
    "service_jobs.get": {"service_job_id": "j"},
    "service_jobs.cancel": {"service_job_id": "j", "reason_code": "V1"},
    "service_jobs.complete": {"service_job_id": "j"},
    "service_jobs.list": {
        "created_after": NOW,
        "created_before": LATER,
        "statuses": ["COMPLETED"],
        "asins": ["B000000001"],
        "store_ids": ["s"],
        "sort_field": "JOB_DATE",
        "sort_order": "ASC",
        "page_size": 5,
        "max_items": 10,
        "page_token": "t",
        "marketplace_id": US,
    },
    "service_jobs.changes": {
        "since": NOW,
        "interval": 5.0,
        "overlap": timedelta(minutes=2),
        "marketplace_ids": [US],
    },
    "service_jobs.list_page": {
        "last_updated_after": NOW,
        "service_order_ids": ["123-45"],
        "page_size": 5,
        "page_token": "t",
        "marketplace_id": US,
    },
    "appointments.add": {"service_job_id": "j", "start_time": LATER, "duration_minutes": 60},
    "appointments.reschedule": {
        "service_job_id": "j",
        "appointment_id": "a",
        "start_time": LATER,
        "reason_code": "R1",
        "duration_minutes": 60,
    },
    "appointments.assign_resources": {
        "service_job_id": "j",
        "appointment_id": "a",
        "resource_ids": ["T1"],
    },
    "appointments.set_fulfillment_data": {
        "service_job_id": "j",
        "appointment_id": "a",
        "fulfillment_time": (NOW - 2 * HOUR, NOW - HOUR),
        "resources": ["T1"],
        "estimated_arrival_time": (NOW - 3 * HOUR, NOW - 2 * HOUR),
    },
    "appointments.slots_for_job": {
        "service_job_id": "j",
        "start_time": NOW,
        "end_time": LATER,
        "marketplace_id": US,
    },
    "appointments.slots": {
        "asin": "B0",
        "store_id": "s",
        "start_time": NOW,
        "end_time": LATER,
        "marketplace_id": US,
    },
    "schedules.update": {"resource_id": "r", "schedules": [_record()], "marketplace_id": US},
    "schedules.range_capacity": {
        "resource_id": "r",
        "start_time": NOW,
        "end_time": LATER,
        "capacity_types": ["SCHEDULED_CAPACITY"],
        "marketplace_id": US,
        "page_token": "t",
    },
    "schedules.fixed_capacity": {
        "resource_id": "r",
        "start_time": NOW,
        "end_time": LATER,
        "slot_duration": 30,
        "capacity_types": ["AVAILABLE_CAPACITY"],
        "marketplace_id": US,
    },
    "reservations.create": {
        "resource_id": "r",
        "reservation": _reservation(),
        "marketplace_id": US,
    },
    "reservations.update": {
        "reservation_id": "1",
        "resource_id": "r",
        "reservation": _reservation(),
        "marketplace_id": US,
    },
    "reservations.cancel": {"reservation_id": "1", "marketplace_id": US},
    "documents.create_upload_destination": {
        "content_type": "PDF",
        "content_length": 10,
        "content_md5": "97WrSKv9ffHkDopCdB32mw==",
    },
    "documents.upload": {"source": PNG, "content_type": "PNG", "encrypt": True},
}

_ANY = [object(), 1.5, {"a": "b"}]
#: Wrong values by the kind of argument (never one the argument would take).
WRONG: dict[str, list[Any]] = {
    "id": [None, 7, True, b"j", ["j"], "", LONG_ID, *_ANY],
    "optional id": [7, True, b"j", ["j"], "", *_ANY],
    "text": [None, 7, True, b"x", ["x"], "", *_ANY],
    "time": [None, NAIVE, "2026-06-17T12:00:00Z", 1_750_000_000, NAIVE.date(), True, *_ANY],
    "optional time": [NAIVE, "2026-06-17T12:00:00Z", 1_750_000_000, NAIVE.date(), *_ANY],
    "count": ["5", 5.0, True, -1, *_ANY],
    "ids": ["T1", b"T1", 7, [7], [None], [""], {"T1": "x"}, *_ANY],
    "pair": ["T1", (NOW,), (NOW, "later"), [NOW, LATER, LATER], 7, *_ANY],
    "enum": [7, True, "NOT_A_VALUE", b"PDF", *_ANY],
    "model list": [[{"startTime": "x"}], "x", 7, [], [None], *_ANY],
    "model": [{"type": "BREAK"}, "x", 7, None, *_ANY],
    "flag": ["yes", 1, None, *_ANY],
    "source": [7, None, "", ["x"], *_ANY],
    # None means the default for these two; 1.5 is a good interval.
    "seconds": ["5", True, 0, -1, float("inf"), float("nan"), object(), {"a": "b"}],
    "duration": [60, "2m", timedelta(seconds=-1), timedelta(days=2), 1.5, object()],
}
KINDS: dict[str, str] = {
    "service_job_id": "id",
    "appointment_id": "id",
    "resource_id": "id",
    "reservation_id": "id",
    "store_id": "id",
    "asin": "text",
    "reason_code": "text",
    "marketplace_id": "optional id",
    "page_token": "optional id",
    "content_md5": "optional id",
    "start_time": "time",
    "end_time": "time",
    "created_after": "time",
    "last_updated_after": "time",
    "created_before": "optional time",
    "since": "optional time",
    "interval": "seconds",
    "overlap": "duration",
    "marketplace_ids": "ids",
    "duration_minutes": "count",
    "page_size": "count",
    "max_items": "count",
    "slot_duration": "count",
    "content_length": "count",
    "resource_ids": "ids",
    "resources": "ids",
    "statuses": "ids",
    "asins": "ids",
    "store_ids": "ids",
    "service_order_ids": "ids",
    "capacity_types": "ids",
    "fulfillment_time": "pair",
    "estimated_arrival_time": "pair",
    "sort_field": "enum",
    "sort_order": "enum",
    "content_type": "enum",
    "schedules": "model list",
    "reservation": "model",
    "encrypt": "flag",
    "source": "source",
}
#: Where a message names an argument by another word.
ALIASES = {"source": "document", "start_time": "start_time", "end_time": "end_time"}
#: (method, argument, value) that are refused under another argument's name, with why.
OTHER_NAME = {
    # Half a window is refused as a pair: "start_time / end_time: give both or neither".
    ("appointments.slots_for_job", "start_time", None): "start_time / end_time",
    ("appointments.slots_for_job", "end_time", None): "start_time / end_time",
    ("appointments.slots", "start_time", None): "start_time / end_time",
    ("appointments.slots", "end_time", None): "start_time / end_time",
    # Neither "since" given: the message names both.
    ("service_jobs.list", "created_after", None): "created_after / last_updated_after",
    ("service_jobs.list_page", "last_updated_after", None): "created_after / last_updated_after",
}


def _sweep() -> list[Any]:
    cases = []
    for method, valid in VALID.items():
        for argument in valid:
            for index, value in enumerate(WRONG[KINDS[argument]]):
                case_id = f"{method}-{argument}-{index}"
                cases.append(pytest.param(method, argument, value, id=case_id))
    return cases


def test_the_sweep_covers_every_public_method() -> None:
    public = {
        f"{resource}.{name}"
        for resource in ("service_jobs", "appointments", "schedules", "reservations", "documents")
        for name in dir(getattr(ServicesClient, resource).func(None).__class__)
        if not name.startswith("_")
    }
    assert public == set(VALID)


async def test_the_valid_calls_are_valid(
    start_emulator: StartEmulator, make_client: MakeClient
) -> None:
    # Each baseline call gets past the checks (it is then refused by the API, or not: the
    # emulator knows none of these ids).  So a sweep case that raises is about its value.
    emu = await start_emulator(jobs=1)
    client = make_client(emu, retry=None)
    for method, valid in VALID.items():
        resource, name = method.split(".")
        result = getattr(getattr(client, resource), name)(**valid)
        if inspect.isawaitable(result):
            try:
                await result
            except (ValueError, TypeError) as exc:
                raise AssertionError(f"{method}: {exc}") from exc
            except Exception:
                pass
    assert emu.requests


@pytest.mark.parametrize(("method", "argument", "value"), _sweep())
async def test_every_argument_refuses_wrong_values(
    method: str,
    argument: str,
    value: Any,
    start_emulator: StartEmulator,
    make_client: MakeClient,
) -> None:
    emu = await start_emulator(jobs=1)
    client = make_client(emu)
    resource, name = method.split(".")
    kwargs = {**VALID[method], argument: value}
    with pytest.raises((ValueError, TypeError)) as caught:
        await _make(lambda c: getattr(getattr(c, resource), name)(**kwargs), client)
    expected = ALIASES.get(argument, argument)
    if value is None:
        expected = OTHER_NAME.get((method, argument, value), expected)
    assert expected in str(caught.value)
    assert emu.requests == []


async def test_a_missing_file_is_file_not_found_before_anything_is_sent(
    start_emulator: StartEmulator, make_client: MakeClient, tmp_path: Any
) -> None:
    # Not a ValueError: Python's own exception for it, as open() would raise.
    emu = await start_emulator(jobs=1)
    client = make_client(emu)
    with pytest.raises(FileNotFoundError, match="document source"):
        await client.documents.upload(tmp_path / "proof.pdf")
    assert emu.requests == []
