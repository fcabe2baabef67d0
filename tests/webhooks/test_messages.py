"""What is sent: the envelope, a change's data, and the buyer's data as each endpoint says."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from spapi_services.models import ServiceJob
from spapi_services.sync import PERSONAL_FIELDS, BuyerKey
from spapi_services.webhooks import (
    SERVICE_JOB_CREATED,
    SERVICE_JOB_UPDATED,
    WebhookEndpoint,
    WebhookMessage,
    WebhookSecret,
    change_message,
    new_message_id,
)

SEEN = datetime(2026, 6, 17, 12, 0, 1, 250000, tzinfo=UTC)
URL = "https://hooks.example.com/spapi?token=s3cret"


def _endpoint(**options: Any) -> WebhookEndpoint:
    return WebhookEndpoint(url=URL, secrets=WebhookSecret.generate(), **options)


def _personal_values(job: dict[str, Any]) -> list[str]:
    buyer = job.get("buyer", {})
    address = job.get("serviceLocation", {}).get("address", {})
    return [v for v in (*buyer.values(), *address.values()) if isinstance(v, str)]


def test_a_change_is_the_envelope_around_the_feeds_json_of_it(jobs: list[dict[str, Any]]) -> None:
    job = jobs[0]
    message = change_message(
        "created", job, seen_at=SEEN, seller_id="A1SELLER", content_hash="ab" * 32
    )
    body = json.loads(message.body(), parse_float=Decimal)

    assert message.type == SERVICE_JOB_CREATED
    assert message.seller_id == "A1SELLER"
    assert message.id.startswith("msg_")
    assert list(body) == ["type", "timestamp", "data"]
    assert body["type"] == "service_job.created"
    assert body["timestamp"] == "2026-06-17T12:00:01.250Z"
    assert body["data"] == {
        "kind": "created",
        "seenAt": "2026-06-17T12:00:01.250Z",
        "changeId": f"{job['serviceJobId']}:{'ab' * 16}",
        "contentHash": "ab" * 32,
        "sellerId": "A1SELLER",
        "job": json.loads(json.dumps(job, default=str), parse_float=Decimal),
    }


def test_the_job_goes_in_the_apis_json_shape_whether_given_as_model_or_dict(
    jobs: list[dict[str, Any]],
) -> None:
    model = ServiceJob.from_api_dict(jobs[1])
    from_model = change_message("updated", model, seen_at=SEEN, message_id="msg_x")
    from_dict = change_message("updated", model.to_api_dict(), seen_at=SEEN, message_id="msg_x")

    assert from_model.type == SERVICE_JOB_UPDATED
    assert from_model.body() == from_dict.body()
    sent = json.loads(from_model.body(), parse_float=Decimal)["data"]["job"]
    assert ServiceJob.from_api_dict(sent) == model
    assert "contentHash" not in from_model.data
    assert "sellerId" not in from_model.data


def test_amounts_are_written_digit_for_digit(jobs: list[dict[str, Any]]) -> None:
    job = {**jobs[0], "payments": [{"amount": {"value": Decimal("19.90"), "currencyCode": "USD"}}]}
    body = change_message("created", job, seen_at=SEEN).body()

    assert b'"value":19.90' in body


def test_the_body_is_the_same_bytes_each_time_it_is_made(jobs: list[dict[str, Any]]) -> None:
    message = change_message("created", jobs[0], seen_at=SEEN, seller_id="A1")
    hashed = _endpoint(buyer_data="hash", buyer_key=BuyerKey.generate())

    assert message.body() == message.body()
    assert hashed.body(message) == hashed.body(message)  # what a retry re-signs


def test_each_endpoint_keeps_hashes_or_drops_the_buyers_data(jobs: list[dict[str, Any]]) -> None:
    job = jobs[0]
    personal = _personal_values(job)
    message = change_message("created", job, seen_at=SEEN)
    key = BuyerKey.generate()

    kept = json.loads(_endpoint().body(message))["data"]["job"]
    hashed = json.loads(_endpoint(buyer_data="hash", buyer_key=key).body(message))["data"]["job"]
    dropped = json.loads(_endpoint(buyer_data="drop").body(message))["data"]["job"]

    assert len(personal) >= 3
    assert _personal_values(kept) == personal
    assert all(v.startswith(f"spapi:hmac:v1:{key.key_id}:") for v in _personal_values(hashed))
    assert len(_personal_values(hashed)) == len(personal)
    assert hashed["buyer"]["buyerId"] == key.hash(job["buyer"]["buyerId"])
    assert set(dropped.get("buyer", {})) <= {"isPrimeMember"}  # not the buyer's identity
    assert "address" not in dropped.get("serviceLocation", {})
    for body in (hashed, dropped):
        text = json.dumps(body)
        # (Short values such as a country code also appear in the job's own fields.)
        assert not [value for value in personal if len(value) > 5 and value in text]
        assert body["serviceJobId"] == job["serviceJobId"]  # the job's business stays
    assert message.data["job"] == job  # the message itself is left as it was
    assert PERSONAL_FIELDS[0] == "buyer.buyerId"


def test_an_endpoint_takes_its_sellers_and_its_event_types() -> None:
    every = _endpoint()
    one_seller = _endpoint(seller_id="A1")
    new_only = _endpoint(event_types=[SERVICE_JOB_CREATED])
    created_a1 = change_message("created", {}, seen_at=SEEN, seller_id="A1")
    updated_b2 = change_message("updated", {}, seen_at=SEEN, seller_id="B2")

    assert every.takes(created_a1)
    assert every.takes(updated_b2)
    assert one_seller.takes(created_a1)
    assert not one_seller.takes(updated_b2)
    assert new_only.takes(created_a1)
    assert not new_only.takes(updated_b2)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"url": "ftp://hooks.example.com/"}, "url: must start with https://"),
        ({"url": "hooks.example.com/x"}, "url: must start with https://"),
        ({"url": "https:///x"}, "url: has no host"),
        ({"url": "https://hooks.example.com/#top"}, "url: must not have a #fragment"),
        ({"secrets": []}, "secrets: give at least one secret"),
        ({"secrets": "whsec_!!"}, r"secrets\[0\]: webhook secret: not 'whsec_'"),
        ({"buyer_data": "encrypt"}, "buyer_data: must be one of keep, hash, drop"),
        ({"buyer_data": "hash"}, "buyer_key: required with buyer_data='hash'"),
        ({"event_types": []}, "event_types: give one or more"),
    ],
)
def test_a_bad_endpoint_is_refused_naming_the_field(options: dict[str, Any], error: str) -> None:
    arguments: dict[str, Any] = {"url": URL, "secrets": WebhookSecret.generate(), **options}
    with pytest.raises(ValueError, match=error):
        WebhookEndpoint(**arguments)


def test_an_endpoints_repr_shows_neither_its_secret_nor_its_query() -> None:
    secret = WebhookSecret.generate()
    endpoint = WebhookEndpoint(
        url="https://user:pw@hooks.example.com:8443/in?token=s3cret", secrets=secret, id="ep_1"
    )
    shown = repr(endpoint)

    assert "https://hooks.example.com:8443/in" in shown
    assert endpoint.origin == "https://hooks.example.com:8443/in"
    for hidden in ("s3cret", "pw", secret.export().removeprefix("whsec_")):
        assert hidden not in shown


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"kind": "deleted"}, "kind: must be created or updated, got 'deleted'"),
        ({"seen_at": datetime(2026, 6, 17)}, "aware datetime"),
        ({"message_id": "msg 1"}, "webhook-id: must be 1 to 255 printable ASCII"),
    ],
)
def test_a_bad_change_is_refused_naming_the_field(options: dict[str, Any], error: str) -> None:
    arguments: dict[str, Any] = {"kind": "created", "seen_at": SEEN, **options}
    kind = arguments.pop("kind")
    with pytest.raises(ValueError, match=error):
        change_message(kind, {}, **arguments)


def test_message_ids_are_new_each_time_and_headers_safe() -> None:
    ids = {new_message_id() for _ in range(1000)}

    assert len(ids) == 1000
    assert all(i.startswith("msg_") and i.isascii() and " " not in i for i in ids)
    assert WebhookMessage(type="ping", timestamp=SEEN, data={}, id="msg_fixed").id == "msg_fixed"
