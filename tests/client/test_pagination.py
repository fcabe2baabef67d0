"""Following page tokens: jobs via ``pageToken``, capacity via ``nextPageToken``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from spapi_services import JobPaginator, PaginationError, ServicesClient
from spapi_services.models import JobListing, RangeSlotCapacity, ServiceJob

from ._helpers import API_PATTERN, MARKETPLACE, ClientFactory, expect

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ODD_TOKEN = "tok+en/with=%2Bodd chars&pageSize=1"


def job(job_id: str) -> dict[str, Any]:
    return {"serviceJobId": job_id, "serviceJobStatus": "COMPLETED"}


def paged(
    m: aioresponses,
    pages: dict[str | None, dict[str, Any]],
    *,
    method: str = "GET",
    token_param: str = "pageToken",
) -> list[tuple[URL, dict[str, Any]]]:
    """Answer each request with the page keyed by the token it carries."""
    seen: list[tuple[URL, dict[str, Any]]] = []

    def callback(url: URL, **kwargs: Any) -> CallbackResult:
        seen.append((url, kwargs))
        token = url.query.get(token_param)
        if token not in pages:
            return CallbackResult(status=400, payload={"errors": [{"code": "X", "message": "?"}]})
        return CallbackResult(payload=pages[token])

    m.add(API_PATTERN, method=method, callback=callback, repeat=True)
    return seen


def listing(ids: list[str], next_token: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"totalResultSize": 3, "jobs": [job(i) for i in ids]}
    if next_token is not None:
        page["nextPageToken"] = next_token
    return {"payload": page}


THREE_PAGES = {
    None: listing(["j1", "j2"], ODD_TOKEN),
    ODD_TOKEN: listing([], "T3"),  # empty, but a token: keep going
    "T3": listing(["j3"], ""),  # an empty token ends it
}


async def test_three_pages_with_an_empty_middle_page(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    seen = paged(mock_api, THREE_PAGES)
    paginator = client.service_jobs.list(
        created_after=T0, statuses=["COMPLETED", "CANCELLED"], page_size=2
    )
    assert isinstance(paginator, JobPaginator)
    jobs = [j async for j in paginator]

    assert [j.service_job_id for j in jobs] == ["j1", "j2", "j3"]
    assert all(isinstance(j, ServiceJob) for j in jobs)
    assert len(seen) == 3
    filters = {
        "marketplaceIds": MARKETPLACE,
        "createdAfter": "2026-01-01T00:00:00Z",
        "serviceJobStatus": "COMPLETED,CANCELLED",
        "pageSize": "2",
    }
    queries = [dict(url.query) for url, _ in seen]
    assert queries[0] == filters
    assert queries[1] == {**filters, "pageToken": ODD_TOKEN}  # decoded: byte for byte
    assert queries[2] == {**filters, "pageToken": "T3"}
    # Percent-encoded once: its "+" travels as %2B, so it cannot be read as a space.
    assert "pageToken=tok%2Ben" in seen[1][0].raw_query_string
    assert paginator.next_page_token is None
    assert paginator.pages_fetched == 3


async def test_token_arrives_byte_for_byte_at_a_real_server(
    local_server: Callable[..., Any], make_client: ClientFactory
) -> None:
    """Over real sockets: what the server decodes is exactly the token we were given."""
    received: list[tuple[str | None, str]] = []

    async def handler(request: web.Request) -> web.Response:
        received.append((request.query.get("pageToken"), request.raw_path))
        token = request.query.get("pageToken")
        page = {None: listing(["j1"], ODD_TOKEN), ODD_TOKEN: listing([], "T3")}.get(
            token, listing(["j3"])
        )
        return web.json_response(page)

    base = await local_server(handler)
    client = make_client(endpoint=base, access_token_provider=_token)
    jobs = [j.service_job_id async for j in client.service_jobs.list(created_after=T0)]

    assert jobs == ["j1", "j3"]
    assert [token for token, _ in received] == [None, ODD_TOKEN, "T3"]
    # '+' went as %2B (a bare '+' would be read as a space), '%' as %25, '&' as %26.
    raw = received[1][1]
    assert "pageToken=tok%2Ben" in raw
    assert "%252Bodd" in raw
    assert "%26pageSize%3D1" in raw


async def _token() -> str:
    return "Atza|provided"


async def test_pages_yields_job_listings(mock_api: aioresponses, client: ServicesClient) -> None:
    paged(mock_api, THREE_PAGES)
    pages = [p async for p in client.service_jobs.list(created_after=T0).pages()]
    assert len(pages) == 3
    assert all(isinstance(p, JobListing) for p in pages)
    assert [p.next_page_token for p in pages] == [ODD_TOKEN, "T3", ""]
    assert pages[1].jobs == ()


async def test_repeated_token_raises(mock_api: aioresponses, client: ServicesClient) -> None:
    seen = paged(mock_api, {None: listing(["j1"], "A"), "A": listing(["j2"], "A")})
    got: list[str | None] = []

    async def collect() -> None:
        async for j in client.service_jobs.list(created_after=T0):
            got.append(j.service_job_id)

    with pytest.raises(PaginationError, match="'A'"):
        await collect()
    assert got == ["j1", "j2"]
    assert len(seen) == 2  # it did not ask for the same page again


async def test_token_repeating_the_starting_token_raises(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    seen = paged(mock_api, {"S": listing(["j1"], "S")})
    with pytest.raises(PaginationError):
        async for _ in client.service_jobs.list(created_after=T0, page_token="S"):
            pass
    assert len(seen) == 1


async def test_starting_page_token(mock_api: aioresponses, client: ServicesClient) -> None:
    seen = paged(mock_api, THREE_PAGES)
    jobs = [
        j.service_job_id
        async for j in client.service_jobs.list(created_after=T0, page_token=ODD_TOKEN)
    ]
    assert jobs == ["j3"]
    assert [url.query.get("pageToken") for url, _ in seen] == [ODD_TOKEN, "T3"]


@pytest.mark.parametrize(("max_items", "expected", "requests"), [(3, 3, 2), (2, 2, 1), (0, 0, 0)])
async def test_max_items(
    mock_api: aioresponses,
    client: ServicesClient,
    max_items: int,
    expected: int,
    requests: int,
) -> None:
    seen = paged(
        mock_api,
        {None: listing(["a", "b"], "2"), "2": listing(["c", "d"], "3"), "3": listing(["e"])},
    )
    jobs = [j async for j in client.service_jobs.list(created_after=T0, max_items=max_items)]
    assert len(jobs) == expected
    assert len(seen) == requests


@pytest.mark.parametrize(("max_items", "next_token"), [(3, "3"), (4, "3"), (2, "2"), (5, None)])
async def test_a_max_items_stop_resumes_exactly(
    mock_api: aioresponses, client: ServicesClient, max_items: int, next_token: str | None
) -> None:
    paged(
        mock_api,
        {None: listing(["a", "b"], "2"), "2": listing(["c", "d"], "3"), "3": listing(["e"])},
    )
    first = client.service_jobs.list(created_after=T0, max_items=max_items)
    taken = [j.service_job_id async for j in first]
    # The API's own token of the page after the last one fetched, whatever was taken of it.
    assert first.next_page_token == next_token
    if max_items == 5:
        assert first.resume_token is None  # nothing left
        return
    assert isinstance(first.resume_token, str)
    rest = client.service_jobs.list(created_after=T0, resume_token=first.resume_token)
    resumed = [j.service_job_id async for j in rest]
    assert taken + resumed == ["a", "b", "c", "d", "e"]  # none missing, none repeated


async def test_iterating_again_starts_over(mock_api: aioresponses, client: ServicesClient) -> None:
    seen = paged(mock_api, THREE_PAGES)
    paginator = client.service_jobs.list(created_after=T0)
    first = [j.service_job_id async for j in paginator]
    second = [j.service_job_id async for j in paginator]
    assert first == second == ["j1", "j2", "j3"]
    assert len(seen) == 6


async def test_breaking_early_leaves_nothing_open(
    local_server: Callable[..., Any], make_client: ClientFactory
) -> None:
    requests = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal requests
        requests += 1
        return web.json_response(listing(["j1", "j2"], f"next-{requests}"))

    base = await local_server(handler)
    client = make_client(endpoint=base, access_token_provider=_token)
    async with client:
        async for found in client.service_jobs.list(created_after=T0):
            assert found.service_job_id == "j1"
            # The page was read whole before the first job was handed out.
            session = client._core.session
            assert session is not None
            connector = session.connector
            assert connector is not None
            assert not connector._acquired  # no connection held across the yield
            break
    assert requests == 1
    assert client.is_closed


async def test_capacity_pages_via_next_page_token_in_the_query(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    token = "MjAyMi0wNC0wNVQwMDowMDowMFo%3D"  # the sandbox's, already percent-encoded
    seen = paged(
        mock_api,
        {
            None: {"resourceId": "r", "capacities": [], "nextPageToken": token},
            token: {"resourceId": "r", "capacities": [], "nextPageToken": "p+3"},
            "p+3": {"resourceId": "r", "capacities": []},
        },
        method="POST",
        token_param="nextPageToken",
    )
    pages = [
        p
        async for p in client.schedules.range_capacity(
            "r", start_time=T0, end_time=T0 + timedelta(days=1)
        )
    ]
    assert len(pages) == 3
    assert all(isinstance(p, RangeSlotCapacity) for p in pages)
    queries = [dict(url.query) for url, _ in seen]
    assert queries == [
        {"marketplaceIds": MARKETPLACE},
        {"marketplaceIds": MARKETPLACE, "nextPageToken": token},  # not decoded, not doubled
        {"marketplaceIds": MARKETPLACE, "nextPageToken": "p+3"},
    ]
    bodies = [kwargs["data"] for _, kwargs in seen]
    assert bodies[0] == bodies[1] == bodies[2]


async def test_fixed_capacity_starting_token(
    mock_api: aioresponses, client: ServicesClient
) -> None:
    sent = expect(mock_api, "POST", payload={"resourceId": "r", "slotDuration": 5})
    pages = [
        p
        async for p in client.schedules.fixed_capacity(
            "r", start_time=T0, end_time=T0 + timedelta(hours=1), page_token="resume+1"
        )
    ]
    assert len(pages) == 1
    assert sent[0].query == {"marketplaceIds": MARKETPLACE, "nextPageToken": "resume+1"}


# --- filters are checked before anything is sent -------------------------------------

NAIVE = datetime(2026, 1, 1)


@pytest.mark.parametrize(
    ("kwargs", "exc", "names"),
    [
        ({}, ValueError, "created_after"),
        ({"created_after": T0, "last_updated_after": T0}, ValueError, "last_updated_after"),
        (
            {"created_after": T0, "created_before": T0 - timedelta(seconds=1)},
            ValueError,
            "created_before",
        ),
        (
            {"last_updated_after": T0, "last_updated_before": T0 - timedelta(days=1)},
            ValueError,
            "last_updated_before",
        ),
        (
            {
                "created_after": T0,
                "schedule_start_date": T0,
                "schedule_end_date": T0 - timedelta(days=1),
            },
            ValueError,
            "schedule_end_date",
        ),
        ({"created_after": T0, "page_size": 0}, ValueError, "page_size"),
        ({"created_after": T0, "page_size": 21}, ValueError, "page_size"),
        ({"created_after": T0, "page_size": "5"}, TypeError, "page_size"),
        (
            {"created_after": T0, "service_order_ids": [f"1-{i}" for i in range(21)]},
            ValueError,
            "service_order_ids",
        ),
        ({"created_after": T0, "service_order_ids": ["12a"]}, ValueError, "service_order_ids[0]"),
        ({"created_after": T0, "product_order_ids": []}, ValueError, "product_order_ids"),
        ({"created_after": T0, "tracking_ids": ["no spaces"]}, ValueError, "tracking_ids[0]"),
        (
            {"created_after": T0, "store_ids": [f"s{i}" for i in range(51)]},
            ValueError,
            "store_ids",
        ),
        ({"created_after": T0, "asins": ["B00EXAMPLE", "B00SHORT"]}, ValueError, "asins[1]"),
        ({"created_after": T0, "asins": ["B00EXAMPLE1"]}, ValueError, "asins[0]"),
        ({"created_after": T0, "required_skills": ["x" * 51]}, ValueError, "required_skills[0]"),
        ({"created_after": NAIVE}, ValueError, "created_after"),
        ({"created_after": T0, "created_before": NAIVE}, ValueError, "created_before"),
        ({"created_after": "2026-01-01T00:00:00Z"}, TypeError, "created_after"),
        ({"created_after": T0, "statuses": ["COMPLETED", "DONE"]}, ValueError, "statuses[1]"),
        ({"created_after": T0, "statuses": ["completed"]}, ValueError, "statuses[0]"),
        ({"created_after": T0, "statuses": "COMPLETED"}, TypeError, "statuses"),
        ({"created_after": T0, "sort_field": "NAME"}, ValueError, "sort_field"),
        ({"created_after": T0, "sort_order": "UP"}, ValueError, "sort_order"),
        ({"created_after": T0, "max_items": -1}, ValueError, "max_items"),
        ({"created_after": T0, "page_token": ""}, ValueError, "page_token"),
        ({"created_after": T0, "marketplace_id": ""}, ValueError, "marketplace_id"),
    ],
)
async def test_bad_filters_fail_before_any_request(
    mock_api: aioresponses,
    make_client: ClientFactory,
    kwargs: dict[str, Any],
    exc: type[Exception],
    names: str,
) -> None:
    client = make_client()
    with pytest.raises(exc) as caught:
        client.service_jobs.list(**kwargs)
    assert names in str(caught.value), str(caught.value)
    list_page_kwargs = {k: v for k, v in kwargs.items() if k != "max_items"}
    if "max_items" not in kwargs:
        with pytest.raises(exc) as caught_page:
            await client.service_jobs.list_page(**list_page_kwargs)
        assert names in str(caught_page.value)
    assert mock_api.requests == {}  # not even the token exchange


async def test_marketplace_is_required_somewhere(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    client = make_client(marketplace_id=None)
    with pytest.raises(ValueError, match="marketplace_id"):
        client.service_jobs.list(created_after=T0)
    assert mock_api.requests == {}


async def test_list_page_refuses_unknown_filters(
    mock_api: aioresponses, make_client: ClientFactory
) -> None:
    client = make_client()
    with pytest.raises(TypeError, match="created_since"):
        await client.service_jobs.list_page(created_since=T0)
    assert mock_api.requests == {}
