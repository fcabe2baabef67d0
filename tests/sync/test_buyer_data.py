"""Buyer keys and the buyer-data transforms, on job records made here (no sync, no files)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from _mirror_scan import Personal, forms, personal_values, without_personal

from spapi_services import _serde
from spapi_services.models.jobs import ServiceJob
from spapi_services.sync import BuyerKey, BuyerKeyError, BuyerKeys, last_activity
from spapi_services.sync._buyer import (
    BuyerDataPolicy,
    ErasedBuyers,
    as_keys,
    buyer_matches,
    erase_record,
    prunable,
    reveal_record,
    stale_hashes,
)


def a_job(
    job_id: str = "J-1001", buyer_id: str = "AB12CD34EF56GH", **changes: Any
) -> dict[str, Any]:
    """A job record as the API sends it, with every kind of personal field."""
    record: dict[str, Any] = {
        "serviceJobId": job_id,
        "serviceJobStatus": "COMPLETED",
        "marketplaceId": "ATVPDKIKX0DER",
        "createTime": "2026-01-05T10:00:00Z",
        "scopeOfWork": {"asin": "B0SERVICE1", "title": "Tire installation", "quantity": 1},
        "buyer": {
            "buyerId": buyer_id,
            "name": "Zoë Almásy",
            "phone": "+1-206-555-0142",
            "isPrimeMember": True,
        },
        "serviceLocation": {
            "serviceLocationType": "IN_HOME",
            "address": {
                "name": "Zoë Almásy",
                "addressLine1": "1200 Alder Street",
                "addressLine2": "Unit 7",
                "city": "Seattle",
                "stateOrRegion": "WA",
                "postalCode": "98101",
                "countryCode": "US",
                "phone": "+1-206-555-0143",
            },
        },
        "appointments": [
            {
                "appointmentId": "APPT-1",
                "appointmentStatus": "COMPLETED",
                "appointmentTime": {"startTime": "2026-01-09T15:00:00Z", "durationInMinutes": 90},
                "assignedTechnicians": [{"technicianId": "T1", "name": "Sam Okafor"}],
            }
        ],
        "associatedItems": [
            {
                "asin": "B0TIRE0001",
                "title": "All-season tire",
                "quantity": 4,
                "linkedAssets": [
                    {
                        "assetType": "VEHICLE",
                        "assetName": "2019 Outback",
                        "additionalAttributes": {"plate": "ABC-1234", "vin": "4S4BSANC5K3123456"},
                    }
                ],
            }
        ],
        "payments": [{"amount": {"value": 129.99, "currency": "USD"}, "instrument": "CREDIT_CARD"}],
    }
    record.update(changes)
    return record


def stored_text(record: dict[str, Any]) -> bytes:
    return _serde.dumps(record).encode()


def in_clear(record: dict[str, Any], stored: dict[str, Any]) -> list[Personal]:
    """The personal values of ``record`` that ``stored`` shows in any form."""
    text = stored_text(stored)
    return [v for v in personal_values(record) if any(f in text for f in forms(v))]


KEY = BuyerKey(bytes(range(32)))
OTHER = BuyerKey(bytes(range(1, 33)))


# --- keys ---------------------------------------------------------------------------------


def test_a_key_round_trips_through_its_text_and_never_shows_its_secret() -> None:
    key = BuyerKey.generate()
    text = key.export()
    assert BuyerKey.from_text(text) == key
    assert BuyerKey.from_text(base64.b64encode(BuyerKey.from_text(text)._secret).decode()) == key
    assert len(key.key_id) == 12
    assert key.key_id != BuyerKey.generate().key_id
    for shown in (repr(key), str(key), repr(BuyerKeys([key])), repr(as_keys(text))):
        assert text not in shown
        assert key.key_id in shown
    assert KEY.key_id == BuyerKey(bytes(range(32))).key_id  # derived, so stable


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("c2hvcnQ", "buyer_key: must decode to 32 bytes, got 5"),
        ("not-base64-at-all!", "buyer_key: not base64 text"),
        (b"short", "buyer_key: must be 32 bytes, got 5"),
        (42, "buyer_key: expected a BuyerKey, its text or a list of keys, got int"),
        ([KEY, 42], r"buyer_key\[1\]: expected a BuyerKey or its text, got int"),
        ([KEY, KEY], r"buyer_key\[1\]: key [0-9a-f]{12} is listed twice"),
        ([], "buyer_key: give at least one key"),
        ("# only a comment\n", "buyer_key: no key in the text"),
    ],
)
def test_bad_keys_are_refused_naming_the_argument(value: Any, message: str) -> None:
    with pytest.raises(BuyerKeyError, match=message) as caught:
        as_keys(value)
    assert isinstance(caught.value, ValueError)


def test_a_ring_reads_comments_and_separators_and_protects_with_its_first_key() -> None:
    text = f"# newest first\n{OTHER.export()}\n\n# 2025 key\n{KEY.export()}, \n"
    ring = BuyerKeys.from_text(text)
    assert [k.key_id for k in ring] == [OTHER.key_id, KEY.key_id]
    assert ring.current == OTHER
    assert ring.get(KEY.key_id) == KEY
    assert ring.get("000000000000") is None


def test_a_policy_that_needs_a_key_is_refused_without_one() -> None:
    with pytest.raises(BuyerKeyError, match=r"buyer_key: required with buyer_data='encrypt'"):
        BuyerDataPolicy.of("encrypt", None)
    with pytest.raises(BuyerKeyError, match=r"buyer_key: required with buyer_data='hash'"):
        BuyerDataPolicy.of("hash", None)
    with pytest.raises(ValueError, match=r"buyer_data: must be one of keep, encrypt, hash, drop"):
        BuyerDataPolicy.of("scramble", KEY)  # type: ignore[arg-type]


# --- the transforms -------------------------------------------------------------------------


def test_encrypt_hides_every_personal_value_and_the_key_brings_it_back() -> None:
    record = a_job()
    stored = BuyerDataPolicy("encrypt", BuyerKeys([KEY])).protect(record)

    assert in_clear(record, stored) == []
    assert stored["buyer"]["name"].startswith(f"spapi:enc:v1:{KEY.key_id}:")
    assert reveal_record(stored, BuyerKeys([KEY])) == record
    assert record == a_job()  # the input is left as it was
    # The business stays in clear.
    assert without_personal(stored) == without_personal(record)
    # Each encryption has its own nonce: the same name twice is two different texts.
    assert stored["buyer"]["name"] != stored["serviceLocation"]["address"]["name"]
    # Without the key, the tokens come back as stored, and still read as a job.
    assert reveal_record(stored, None) == stored
    job = _serde.structure(stored, ServiceJob)
    assert job.buyer is not None
    assert job.buyer.name == stored["buyer"]["name"]


def test_an_encrypted_value_hides_its_length_and_cannot_move() -> None:
    policy = BuyerDataPolicy("encrypt", BuyerKeys([KEY]))
    short = policy.protect(a_job(buyer={"name": "Al"}))["buyer"]["name"]
    longer = policy.protect(a_job(buyer={"name": "Alexandra Ng"}))["buyer"]["name"]
    assert len(short) == len(longer)  # padded to 16 bytes

    one, two = policy.protect(a_job("J-1")), policy.protect(a_job("J-2"))
    moved = copy.deepcopy(two)
    moved["buyer"]["name"] = one["buyer"]["name"]  # another job's ciphertext
    with pytest.raises(BuyerKeyError, match=r"job J-2: buyer.name does not decrypt"):
        reveal_record(moved, BuyerKeys([KEY]))
    swapped = copy.deepcopy(one)
    swapped["buyer"]["name"] = one["buyer"]["phone"]  # another field's
    with pytest.raises(BuyerKeyError, match="does not decrypt"):
        reveal_record(swapped, BuyerKeys([KEY]))
    with pytest.raises(BuyerKeyError, match=f"encrypted with key {KEY.key_id}, which buyer_key"):
        reveal_record(one, BuyerKeys([OTHER]))


def test_hash_keeps_a_keyed_digest_that_matches_across_jobs() -> None:
    policy = BuyerDataPolicy("hash", BuyerKeys([KEY]))
    one, two = policy.protect(a_job("J-1")), policy.protect(a_job("J-2"))
    assert in_clear(a_job("J-1"), one) == []
    assert one["buyer"] == two["buyer"]  # one buyer, one pseudonym
    assert one["buyer"]["buyerId"] != policy.protect(a_job(buyer_id="ZZ99"))["buyer"]["buyerId"]
    # Keyed: another key gives another digest, and the plain SHA-256 is nowhere.
    elsewhere = BuyerDataPolicy("hash", BuyerKeys([OTHER])).protect(a_job("J-1"))
    assert elsewhere["buyer"]["buyerId"] != one["buyer"]["buyerId"]
    plain = hashlib.sha256(b"AB12CD34EF56GH").digest()
    text = stored_text(one)
    for form in (plain.hex(), base64.urlsafe_b64encode(plain).decode().rstrip("=")):
        assert form.encode() not in text
    # Hashes are not undone by reading, and hashing again leaves them be.
    assert reveal_record(one, BuyerKeys([KEY])) == one
    assert BuyerDataPolicy("hash", BuyerKeys([OTHER])).protect(one) == one
    assert without_personal(one) == without_personal(a_job("J-1"))


def test_drop_leaves_the_jobs_business_and_no_buyer() -> None:
    record = a_job()
    stored = BuyerDataPolicy("drop").protect(record)
    assert list(personal_values(stored)) == []
    assert stored["buyer"] == {"isPrimeMember": True}
    assert stored["serviceLocation"] == {"serviceLocationType": "IN_HOME"}
    assert stored["associatedItems"][0]["linkedAssets"] == [{"assetType": "VEHICLE"}]
    assert without_personal(stored) == without_personal(record)
    assert erase_record(record) == stored
    job = _serde.structure(stored, ServiceJob)  # still a valid job
    assert job.service_location is not None
    assert job.service_location.address is None
    assert BuyerDataPolicy("keep").protect(record) is record


def test_a_buyers_jobs_are_found_however_their_id_is_stored() -> None:
    ring = BuyerKeys([KEY])
    stored = {
        "keep": a_job(),
        "encrypt": BuyerDataPolicy("encrypt", ring).protect(a_job()),
        "hash": BuyerDataPolicy("hash", ring).protect(a_job()),
    }
    for mode, record in stored.items():
        assert buyer_matches(record, "AB12CD34EF56GH", ring), mode
        assert not buyer_matches(record, "AB12CD34EF56GX", ring), mode
    assert not buyer_matches(erase_record(a_job()), "AB12CD34EF56GH", ring)
    for mode in ("encrypt", "hash"):
        with pytest.raises(BuyerKeyError, match=f"with key {KEY.key_id}; give that key"):
            buyer_matches(stored[mode], "AB12CD34EF56GH", None)
        with pytest.raises(BuyerKeyError, match=KEY.key_id):
            buyer_matches(stored[mode], "AB12CD34EF56GH", BuyerKeys([OTHER]))


def test_rotation_reencrypts_with_the_new_key_and_counts_hashes_it_cannot_redo() -> None:
    old = BuyerKeys([KEY])
    rotated = BuyerKeys([OTHER, KEY])
    encrypted = BuyerDataPolicy("encrypt", old).protect(a_job())
    again = BuyerDataPolicy("encrypt", rotated).protect(reveal_record(encrypted, rotated))
    assert again["buyer"]["name"].startswith(f"spapi:enc:v1:{OTHER.key_id}:")
    assert reveal_record(again, BuyerKeys([OTHER])) == a_job()

    hashed = BuyerDataPolicy("hash", old).protect(a_job())
    assert not stale_hashes(hashed, old)
    assert stale_hashes(hashed, rotated)
    assert not stale_hashes(encrypted, rotated)


def test_forgotten_buyers_are_kept_as_salted_digests() -> None:
    erased = ErasedBuyers()
    erased.add("AB12CD34EF56GH")
    assert "AB12CD34EF56GH" in erased
    assert "AB12CD34EF56GX" not in erased
    assert "AB12CD34EF56GH" not in repr(erased)
    assert "AB12CD34EF56GH" not in str(erased.digests)
    assert hashlib.sha256(b"AB12CD34EF56GH").hexdigest() not in erased.digests
    reloaded = ErasedBuyers(erased.salt, erased.digests)
    assert "AB12CD34EF56GH" in reloaded
    assert ErasedBuyers(None, erased.digests).digest("AB12CD34EF56GH") not in erased.digests
    guarded = reloaded.guard(a_job())
    assert guarded is not None
    assert list(personal_values(guarded)) == []
    assert reloaded.guard(a_job(buyer_id="ZZ99")) is None


# --- retention ------------------------------------------------------------------------------


def test_a_jobs_last_date_is_the_latest_time_it_records() -> None:
    record = a_job()
    assert last_activity(record) == datetime(2026, 1, 9, 16, 30, tzinfo=UTC)  # 15:00 + 90 min
    record["appointments"][0]["poa"] = {"uploadTime": "2026-01-10T08:00:00Z"}
    assert last_activity(record) == datetime(2026, 1, 10, 8, tzinfo=UTC)
    record["associatedItems"][0]["itemDelivery"] = {
        "itemDeliveryPromise": {"endTime": "2026-01-12T00:00:00Z"}
    }
    assert last_activity(record) == datetime(2026, 1, 12, tzinfo=UTC)
    assert last_activity({"serviceJobId": "x", "createTime": "not a time"}) is None


def test_only_closed_jobs_past_the_cutoff_are_prunable() -> None:
    cutoff = datetime(2026, 1, 9, 16, 31, tzinfo=UTC)
    assert prunable(a_job(), cutoff)
    assert not prunable(a_job(), cutoff - timedelta(minutes=2))
    assert not prunable(a_job(serviceJobStatus="NOT_SERVICED"), cutoff)
    assert not prunable(a_job(serviceJobStatus="PAYMENT_DECLINED"), cutoff)
    assert prunable(
        a_job(serviceJobStatus="PAYMENT_DECLINED"), cutoff, frozenset({"PAYMENT_DECLINED"})
    )
    timeless = {k: v for k, v in a_job().items() if k not in ("createTime", "appointments")}
    assert not prunable(timeless, cutoff)


def test_the_scan_sees_what_it_looks_for() -> None:
    # The checks above pass on a record with no personal data: show they would fail.
    record = a_job()
    assert in_clear(record, record) == list(personal_values(record))
    assert {v.field for v in personal_values(record)} >= {"buyerId", "phone", "postalCode", "vin"}
    digest = hashlib.sha256(b"1200 Alder Street").hexdigest().encode()
    assert any(digest == f for f in forms(Personal("addressLine1", "1200 Alder Street")))
    assert json.dumps("Zoë")[1:-1].encode() in forms(Personal("name", "Zoë Almásy"))[2]
