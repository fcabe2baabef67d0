"""The feed's pure pieces: content hashes, the created/updated rule, resume tokens."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from spapi_services import _serde
from spapi_services.feed import EDGE_LIMIT, ChangeKind, JobChange, classify, content_hash
from spapi_services.feed._detect import fingerprint, job_key
from spapi_services.feed._token import MarketState, decode_token, encode_token
from spapi_services.models import ServiceJob

T0 = datetime(2026, 6, 17, 12, tzinfo=UTC)

JOB = {
    "serviceJobId": "J1",
    "serviceJobStatus": "HOLD",
    "createTime": "2026-06-01T10:00:00Z",
    "payments": [{"amount": {"value": 12.5, "currency": "USD"}}],
}


def job(data: dict[str, object]) -> ServiceJob:
    return _serde.structure(data, ServiceJob)


def test_the_content_hash_is_the_same_for_the_same_content() -> None:
    a = job(JOB)
    reordered = job(dict(reversed(list(JOB.items()))))
    amount = {"value": Decimal("12.50"), "currency": "USD"}
    trailing_zero = job({**JOB, "payments": [{"amount": amount}]})
    unknown_key = job({**JOB, "somethingNew": 1})  # not in the model: not content
    assert content_hash(a) == content_hash(reordered) == content_hash(trailing_zero)
    assert content_hash(a) == content_hash(unknown_key)
    assert content_hash(a) == content_hash(_serde.unstructure(a))  # stored JSON hashes the same
    assert len(content_hash(a)) == 64


def test_the_content_hash_changes_with_any_field() -> None:
    base = content_hash(job(JOB))
    assert content_hash(job({**JOB, "serviceJobStatus": "COMPLETED"})) != base
    assert content_hash(job({**JOB, "storeId": "S1"})) != base
    other = {"amount": {"value": 12.51, "currency": "USD"}}
    assert content_hash(job({**JOB, "payments": [other]})) != base


@pytest.mark.parametrize(
    ("remembered", "created", "kind"),
    [
        ("same", T0, None),  # seen with this content: a repeat
        ("other", T0, ChangeKind.UPDATED),  # seen with other content
        ("other", T0 - timedelta(days=9), ChangeKind.UPDATED),
        (None, T0, ChangeKind.CREATED),  # new, created at the previous window's start
        (None, T0 + timedelta(seconds=1), ChangeKind.CREATED),
        (None, T0 - timedelta(milliseconds=1), ChangeKind.UPDATED),  # created before it
        (None, None, ChangeKind.CREATED),  # no creation time: new to the feed is all we know
    ],
)
def test_classify(remembered: str | None, created: datetime | None, kind: object) -> None:
    current = fingerprint(content_hash(job(JOB)))
    memory = {None: None, "same": current, "other": b"\x00" * 8}[remembered]
    assert classify(memory, current, created, T0) == kind


def state(entries: int, window: int | None = None) -> MarketState:
    memory = {job_key(f"J{n}"): fingerprint(f"{n:016x}") for n in range(entries)}
    keys = list(memory)[-(window if window is not None else entries) :]
    return MarketState("ATVPDKIKX0DER", T0, T0 - timedelta(minutes=2), memory, frozenset(keys))


def test_a_token_round_trips_its_window() -> None:
    made = state(300, window=40)
    (read,) = decode_token(encode_token([made]))
    assert read == made  # marketplace and both window starts
    assert dict(read.memory) == {k: v for k, v in made.memory.items() if k in made.window}
    assert read.window == made.window


def test_a_token_keeps_at_most_the_edge_limit_of_the_most_recent() -> None:
    made = state(EDGE_LIMIT + 500)
    token = encode_token([made])
    (read,) = decode_token(token)
    assert list(read.memory) == list(made.memory)[-EDGE_LIMIT:]
    assert len(token) < 45_000


def test_a_quiet_feeds_token_is_short() -> None:
    assert len(encode_token([state(0)])) < 80
    assert len(encode_token([state(5)])) < 200


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t[:-3],  # cut short
        lambda t: t[:20] + ("A" if t[20] != "A" else "B") + t[21:],  # one character changed
        lambda t: "sjf2." + t[5:],  # another version's prefix
        lambda t: t[:10] + "!" + t[11:],  # not base64
        lambda t: "sjf1." + base64.urlsafe_b64encode(b"\x02\x01" + b"\x00" * 30).decode(),
    ],
)
def test_a_damaged_token_is_a_value_error_naming_resume_token(damage: object) -> None:
    token = encode_token([state(3)])
    with pytest.raises(ValueError, match=r"^resume_token: not a resume token"):
        decode_token(damage(token))  # type: ignore[operator]


def test_a_change_carries_a_stable_id_and_a_json_form() -> None:
    one = job(JOB)
    change = JobChange(
        kind=ChangeKind.CREATED, job=one, seen_at=T0, content_hash=content_hash(one),
        resume_token="sjf1.x",
    )  # fmt: skip
    assert change.resume_token == "sjf1.x"
    assert change.change_id == "J1:" + content_hash(one)[:32]
    data = change.to_json()
    assert data["kind"] == "created"
    assert data["seenAt"] == "2026-06-17T12:00:00Z"
    assert data["job"]["serviceJobId"] == "J1"
    assert "resumeToken" not in data
    assert ChangeKind("deleted").is_known is False  # a newer release's kind is kept


def test_a_change_made_elsewhere_than_a_feed_has_an_empty_token() -> None:
    one = job(JOB)
    change = JobChange(kind=ChangeKind.UPDATED, job=one, seen_at=T0, content_hash=content_hash(one))
    assert change.resume_token == ""
    assert change == JobChange(
        kind=ChangeKind.UPDATED, job=one, seen_at=T0, content_hash=content_hash(one),
        resume_token="sjf1.other",
    )  # fmt: skip  # the token is where a feed stood, not part of the change
