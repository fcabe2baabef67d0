"""How getServiceJobs pages: keyset cursors or offsets, and tokens that expire.

With offset tokens a job that leaves the result set between two pages shifts every
later page by one, so the job that slid back across the page boundary is never served:
the way a sync that trusts its pages loses jobs on such an API.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from spapi_services.emulator import FakeClock, ServicesEmulator

from ._helpers import Api, StartEmulator
from .test_jobs import EVER, LIST, ids, pages

QUERY = {"createdAfter": EVER, "pageSize": "5"}


def updated_since(clock: FakeClock) -> dict[str, str]:
    """Jobs last updated in the 100 days up to now: every seeded one, until it changes."""
    start = (clock.now() - timedelta(days=100)).isoformat().replace("+00:00", "Z")
    end = clock.now().isoformat().replace("+00:00", "Z")
    return {"lastUpdatedAfter": start, "lastUpdatedBefore": end, "pageSize": "5"}


async def page(api: Api, query: dict[str, str], token: str | None = None) -> dict[str, Any]:
    answer = await api.call(LIST, query={**query, **({"pageToken": token} if token else {})})
    assert answer.status == 200, answer.text
    payload: dict[str, Any] = answer.json["payload"]
    return payload


async def logged_in(start_emulator: StartEmulator, session: Any, **options: Any) -> Api:
    api = Api(session, await start_emulator(**options))
    await api.login()
    return api


@pytest.mark.parametrize("paging", ["keyset", "offset"])
async def test_both_kinds_page_through_every_job_once(
    start_emulator: StartEmulator, session: Any, paging: str
) -> None:
    api = await logged_in(start_emulator, session, page_tokens=paging)
    jobs, _ = await pages(api, QUERY)
    keyset = await logged_in(start_emulator, session)
    reference, _ = await pages(keyset, QUERY)
    assert ids(jobs) == ids(reference)
    assert len(set(ids(jobs))) == len(jobs) > 5


async def test_a_job_that_leaves_mid_paging_shifts_offset_pages_and_one_job_is_never_served(
    start_emulator: StartEmulator, session: Any, clock: FakeClock
) -> None:
    api = await logged_in(start_emulator, session, page_tokens="offset")
    query = updated_since(clock)
    first = await page(api, query)
    before = [j.service_job_id for j in api.emu.store.find_jobs(marketplace_id="ATVPDKIKX0DER")]
    # The second job of page one changes: its last update moves past the search's end.
    clock.advance(60)
    api.emu.store.touch_job(ids(first["jobs"])[1])

    second = await page(api, query, first["nextPageToken"])
    assert second["totalResultSize"] == first["totalResultSize"] - 1
    # Page two starts one job late: the job that was sixth slid back into page one's place.
    slid = before[5]
    assert ids(second["jobs"]) == before[6:11]
    assert slid not in ids(first["jobs"]) + ids(second["jobs"])


async def test_keyset_pages_are_not_shifted_by_a_job_that_leaves(
    start_emulator: StartEmulator, session: Any, clock: FakeClock
) -> None:
    api = await logged_in(start_emulator, session)
    query = updated_since(clock)
    first = await page(api, query)
    before = [j.service_job_id for j in api.emu.store.find_jobs(marketplace_id="ATVPDKIKX0DER")]
    clock.advance(60)
    api.emu.store.touch_job(ids(first["jobs"])[1])

    second = await page(api, query, first["nextPageToken"])
    assert ids(second["jobs"]) == before[5:10]


async def test_a_job_that_enters_before_an_offset_repeats_a_job_at_the_boundary(
    start_emulator: StartEmulator, session: Any, clock: FakeClock
) -> None:
    api = await logged_in(start_emulator, session, page_tokens="offset")
    query = {"createdAfter": EVER, "pageSize": "5", "sortOrder": "DESC"}
    first = await page(api, query)
    clock.advance(60)
    new = api.emu.store.new_job(marketplace_id="ATVPDKIKX0DER")  # the newest: first in DESC
    second = await page(api, query, first["nextPageToken"])
    assert second["totalResultSize"] == first["totalResultSize"] + 1
    assert ids(second["jobs"])[0] == ids(first["jobs"])[-1]  # served again, nothing lost
    assert new.service_job_id not in ids(second["jobs"])


async def test_offset_previous_page_tokens_go_back_a_page(
    start_emulator: StartEmulator, session: Any
) -> None:
    api = await logged_in(start_emulator, session, page_tokens="offset")
    one = await page(api, QUERY)
    assert "previousPageToken" not in one
    two = await page(api, QUERY, one["nextPageToken"])
    back = await page(api, QUERY, two["previousPageToken"])
    assert ids(back["jobs"]) == ids(one["jobs"])
    assert back.get("nextPageToken") == one["nextPageToken"]


@pytest.mark.parametrize("paging", ["keyset", "offset"])
async def test_a_token_used_after_its_ttl_is_refused_as_a_foreign_one(
    start_emulator: StartEmulator, session: Any, clock: FakeClock, paging: str
) -> None:
    api = await logged_in(start_emulator, session, page_tokens=paging, page_token_ttl=30)
    token = (await page(api, QUERY))["nextPageToken"]
    clock.advance(30)
    assert (await api.call(LIST, query={**QUERY, "pageToken": token})).status == 200
    clock.advance(0.5)
    late = await api.call(LIST, query={**QUERY, "pageToken": token})
    altered = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    foreign = await api.call(LIST, query={**QUERY, "pageToken": altered})
    assert late.status == foreign.status == 400
    assert late.errors == foreign.errors
    assert late.errors[0] == {
        "code": "InvalidInput",
        "message": "Missing or invalid request parameters: [pageToken]",
        "details": "page token was altered or expired",
    }
    # A fresh search gets a fresh token.
    fresh = (await page(api, QUERY))["nextPageToken"]
    assert (await api.call(LIST, query={**QUERY, "pageToken": fresh})).status == 200


async def test_without_a_ttl_tokens_do_not_expire(
    start_emulator: StartEmulator, session: Any, clock: FakeClock
) -> None:
    api = await logged_in(start_emulator, session, page_tokens="offset")
    token = (await page(api, QUERY))["nextPageToken"]
    clock.advance(86_400 * 30)
    await api.login()
    assert (await api.call(LIST, query={**QUERY, "pageToken": token})).status == 200


async def test_every_seller_pages_the_same_way(
    start_emulator: StartEmulator, session: Any, clock: FakeClock
) -> None:
    emu = await start_emulator(sellers=2, page_tokens="offset", page_token_ttl=5)
    second = emu.sellers[1]
    assert second.context.paging == "offset"
    assert second.context.page_token_ttl == 5
    added = emu.add_seller()
    assert (added.context.paging, added.context.page_token_ttl) == ("offset", 5)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"page_tokens": "cursor"}, "page_tokens: must be 'keyset' or 'offset', got 'cursor'"),
        ({"page_tokens": None}, "page_tokens: must be 'keyset' or 'offset'"),
        ({"page_token_ttl": 0}, "page_token_ttl: must be a positive number of seconds"),
        ({"page_token_ttl": -1.5}, "page_token_ttl: must be a positive number of seconds"),
        ({"page_token_ttl": True}, "page_token_ttl: must be a positive number of seconds"),
        ({"page_token_ttl": "60"}, "page_token_ttl: must be a positive number of seconds"),
        ({"page_token_ttl": float("inf")}, "page_token_ttl: must be a positive number"),
    ],
)
def test_paging_options_are_checked(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ServicesEmulator(jobs=0, **options)


@pytest.mark.services_emulator(page_tokens="offset", page_token_ttl=120)
@pytest.mark.asyncio
async def test_the_pytest_fixture_takes_the_paging_options(
    services_emulator: ServicesEmulator,
) -> None:
    assert services_emulator.context.paging == "offset"
    assert services_emulator.context.page_token_ttl == 120
