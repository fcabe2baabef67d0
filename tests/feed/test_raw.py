"""Jobs a poll finds again with the very same JSON are known without being decoded.

Decoding a job and hashing its canonical form were most of a poll's CPU, and most jobs a
poll finds are ones the last poll found, unchanged.  The feed keeps a digest of each
job's JSON as parsed and decodes only the jobs whose JSON differs; the digest tells
every type apart (``true`` is not ``1``), and JSON that differs only in form (key order,
``12.50`` for ``12.5``) is decoded and judged by its content, so it is no change.
"""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from spapi_services import _serde
from spapi_services._transport import ApiResponse
from spapi_services.emulator.store import JobRecord
from spapi_services.errors import ResponseDecodeError
from spapi_services.feed._detect import raw_digest
from spapi_services.resources.service_jobs import RawJobPage

from .conftest import World, run

JOB = {"serviceJobId": "J1", "serviceJobStatus": "HOLD", "createTime": "2026-06-01T10:00:00Z"}


def test_the_raw_digest_is_equal_for_equal_json_and_tells_types_apart() -> None:
    text = json.dumps({**JOB, "quantity": 2, "prime": True, "price": 12.5})
    assert raw_digest(_serde.loads(text)) == raw_digest(_serde.loads(text.encode()))
    assert raw_digest({"a": True}) != raw_digest({"a": 1})
    assert raw_digest({"a": 1.0}) != raw_digest({"a": 1})
    assert raw_digest({"a": "1"}) != raw_digest({"a": 1})
    assert raw_digest({"a": None}) != raw_digest({})
    assert raw_digest({"a": [1, 2]}) != raw_digest({"a": [2, 1]})
    # The standard library's parser reads fractions as Decimal, which marshal cannot
    # write: those jobs are digested from their repr, as exactly.
    assert raw_digest({"a": Decimal("12.5")}) == raw_digest({"a": Decimal("12.5")})
    assert raw_digest({"a": Decimal("12.5")}) != raw_digest({"a": Decimal("12.50")})
    assert raw_digest({"a": Decimal("1")}) != raw_digest({"a": 1})


def answer(data: Any) -> ApiResponse:
    headers = CIMultiDictProxy(CIMultiDict({"x-amzn-RequestId": "req-7"}))
    return ApiResponse(status=200, data=data, headers=headers, request_id="req-7", rate_limit=None)


def test_a_raw_page_holds_its_fields_decoded_and_its_jobs_as_parsed() -> None:
    page = RawJobPage.of(
        answer({"payload": {"jobs": [JOB], "nextPageToken": "t2", "totalResultSize": 21}})
    )
    assert (page.next_page_token, page.total_result_size) == ("t2", 21)
    assert page.jobs == [JOB]
    job = page.decode(page.jobs[0])
    assert (job.service_job_id, job.service_job_status) == ("J1", "HOLD")
    for empty in (None, {}, {"payload": None}, {"payload": {}}, {"payload": {"jobs": None}}):
        page = RawJobPage.of(answer(empty))
        assert (list(page.jobs), page.next_page_token) == ([], None)


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"payload": [JOB]},
        {"payload": {"jobs": JOB}},
        {"payload": {"jobs": [], "totalResultSize": "many"}},
    ],
    ids=["not an object", "payload a list", "jobs an object", "a field of the wrong type"],
)
def test_a_page_of_the_wrong_shape_is_a_decode_error_naming_the_request(body: Any) -> None:
    with pytest.raises(ResponseDecodeError) as caught:
        RawJobPage.of(answer(body))
    assert caught.value.request_id == "req-7"


def test_a_job_of_the_wrong_shape_is_a_decode_error_naming_its_place() -> None:
    page = RawJobPage.of(answer({"payload": {"jobs": [JOB, {**JOB, "appointments": 5}, "J2"]}}))
    page.decode(page.jobs[0], 0)
    for index in (1, 2):
        with pytest.raises(ResponseDecodeError) as caught:
            page.decode(page.jobs[index], index)
        assert caught.value.request_id == "req-7"
        assert caught.value.__notes__ == [f"(in the page's jobs[{index}])"]


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the jobs the feed decodes, in order."""
    seen: list[str] = []
    real = RawJobPage.decode

    def counting(page: RawJobPage, data: Any, index: int | None = None) -> Any:
        seen.append(data["serviceJobId"])
        return real(page, data, index)

    monkeypatch.setattr(RawJobPage, "decode", counting)
    return seen


async def test_a_poll_decodes_only_the_jobs_whose_json_changed(
    world: World, decoded: list[str]
) -> None:
    a, b, c = (j.service_job_id for j in world.jobs()[:3])
    t = world.timer
    for job_id in (a, b, c):
        world.store.set_job_status(job_id, "HOLD")  # in the window of every poll below
    t.at(30, world.touch(b, "CANCELLED"))
    t.at(40, world.touch_only(c))  # a new update time, the same JSON
    t.stop_after(60)
    since = t.utcnow() - timedelta(seconds=1)

    feed = world.client.service_jobs.changes(since=since, interval=5)
    changes = await run(feed)

    expected = [(a, "HOLD"), (b, "HOLD"), (c, "HOLD"), (b, "CANCELLED")]
    assert sorted(world.summary(changes)) == sorted(("updated", *e) for e in expected)
    assert feed.polls >= 10  # every poll found the three jobs ...
    assert sorted(decoded) == sorted([a, b, c, b])  # ... and decoded each change once


async def test_the_same_content_in_another_form_is_decoded_and_no_change(
    world: World, decoded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # From the 20th second the emulator writes the job's keys in the other order: its
    # JSON is not the same, so it is decoded again, judged by content, and not yielded.
    job = world.jobs()[0]
    world.store.set_job_status(job.service_job_id, "HOLD")
    flipped: list[bool] = []
    wire = JobRecord.to_wire

    def reordered(record: JobRecord) -> dict[str, Any]:
        data = wire(record)
        return dict(reversed(list(data.items()))) if flipped else data

    def flip() -> None:
        flipped.append(True)
        world.store.jobs[job.service_job_id].invalidate()  # its cached JSON written anew

    monkeypatch.setattr(JobRecord, "to_wire", reordered)
    world.timer.at(20, flip)
    world.timer.stop_after(40)
    since = world.timer.utcnow() - timedelta(seconds=1)

    changes = await run(world.client.service_jobs.changes(since=since, interval=5))

    assert [c.service_job_id for c in changes] == [job.service_job_id]
    assert decoded == [job.service_job_id] * 2  # as first seen, and once reordered
