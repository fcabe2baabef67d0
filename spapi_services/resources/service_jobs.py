"""Service jobs: fetch one, search and page through many, cancel, complete."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypedDict, Unpack

from .._pagination import JobPaginator
from .._validation import check_datetime, check_enum, check_id, check_int, check_items, check_string
from ..models.enums import ServiceJobStatus, SortField, SortOrder
from ..models.jobs import JobListing, ServiceJob
from ._base import Resource, decode_payload

__all__ = ["JobFilters", "ServiceJobs"]

_GET = "getServiceJobByServiceJobId"
_LIST = "getServiceJobs"


class ServiceJobs(Resource):
    """Get, search, cancel and complete service jobs."""

    async def get(self, service_job_id: str) -> ServiceJob:
        """One service job, with its appointments, items, buyer and location."""
        job_id = check_id("service_job_id", service_job_id)
        response = await self._client._call(_GET, path={"serviceJobId": job_id})
        job = decode_payload(response, ServiceJob, _GET)
        assert job is not None
        return job

    async def cancel(self, service_job_id: str, *, reason_code: str) -> None:
        """Cancel a job, giving Amazon's cancellation reason code (such as ``V1``)."""
        job_id = check_id("service_job_id", service_job_id)
        code = check_string(
            "reason_code", reason_code, min_length=1, max_length=100, pattern=r"^[A-Z0-9_]*$"
        )
        await self._client._call(
            "cancelServiceJobByServiceJobId",
            path={"serviceJobId": job_id},
            query={"cancellationReasonCode": code},
        )

    async def complete(self, service_job_id: str) -> None:
        """Mark a job done (record its fulfilment data first)."""
        job_id = check_id("service_job_id", service_job_id)
        await self._client._call("completeServiceJobByServiceJobId", path={"serviceJobId": job_id})

    def list(
        self,
        *,
        marketplace_id: str | None = None,
        page_size: int = 20,
        page_token: str | None = None,
        max_items: int | None = None,
        **filters: Unpack[JobFilters],
    ) -> JobPaginator:
        """Every job matching the filters, following page tokens.

        ``async for job in client.service_jobs.list(created_after=...)`` yields jobs;
        ``.pages()`` yields the :class:`JobListing` pages.  Give exactly one of
        ``created_after`` and ``last_updated_after``.  The filters are checked here,
        before any request is made.
        """
        query = _job_query(filters, page_size)
        query["marketplaceIds"] = self._client._marketplace(marketplace_id)
        if page_token is not None:
            check_string("page_token", page_token, min_length=1)
        if max_items is not None:
            check_int("max_items", max_items, minimum=0)

        async def fetch(token: str | None) -> JobListing:
            return await self._page(query, token)

        return JobPaginator(fetch, page_token=page_token, max_items=max_items)

    async def list_page(
        self,
        *,
        page_token: str | None = None,
        marketplace_id: str | None = None,
        page_size: int = 20,
        **filters: Unpack[JobFilters],
    ) -> JobListing:
        """One page of a job search (the filters of :meth:`list`)."""
        query = _job_query(filters, page_size)
        query["marketplaceIds"] = self._client._marketplace(marketplace_id)
        if page_token is not None:
            check_string("page_token", page_token, min_length=1)
        return await self._page(query, page_token)

    async def _page(self, query: dict[str, Any], token: str | None) -> JobListing:
        response = await self._client._call(
            _LIST, query={**query, "pageToken": token} if token else query
        )
        listing = decode_payload(response, JobListing, _LIST)
        assert listing is not None
        return listing


class JobFilters(TypedDict, total=False):
    """The filters of a job search, all optional, all keyword arguments.

    Give exactly one of ``created_after`` and ``last_updated_after``.
    """

    service_order_ids: Iterable[str] | None
    product_order_ids: Iterable[str] | None
    tracking_ids: Iterable[str] | None
    statuses: Iterable[ServiceJobStatus | str] | None
    created_after: datetime | None
    created_before: datetime | None
    last_updated_after: datetime | None
    last_updated_before: datetime | None
    schedule_start_date: datetime | None
    schedule_end_date: datetime | None
    asins: Iterable[str] | None
    required_skills: Iterable[str] | None
    store_ids: Iterable[str] | None
    sort_field: SortField | str | None
    sort_order: SortOrder | str | None


def _job_query(filters: JobFilters, page_size: int) -> dict[str, Any]:
    """Check the filters of a job search and turn them into query parameters."""
    unknown = set(filters) - set(JobFilters.__annotations__)
    if unknown:
        raise TypeError(f"unexpected job filter(s): {', '.join(sorted(unknown))}")
    f = filters
    created_after = f.get("created_after")
    last_updated_after = f.get("last_updated_after")
    if (created_after is None) == (last_updated_after is None):
        raise ValueError(
            "created_after / last_updated_after: give exactly one of them "
            "(the API needs one and refuses both)"
        )
    times: dict[str, datetime | None] = {
        name: f.get(name)  # type: ignore[misc]
        for name in (
            "created_after",
            "created_before",
            "last_updated_after",
            "last_updated_before",
            "schedule_start_date",
            "schedule_end_date",
        )
    }
    for name, value in times.items():
        if value is not None:
            check_datetime(name, value)
    for start, end in (
        ("created_after", "created_before"),
        ("last_updated_after", "last_updated_before"),
        ("schedule_start_date", "schedule_end_date"),
    ):
        first, last = times[start], times[end]
        if first is not None and last is not None and last < first:
            raise ValueError(f"{end}: must not be before {start}")

    query: dict[str, Any] = {
        "pageSize": check_int("page_size", page_size, minimum=1, maximum=20),
        "serviceOrderIds": _strings(f, "service_order_ids", 20, r"^[0-9\-]+$"),
        "productOrderIds": _strings(f, "product_order_ids", 20, r"^[0-9\-]+$"),
        "trackingIds": _strings(f, "tracking_ids", 20, r"^[A-Za-z0-9\-]+$"),
        "asins": _strings(f, "asins", 20, length=(10, 10)),
        "requiredSkills": _strings(f, "required_skills", 20, length=(1, 50)),
        "storeIds": _strings(f, "store_ids", 50, length=(1, 100)),
        "createdAfter": times["created_after"],
        "createdBefore": times["created_before"],
        "lastUpdatedAfter": times["last_updated_after"],
        "lastUpdatedBefore": times["last_updated_before"],
        "scheduleStartDate": times["schedule_start_date"],
        "scheduleEndDate": times["schedule_end_date"],
    }
    statuses = f.get("statuses")
    sort_field = f.get("sort_field")
    sort_order = f.get("sort_order")
    if statuses is not None:
        items = check_items("statuses", statuses, min_items=1)
        query["serviceJobStatus"] = [
            check_enum(f"statuses[{i}]", s, ServiceJobStatus) for i, s in enumerate(items)
        ]
    if sort_field is not None:
        query["sortField"] = check_enum("sort_field", sort_field, SortField)
    if sort_order is not None:
        query["sortOrder"] = check_enum("sort_order", sort_order, SortOrder)
    return {k: v for k, v in query.items() if v is not None}


def _strings(
    filters: JobFilters,
    name: str,
    max_items: int,
    pattern: str | None = None,
    length: tuple[int, int] | None = None,
) -> list[str] | None:
    values = filters.get(name)
    if values is None:
        return None
    items = check_items(name, values, min_items=1, max_items=max_items)
    low, high = length or (1, None)
    for index, value in enumerate(items):
        check_string(f"{name}[{index}]", value, min_length=low, max_length=high, pattern=pattern)
    return items
