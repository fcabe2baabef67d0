"""Standard Webhooks signatures: ours verify with the reference library, and its with ours.

The reference library (``standardwebhooks`` on PyPI) is the specification's own code:
whatever it accepts from us, a receiver built on any conforming library accepts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from datetime import UTC, datetime

import pytest
import standardwebhooks
from hypothesis import given, settings
from hypothesis import strategies as st

from spapi_services.webhooks import (
    WebhookSecret,
    WebhookVerificationError,
    sign,
    signature_header,
    verify,
    webhook_headers,
)

MOMENT = datetime(2026, 6, 17, 12, 0, 5, tzinfo=UTC)
STAMP = int(MOMENT.timestamp())
BODY = '{"type":"service_job.created","data":{"job":{"buyer":{"name":"Zoë"}}}}'.encode()


def test_a_signature_is_v1_and_the_base64_hmac_sha256_of_id_timestamp_and_body() -> None:
    key = bytes(range(32))
    secret = WebhookSecret(key)
    expected = hmac.new(key, f"msg_1.{STAMP}.".encode() + BODY, hashlib.sha256).digest()

    assert sign(secret, "msg_1", STAMP, BODY) == "v1," + base64.b64encode(expected).decode()
    # A datetime is its unix second; text is signed as its UTF-8 bytes.
    assert sign(secret, "msg_1", MOMENT, BODY.decode()) == sign(secret, "msg_1", STAMP, BODY)


def test_the_reference_library_verifies_our_headers() -> None:
    secret = WebhookSecret.generate()
    headers = webhook_headers(secret, "msg_2", STAMP, BODY)

    reference = standardwebhooks.Webhook(secret.export())
    # The reference library checks the timestamp against its own clock: sign as of now.
    now_headers = webhook_headers(secret, "msg_2", datetime.now(UTC), BODY)
    assert reference.verify(BODY, now_headers) == {
        "type": "service_job.created",
        "data": {"job": {"buyer": {"name": "Zoë"}}},
    }
    assert headers["webhook-signature"] == reference.sign("msg_2", MOMENT, BODY)


def test_we_verify_what_the_reference_library_signs() -> None:
    secret = WebhookSecret.generate()
    reference = standardwebhooks.Webhook(secret.export())
    headers = {
        "Webhook-Id": "msg_3",
        "Webhook-Timestamp": str(STAMP),
        "Webhook-Signature": reference.sign("msg_3", MOMENT, BODY),
    }

    assert verify(BODY, headers, secret, now=MOMENT) == "msg_3"
    assert verify(BODY, headers, secret.export(), now=STAMP + 299) == "msg_3"


@settings(max_examples=50, deadline=None)
@given(body=st.binary(max_size=300), msg_id=st.from_regex(r"[!-~]{1,40}", fullmatch=True))
def test_any_body_and_id_round_trip_between_the_two_implementations(
    body: bytes, msg_id: str
) -> None:
    # Bodies are signed as bytes, so even bytes that are not UTF-8 verify.
    secret = WebhookSecret(b"k" * 24)
    reference = standardwebhooks.Webhook(secret.export())
    ours = webhook_headers(secret, msg_id, datetime.now(UTC), body)

    reference.verify(body, ours, json_parse=False)
    theirs = {**ours, "webhook-signature": reference.sign(msg_id, MOMENT, body)}
    theirs["webhook-timestamp"] = str(STAMP)
    assert verify(body, theirs, secret, now=MOMENT) == msg_id


def test_during_a_rotation_each_message_carries_both_signatures_and_either_secret_verifies() -> (
    None
):
    old, new = WebhookSecret.generate(), WebhookSecret.generate()
    header = signature_header([new, old], "msg_4", STAMP, BODY)
    signatures = header.split(" ")
    headers = {"webhook-id": "msg_4", "webhook-timestamp": str(STAMP), "webhook-signature": header}

    assert signatures == [sign(new, "msg_4", STAMP, BODY), sign(old, "msg_4", STAMP, BODY)]
    assert verify(BODY, headers, old, now=MOMENT) == "msg_4"
    assert verify(BODY, headers, new, now=MOMENT) == "msg_4"
    # A receiver that holds both secrets (mid-rotation on its side) accepts either signature.
    only_old = {**headers, "webhook-signature": sign(old, "msg_4", STAMP, BODY)}
    assert verify(BODY, only_old, f"{new.export()} {old.export()}", now=MOMENT) == "msg_4"
    # The reference library accepts the message with either secret too.
    now = datetime.now(UTC)
    live = webhook_headers([new, old], "msg_4", now, BODY)
    standardwebhooks.Webhook(old.export()).verify(BODY, live)
    standardwebhooks.Webhook(new.export()).verify(BODY, live)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"body": BODY + b" "}, "no signature matches"),
        ({"webhook-id": "msg_other"}, "no signature matches"),
        ({"webhook-timestamp": str(STAMP + 1)}, "no signature matches"),
        ({"webhook-signature": "v1,AAAA"}, "no signature matches"),
        ({"webhook-signature": "v1a,whatever"}, "no signature matches"),
        ({"webhook-timestamp": "12.5"}, "webhook-timestamp: must be whole unix seconds"),
        ({"webhook-timestamp": ""}, "webhook-timestamp: header missing"),
        ({"webhook-id": None}, "webhook-id: header missing"),
        ({"webhook-signature": None}, "webhook-signature: header missing"),
    ],
)
def test_a_tampered_or_incomplete_message_is_refused_naming_the_check(
    change: dict[str, str | bytes | None], error: str
) -> None:
    secret = WebhookSecret.generate()
    headers: dict[str, str] = webhook_headers(secret, "msg_5", STAMP, BODY)
    body = change.pop("body", BODY)
    assert isinstance(body, bytes)
    for name, value in change.items():
        if value is None:
            del headers[name]
        else:
            assert isinstance(value, str)
            headers[name] = value

    with pytest.raises(WebhookVerificationError, match=error):
        verify(body, headers, secret, now=MOMENT)


def test_another_secret_does_not_verify() -> None:
    headers = webhook_headers(WebhookSecret.generate(), "msg_6", STAMP, BODY)
    with pytest.raises(WebhookVerificationError, match="no signature matches"):
        verify(BODY, headers, WebhookSecret.generate(), now=MOMENT)


def test_a_timestamp_outside_the_tolerance_is_refused_either_way() -> None:
    secret = WebhookSecret.generate()
    headers = webhook_headers(secret, "msg_7", STAMP, BODY)

    assert verify(BODY, headers, secret, now=STAMP + 300) == "msg_7"
    assert verify(BODY, headers, secret, now=STAMP - 300) == "msg_7"
    with pytest.raises(WebhookVerificationError, match="older than the tolerance of 300 s"):
        verify(BODY, headers, secret, now=STAMP + 301)
    with pytest.raises(WebhookVerificationError, match="later than the tolerance"):
        verify(BODY, headers, secret, now=STAMP - 301)
    with pytest.raises(WebhookVerificationError, match="older than the tolerance of 60 s"):
        verify(BODY, headers, secret, now=STAMP + 61, tolerance=60)


def test_a_secret_is_whsec_and_base64_of_32_random_bytes_and_reads_back() -> None:
    secret = WebhookSecret.generate()
    text = secret.export()

    assert text.startswith("whsec_")
    assert len(base64.b64decode(text.removeprefix("whsec_"))) == 32
    assert WebhookSecret.from_text(text) == secret
    assert WebhookSecret.from_text(text.removeprefix("whsec_").rstrip("=")) == secret
    assert WebhookSecret.generate() != secret


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("whsec_not base64!", "not 'whsec_' followed by base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "at least 16 bytes, got 5"),
    ],
)
def test_a_malformed_secret_is_refused_with_the_rule(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        WebhookSecret.from_text(text)


def test_verify_names_a_bad_secret_among_several() -> None:
    good = WebhookSecret.generate().export()
    with pytest.raises(ValueError, match=r"secret\[1\]: webhook secret: not 'whsec_'"):
        verify(BODY, {}, [good, "whsec_???"], now=MOMENT)


def test_an_id_that_cannot_be_a_header_value_is_refused_before_signing() -> None:
    secret = WebhookSecret.generate()
    for bad in ("", "msg 1", "msg\n1", "é"):
        with pytest.raises(ValueError, match="webhook-id: must be 1 to 255 printable ASCII"):
            webhook_headers(secret, bad, STAMP, BODY)


def test_a_secret_never_shows_in_its_repr_str_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = WebhookSecret.generate()
    material = secret.export().removeprefix("whsec_")

    logging.getLogger("test").warning("secret %s / %r / %s", secret, secret, [secret])
    assert material not in repr(secret)
    assert material not in str(secret)
    assert secret.fingerprint in repr(secret)
    assert material not in caplog.text
