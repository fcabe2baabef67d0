"""Bad arguments to the other resources: a ValueError or TypeError naming the argument,
raised before anything is sent."""

from __future__ import annotations

import re
import warnings
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from aioresponses import aioresponses

from spapi_services import (
    LwaCredentials,
    Region,
    ServicesClient,
    UnknownMarketplaceWarning,
)
from spapi_services._env import ENVIRONMENT
from spapi_services._marketplaces import MARKETPLACES
from spapi_services._upload import check_content_type
from spapi_services._validation import check_id
from spapi_services.models import (
    AppointmentResult,
    AvailabilityRecord,
    ContentType,
    Recurrence,
    Reservation,
    ReservationType,
    ServiceJob,
    Technician,
)
from spapi_services.resources.appointments import FUTURE_ALLOWANCE
from spapi_services.resources.documents import Documents

from ._helpers import ClientFactory, expect, lwa_ok

US = "ATVPDKIKX0DER"

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
NAIVE = datetime(2026, 3, 1, 9, 30)
HOUR = timedelta(hours=1)
RECORD = AvailabilityRecord(start_time=T0, end_time=T0 + HOUR)
RESERVATION = Reservation(type=ReservationType.BREAK, availability=RECORD)

Call = Callable[[ServicesClient], Awaitable[Any]]


async def _pages(iterator: Any) -> list[Any]:
    return [page async for page in iterator]


CASES: list[tuple[str, Call, type[Exception], str]] = [
    ("empty job id", lambda c: c.service_jobs.get(""), ValueError, "service_job_id"),
    ("long job id", lambda c: c.service_jobs.get("x" * 101), ValueError, "service_job_id"),
    ("job id not str", lambda c: c.service_jobs.get(12), TypeError, "service_job_id"),
    ("dot-dot job id", lambda c: c.service_jobs.get(".."), ValueError, "service_job_id"),
    ("dot job id", lambda c: c.service_jobs.complete("."), ValueError, "service_job_id"),
    (
        "dot-dot appointment id",
        lambda c: c.appointments.assign_resources("job", "..", ["t"]),
        ValueError,
        "appointment_id",
    ),
    (
        "dot-dot reservation id",
        lambda c: c.reservations.cancel(".."),
        ValueError,
        "reservation_id",
    ),
    (
        "lower-case reason",
        lambda c: c.service_jobs.cancel("job", reason_code="v1"),
        ValueError,
        "reason_code",
    ),
    (
        "naive start",
        lambda c: c.appointments.add("job", start_time=NAIVE),
        ValueError,
        "start_time",
    ),
    (
        "zero duration",
        lambda c: c.appointments.add("job", start_time=T0, duration_minutes=0),
        ValueError,
        "duration_minutes",
    ),
    (
        "empty reschedule reason",
        lambda c: c.appointments.reschedule("job", "appt", start_time=T0, reason_code=""),
        ValueError,
        "reason_code",
    ),
    (
        "no resources",
        lambda c: c.appointments.assign_resources("job", "appt", []),
        ValueError,
        "resource_ids",
    ),
    (
        "resource twice",
        lambda c: c.appointments.assign_resources("job", "appt", ["a", "a"]),
        ValueError,
        "resource_ids[1]",
    ),
    (
        "resources as a string",
        lambda c: c.appointments.assign_resources("job", "appt", "tech-7"),
        TypeError,
        "resource_ids",
    ),
    (
        "nothing to record",
        lambda c: c.appointments.set_fulfillment_data("job", "appt"),
        ValueError,
        "fulfillment_time",
    ),
    (
        "fulfillment ends first",
        lambda c: c.appointments.set_fulfillment_data(
            "job", "appt", fulfillment_time=(T0, T0 - HOUR)
        ),
        ValueError,
        "fulfillment_time",
    ),
    (
        "document of the wrong type",
        lambda c: c.appointments.set_fulfillment_data("job", "appt", documents=[{"id": 1}]),
        TypeError,
        "documents[0]",
    ),
    (
        "slot window half given",
        lambda c: c.appointments.slots_for_job("job", start_time=T0),
        ValueError,
        "end_time",
    ),
    (
        "slot window too wide",
        lambda c: c.appointments.slots(
            asin="B00EXAMPLE", store_id="s", start_time=T0, end_time=T0 + timedelta(days=91)
        ),
        ValueError,
        "end_time",
    ),
    (
        "slot window inverted",
        lambda c: c.appointments.slots_for_job("job", start_time=T0, end_time=T0 - HOUR),
        ValueError,
        "end_time",
    ),
    (
        "empty schedule",
        lambda c: c.schedules.update("res", []),
        ValueError,
        "schedules",
    ),
    (
        "schedule of dicts",
        lambda c: c.schedules.update("res", [{"startTime": "x"}]),
        TypeError,
        "schedules[0]",
    ),
    (
        "schedule capacity 0",
        lambda c: c.schedules.update(
            "res", [AvailabilityRecord(start_time=T0, end_time=T0 + HOUR, capacity=0)]
        ),
        ValueError,
        "schedules[0].capacity",
    ),
    (
        "recurrence day 32",
        lambda c: c.schedules.update(
            "res",
            [
                AvailabilityRecord(
                    start_time=T0,
                    end_time=T0 + HOUR,
                    recurrence=Recurrence(end_time=T0 + HOUR, days_of_month=[32]),
                )
            ],
        ),
        ValueError,
        "days_of_month[0]",
    ),
    (
        "capacity window inverted",
        lambda c: _pages(c.schedules.range_capacity("res", start_time=T0, end_time=T0)),
        ValueError,
        "end_time",
    ),
    (
        "unknown capacity type",
        lambda c: _pages(
            c.schedules.range_capacity(
                "res", start_time=T0, end_time=T0 + HOUR, capacity_types=["FREE"]
            )
        ),
        ValueError,
        "capacity_types[0]",
    ),
    (
        "slot duration 7",
        lambda c: _pages(
            c.schedules.fixed_capacity("res", start_time=T0, end_time=T0 + HOUR, slot_duration=7)
        ),
        ValueError,
        "slot_duration",
    ),
    (
        "empty capacity page token",
        lambda c: _pages(
            c.schedules.range_capacity("res", start_time=T0, end_time=T0 + HOUR, page_token="")
        ),
        ValueError,
        "page_token",
    ),
    (
        "reservation not a model",
        lambda c: c.reservations.create("res", {"type": "BREAK"}),
        TypeError,
        "reservation",
    ),
    (
        "reservation naive time",
        lambda c: c.reservations.update(
            "rid",
            "res",
            Reservation(
                type=ReservationType.BREAK,
                availability=AvailabilityRecord(start_time=NAIVE, end_time=T0),
            ),
        ),
        ValueError,
        "start_time",
    ),
    (
        "document too large",
        lambda c: c.documents.create_upload_destination(
            content_type="PDF", content_length=5_242_881
        ),
        ValueError,
        "content_length",
    ),
    (
        "hex md5",
        lambda c: c.documents.create_upload_destination(
            content_type="PDF", content_length=10, content_md5="0" * 32
        ),
        ValueError,
        "content_md5",
    ),
    (
        "unknown content type",
        lambda c: c.documents.create_upload_destination(content_type="DOCX", content_length=10),
        ValueError,
        "content_type",
    ),
]


@pytest.mark.parametrize(("call", "exc", "name"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_arguments_fail_before_any_request(
    mock_api: aioresponses,
    make_client: ClientFactory,
    call: Call,
    exc: type[Exception],
    name: str,
) -> None:
    client = make_client()
    with pytest.raises(exc) as caught:
        await call(client)
    assert name in str(caught.value), str(caught.value)
    assert mock_api.requests == {}


async def test_marketplace_required_only_where_the_route_takes_it(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    client = make_client(marketplace_id=None)
    with pytest.raises(ValueError, match="marketplace_id"):
        await client.reservations.cancel("rid")
    with pytest.raises(ValueError, match="marketplace_id"):
        await client.appointments.slots_for_job("job")
    with pytest.raises(ValueError, match="marketplace_id"):
        client.schedules.range_capacity("res", start_time=T0, end_time=T0 + HOUR)
    assert mock_api.requests == {}


# --- the environment: one set of variables, arguments over environment over defaults ------

_SETTINGS = (
    "SPAPI_REGION",
    "SPAPI_SANDBOX",
    "SPAPI_ENDPOINT",
    "SPAPI_TOKEN_URL",
    "SPAPI_MARKETPLACE_ID",
)


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process's environment with no SPAPI_* setting but the test's own."""
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


async def test_the_client_reads_its_settings_from_the_environment(
    environ: pytest.MonkeyPatch, creds: LwaCredentials
) -> None:
    environ.setenv("SPAPI_ENDPOINT", "http://127.0.0.1:8080")
    environ.setenv("SPAPI_TOKEN_URL", "http://127.0.0.1:8080/auth/o2/token")
    environ.setenv("SPAPI_MARKETPLACE_ID", "A2EUQ1WTGCTBG2")
    async with ServicesClient(creds) as client:
        assert client.base_url == "http://127.0.0.1:8080"
        assert client.config.token_url == "http://127.0.0.1:8080/auth/o2/token"
        assert client.marketplace_id == "A2EUQ1WTGCTBG2"
    # Arguments come first, whatever the environment says.
    async with ServicesClient(
        creds, endpoint="https://proxy.test", token_url="https://lwa.test/t", marketplace_id=US
    ) as client:
        assert client.base_url == "https://proxy.test"
        assert client.config.token_url == "https://lwa.test/t"
        assert client.marketplace_id == US


async def test_region_and_sandbox_from_the_environment_and_blank_means_unset(
    environ: pytest.MonkeyPatch, creds: LwaCredentials
) -> None:
    environ.setenv("SPAPI_REGION", "eu")
    environ.setenv("SPAPI_SANDBOX", "yes")
    environ.setenv("SPAPI_ENDPOINT", "")  # `export SPAPI_ENDPOINT=` unsets it, in effect
    async with ServicesClient(creds) as client:
        assert client.region is Region.EU
        assert client.base_url == Region.EU.sandbox_endpoint
    async with ServicesClient(creds, region=Region.FE, sandbox=False) as client:
        assert client.base_url == Region.FE.endpoint
    environ.delenv("SPAPI_REGION")
    environ.delenv("SPAPI_SANDBOX")
    async with ServicesClient(creds) as client:  # the defaults
        assert client.base_url == Region.NA.endpoint
        assert client.config.token_url is None
        assert client.marketplace_id is None


@pytest.mark.parametrize(
    ("variable", "value", "rule"),
    [
        ("SPAPI_REGION", "us", "SPAPI_REGION: 'us' is not one of NA, EU, FE"),
        ("SPAPI_SANDBOX", "maybe", "SPAPI_SANDBOX: 'maybe' is neither on"),
        ("SPAPI_ENDPOINT", "localhost:8080", "SPAPI_ENDPOINT: must be an http(s) URL"),
        ("SPAPI_TOKEN_URL", "auth.test", "SPAPI_TOKEN_URL: must be an http(s) URL"),
        ("SPAPI_MARKETPLACE_ID", "atvpdkikx0der", "SPAPI_MARKETPLACE_ID: 'atvpdkikx0der'"),
    ],
)
def test_a_bad_variable_is_named_with_its_rule(
    environ: pytest.MonkeyPatch, creds: LwaCredentials, variable: str, value: str, rule: str
) -> None:
    environ.setenv(variable, value)
    with pytest.raises(ValueError, match=re.escape(rule)):
        ServicesClient(creds)


def test_sandbox_with_an_endpoint_is_refused_naming_both(
    environ: pytest.MonkeyPatch, creds: LwaCredentials
) -> None:
    environ.setenv("SPAPI_ENDPOINT", "http://127.0.0.1:8080")
    with pytest.raises(ValueError, match=r"sandbox / SPAPI_ENDPOINT: give one of them"):
        ServicesClient(creds, sandbox=True)
    with pytest.raises(ValueError, match=r"sandbox / endpoint: give one of them"):
        ServicesClient(creds, sandbox=True, endpoint="https://proxy.test")


# --- marketplace ids, checked before sending -----------------------------------------------


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("atvpdkikx0der", "they are upper case; did you mean ATVPDKIKX0DER (US, United States)?"),
        ("a1b2c3d4e5f6", "they are upper case; did you mean 'A1B2C3D4E5F6'?"),
        ("US", "'US' is a country code, not a marketplace id; the marketplace of United States"),
        ("uk", "the marketplace of United Kingdom is A1F83G8C2ARO7P"),
        ("XYZ", "'XYZ' is not a marketplace id: those are 10 to 20 upper-case letters"),
        ("ATVPDKIKX0DER ", "has spaces around it"),
        ("", "must not be empty"),
    ],
)
async def test_a_malformed_marketplace_is_refused_with_the_right_spelling(
    mock_api: aioresponses, make_client: ClientFactory, given: str, said: str
) -> None:
    client = make_client()
    with pytest.raises(ValueError, match=re.escape("marketplace_id: ")) as caught:
        await client.appointments.slots_for_job("job", marketplace_id=given)
    assert said in str(caught.value)
    with pytest.raises(ValueError, match=re.escape(said)):
        make_client(marketplace_id=given)
    assert mock_api.requests == {}


async def test_an_unknown_well_formed_marketplace_is_sent_with_a_warning_once(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    sent = expect(mock_api, "GET", payload={"payload": {}}, repeat=True)
    lwa_ok(mock_api)
    client = make_client()
    unknown = "A9ZZZZNEWMARKET"
    with pytest.warns(UnknownMarketplaceWarning, match=f"marketplace id {unknown} is not one"):
        await client.appointments.slots_for_job("job", marketplace_id=unknown)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not again for the same id
        await client.appointments.slots_for_job("job", marketplace_id=unknown)
    assert [s.query["marketplaceIds"] for s in sent] == [unknown, unknown]


async def test_a_marketplace_of_another_region_is_refused_for_amazons_hosts(
    environ: pytest.MonkeyPatch, mock_api: aioresponses, creds: LwaCredentials
) -> None:
    germany = "A1PA6795UKMFR9"
    with pytest.raises(ValueError, match=r"served by Amazon's EU region, not NA: choose region EU"):
        ServicesClient(creds, marketplace_id=germany)
    environ.setenv("SPAPI_MARKETPLACE_ID", germany)
    # From the environment it is a default: checked where a call falls back on it, so a
    # program that names each call's marketplace is not held up by it.
    async with ServicesClient(creds) as client:
        with pytest.raises(ValueError, match=r"^SPAPI_MARKETPLACE_ID: A1PA6795UKMFR9 \(DE, "):
            await client.appointments.slots_for_job("job")
        with pytest.raises(ValueError, match=r"^SPAPI_MARKETPLACE_ID: .* not NA: choose"):
            client.service_jobs.list(created_after=T0)
    async with ServicesClient(creds, region=Region.EU) as client:
        assert client.marketplace_id == germany
        with pytest.raises(ValueError, match=r"^marketplace_id: ATVPDKIKX0DER \(US"):
            await client.appointments.slots_for_job("job", marketplace_id=US)
    # Another endpoint (a proxy, the emulator) may serve any marketplace.
    async with ServicesClient(creds, endpoint="http://127.0.0.1:9", marketplace_id=US) as client:
        assert client.marketplace_id == US
    assert mock_api.requests == {}


# --- fulfilment times: after the visit --------------------------------------------------------


async def test_a_future_fulfilment_time_is_refused_naming_its_end(
    mock_api: aioresponses, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_client()
    monkeypatch.setattr(client, "_utcnow", lambda: T0)
    booked = (T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    with pytest.raises(ValueError, match=r"^fulfillment_time\.start_time: 2026-03-02T09:30:00Z"):
        await client.appointments.set_fulfillment_data("job", "appt", fulfillment_time=booked)
    with pytest.raises(ValueError, match="in the future") as caught:
        await client.appointments.set_fulfillment_data(
            "job", "appt", fulfillment_time=(T0 - HOUR, T0 + timedelta(minutes=5))
        )
    assert str(caught.value) == (
        "fulfillment_time.end_time: 2026-03-01T09:35:00Z is in the future (this machine's "
        "clock says 2026-03-01T09:30:00Z); it is when the work was done, so record it after "
        "the visit: Amazon refuses a future fulfilment time"
    )
    assert mock_api.requests == {}


async def test_within_the_allowance_and_arrival_windows_ahead_are_sent(
    mock_api: aioresponses, make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = expect(mock_api, "PUT", payload={}, repeat=True)
    lwa_ok(mock_api)
    client = make_client()
    monkeypatch.setattr(client, "_utcnow", lambda: T0)
    ends = T0 + FUTURE_ALLOWANCE  # a clock a minute behind Amazon's: still taken
    await client.appointments.set_fulfillment_data(
        "job", "appt", fulfillment_time=(T0 - HOUR, ends)
    )
    await client.appointments.set_fulfillment_data(
        "job", "appt", estimated_arrival_time=(T0 + HOUR, T0 + 2 * HOUR)
    )
    assert len(sent) == 2
    assert sent[0].json["fulfillmentTime"]["endTime"] == "2026-03-01T09:31:00Z"


# --- document types: the API's names or MIME types -------------------------------------------


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("image/png", ContentType.PNG),
        ("IMAGE/PNG", ContentType.PNG),
        ("png", ContentType.PNG),
        ("application/pdf", ContentType.PDF),
        ("image/jpeg", ContentType.JPEG),
        ("image/tiff", ContentType.TIFF),
        ("GIF", ContentType.GIF),
        (ContentType.JPG, ContentType.JPG),
    ],
)
def test_content_types_by_name_or_mime_type(given: str, meant: ContentType) -> None:
    assert check_content_type("content_type", given) is meant


async def test_an_unknown_content_type_lists_the_values(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    client = make_client()
    with pytest.raises(ValueError, match="image/webp") as caught:
        await client.documents.upload(b"%PDF-1.7 ...", content_type="image/webp")
    message = str(caught.value)
    assert message.startswith("content_type: 'image/webp' is not one of TIFF, JPG, PNG")
    assert "image/tiff, image/jpg, image/png, image/jpeg, image/gif, application/pdf" in message
    for documented in ("image/png", "application/pdf", "JPEG"):
        assert documented in (Documents.upload.__doc__ or "")
        assert documented in (Documents.create_upload_destination.__doc__ or "")
    assert mock_api.requests == {}


# --- records where ids are expected ------------------------------------------------------------


@attrs.frozen
class _Resource:
    """What the emulator's ``qualified_resources`` gives: a record with ``resource_id``."""

    resource_id: str
    name: str = "Ana"


async def test_records_carrying_ids_are_taken_where_ids_are_expected(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    sent = expect(mock_api, "PUT", payload={}, repeat=True)
    lwa_ok(mock_api)
    client = make_client()
    job = ServiceJob(service_job_id="J1")
    booked = AppointmentResult(appointment_id="A1")
    await client.appointments.assign_resources(
        job, booked, [_Resource("T1"), Technician(technician_id="T2"), "T3"]
    )
    assert sent[0].url.path.endswith("/serviceJobs/J1/appointments/A1/resources")
    assert sent[0].json == {
        "resources": [{"resourceId": "T1"}, {"resourceId": "T2"}, {"resourceId": "T3"}]
    }


async def test_a_record_without_the_id_is_refused_naming_the_attribute(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    client = make_client()
    with pytest.raises(TypeError) as caught:
        await client.appointments.assign_resources("J1", "A1", ["T1", {"resourceId": "T2"}])
    assert str(caught.value) == (
        "resource_ids[1]: expected an id (a string) or a record with .resource_id or "
        ".technician_id, got dict"
    )
    with pytest.raises(ValueError, match=r"resource_ids\[0\] \(_Resource.resource_id\): must"):
        await client.appointments.assign_resources("J1", "A1", [_Resource("")])
    with pytest.raises(ValueError, match=r"service_job_id \(ServiceJob.service_job_id\): the"):
        await client.appointments.add(ServiceJob(), start_time=T0)
    with pytest.raises(ValueError, match=r"resources\[1\]: 'T1' is listed twice"):
        await client.appointments.set_fulfillment_data(
            "J1", "A1", resources=[_Resource("T1"), "T1"]
        )
    # Where records are not taken, the message says which attribute to pass.
    with pytest.raises(TypeError, match=r"service_job_id: .* got ServiceJob: pass its .service"):
        check_id("service_job_id", ServiceJob(service_job_id="J1"))
    assert mock_api.requests == {}


# --- the configuration guide's tables are the data ---------------------------------------------

_GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "configuration.md"


def _table_after(marker: str) -> list[list[str]]:
    text = _GUIDE.read_text(encoding="utf-8")
    lines = text[text.index(marker) :].splitlines()[1:]
    rows = []
    for line in lines[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().strip("`") for cell in line.strip("|").split("|")])
    return rows


def test_the_guide_lists_every_variable_with_its_argument_and_default() -> None:
    rows = _table_after("<!-- the environment:")
    assert [(r[0], r[1], r[3], r[4]) for r in rows] == [
        (v.name, v.argument, v.meaning, v.default) for v in ENVIRONMENT
    ]
    options = {r[0]: r[2].strip("`") for r in rows if r[2]}
    cli_guide = (_GUIDE.parent / "cli.md").read_text(encoding="utf-8")
    for variable, option in options.items():
        assert f"| `{option}" in cli_guide, option
        assert f"`{variable}`" in cli_guide, variable


def test_the_guide_lists_every_known_marketplace() -> None:
    rows = _table_after("<!-- marketplaces:")
    assert rows == [
        [m.region, f"{m.country} ({m.country_code})", m.marketplace_id] for m in MARKETPLACES
    ]
