"""Service jobs: fetch one, search and page through many, cancel, complete."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

import attrs

from .. import _ids
from .._ids import JobRef
from .._pagination import FetchPage, PageIterator
from .._validation import (
    check_datetime,
    check_enum,
    check_int,
    check_items,
    check_string,
    nearest,
)
from ..errors import (
    ApiStatusError,
    BadRequestError,
    NotFoundError,
    ResponseDecodeError,
    UnprocessableEntityError,
)
from ..models.enums import ServiceJobStatus, SortField, SortOrder
from ..models.jobs import JobListing, ServiceJob
from ._base import Resource, body_object, structure

if TYPE_CHECKING:
    from datetime import timedelta

    from .._transport import ApiResponse
    from ..feed import JobFeed

__all__ = ["JobFilters", "JobPaginator", "ServiceJobs"]

_log = logging.getLogger("spapi_services")

_GET = "getServiceJobByServiceJobId"
_LIST = "getServiceJobs"


class ServiceJobs(Resource):
    """Get, search, cancel and complete service jobs."""

    async def get(self, service_job_id: JobRef) -> ServiceJob:
        """One service job, with its appointments, items, buyer and location.

        ``service_job_id`` is the job's id, or anything that carries it as
        ``.service_job_id`` (a ``ServiceJob``, a change feed's ``JobChange.job``): pass a
        job to read it again.
        """
        job_id = _ids.job_id(service_job_id)
        return await self._payload(_GET, ServiceJob, path={"serviceJobId": job_id})

    async def cancel(self, service_job_id: JobRef, *, reason_code: str) -> None:
        """Cancel a job, giving Amazon's cancellation reason code (such as ``V1``).

        ``service_job_id`` is the job's id or the ``ServiceJob`` itself (anything with a
        ``.service_job_id``).

        When an attempt got no clear answer and the retry is refused (the job is no longer
        open), the job is read back: if it is cancelled, the first attempt did it and this
        returns normally; otherwise the refusal is raised, with a note that an earlier
        attempt may have taken effect.
        """
        job_id = _ids.job_id(service_job_id)
        code = check_string(
            "reason_code", reason_code, min_length=1, max_length=100, pattern=r"^[A-Z0-9_]*$"
        )
        try:
            await self._send(
                "cancelServiceJobByServiceJobId",
                path={"serviceJobId": job_id},
                query={"cancellationReasonCode": code},
            )
        except (UnprocessableEntityError, NotFoundError, BadRequestError) as exc:
            await self._settled(exc, job_id, ServiceJobStatus.CANCELLED)

    async def complete(self, service_job_id: JobRef) -> None:
        """Mark a job done (record its fulfilment data first).

        ``service_job_id`` is the job's id or the ``ServiceJob`` itself (anything with a
        ``.service_job_id``).

        Like :meth:`cancel`, a refused retry after an unclear first attempt reads the job
        back and returns normally when it is completed.
        """
        job_id = _ids.job_id(service_job_id)
        try:
            await self._send("completeServiceJobByServiceJobId", path={"serviceJobId": job_id})
        except (UnprocessableEntityError, NotFoundError, BadRequestError) as exc:
            await self._settled(exc, job_id, ServiceJobStatus.COMPLETED)

    async def _settled(
        self, refusal: ApiStatusError, job_id: str, wanted: ServiceJobStatus
    ) -> None:
        """Return if ``refusal`` only says an unclear earlier attempt already did the job."""
        if not refusal.may_have_taken_effect:
            raise refusal
        job = await self.get(job_id)
        if job.service_job_status != wanted:
            raise refusal
        _log.info(
            "%s: an earlier attempt got no clear answer; the job is %s, so it took effect",
            job_id,
            wanted.value,
        )

    def list(
        self,
        *,
        marketplace_id: str | None = None,
        page_size: int = 20,
        page_token: str | None = None,
        resume_token: str | None = None,
        max_items: int | None = None,
        **filters: Unpack[JobFilters],
    ) -> JobPaginator:
        """Every job matching the filters, following page tokens.

        ``async for job in client.service_jobs.list(created_after=...)`` yields jobs;
        ``.pages()`` yields the :class:`JobListing` pages.  Give exactly one of
        ``created_after`` and ``last_updated_after``.  The filters are checked here,
        before any request is made.

        To go on after a stop (a ``break``, ``max_items``, an error), pass the
        paginator's :attr:`JobPaginator.resume_token` back as ``resume_token=`` with the
        same filters: the jobs continue exactly where they stopped.  ``page_token=``
        starts from one of the API's own page tokens instead.
        """
        query = _job_query(filters, page_size)
        query["marketplaceIds"] = self._marketplace(marketplace_id)
        if page_token is not None:
            check_string("page_token", page_token, min_length=1)
        if max_items is not None:
            check_int("max_items", max_items, minimum=0)
        if page_token is not None and resume_token is not None:
            raise ValueError("page_token / resume_token: give one of them, not both")
        search = _search_key(query)
        skip = 0
        if resume_token is not None:
            page_token, skip = _read_resume_token(resume_token, search)

        async def fetch(token: str | None) -> JobListing:
            return await self._page(query, token)

        return JobPaginator(
            fetch, page_token=page_token, max_items=max_items, skip=skip, search=search
        )

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
        query["marketplaceIds"] = self._marketplace(marketplace_id)
        if page_token is not None:
            check_string("page_token", page_token, min_length=1)
        return await self._page(query, page_token)

    async def _raw_page(
        self,
        *,
        page_token: str | None = None,
        marketplace_id: str | None = None,
        page_size: int = 20,
        **filters: Unpack[JobFilters],
    ) -> RawJobPage:
        """One page of a job search (the arguments of :meth:`list_page`), its jobs left
        as parsed JSON for the caller to decode as it needs (:meth:`RawJobPage.decode`)."""
        query = _job_query(filters, page_size)
        query["marketplaceIds"] = self._marketplace(marketplace_id)
        if page_token is not None:
            check_string("page_token", page_token, min_length=1)
        response = await self._send(
            _LIST, query={**query, "pageToken": page_token} if page_token else query
        )
        return RawJobPage.of(response)

    async def _page(self, query: dict[str, Any], token: str | None) -> JobListing:
        # A page without a payload (``{}``) is an empty page: the payload is optional.
        return await self._payload(
            _LIST,
            JobListing,
            query={**query, "pageToken": token} if token else query,
            empty=JobListing,
        )

    def changes(
        self,
        *,
        since: datetime | None = None,
        resume_token: str | None = None,
        marketplace_ids: Iterable[str] | None = None,
        interval: float | None = None,
        overlap: timedelta | None = None,
    ) -> JobFeed:
        """The seller's new and changed jobs, as they happen: an async iterator of
        :class:`~spapi_services.models.JobChange`.

        ::

            async for change in client.service_jobs.changes():
                print(change.kind, change.job.service_job_id, change.job.service_job_status)

        The feed polls getServiceJobs every ``interval`` seconds for the jobs updated
        lately, in each of ``marketplace_ids`` (default: the client's marketplace), and
        yields each job that is new to it or whose content changed, once: a job seen
        again unchanged, however the windows overlap, is not yielded again.  ``kind`` is
        ``created`` for a job the feed had not seen and that was created at or after the
        start of its previous polling window (at first, ``since``), else ``updated``: a
        job created before ``since`` and changed after it is ``updated``.

        :param since: yield the jobs updated at or after this time (default: from now).
        :param resume_token: go on where an earlier feed stopped: a
            :attr:`JobChange.resume_token <spapi_services.models.JobChange.resume_token>`
            (every change after that one) or a :attr:`JobFeed.resume_token
            <spapi_services.feed.JobFeed.resume_token>`.  Not with ``since``.
        :param marketplace_ids: the marketplaces to watch (with ``resume_token``: its
            own, unless the same are given).
        :param interval: seconds from one poll's start to the next's; default
            :data:`~spapi_services.feed.DEFAULT_INTERVAL`, 5 s: one request a poll is 2%
            of the published usage plan (10 a second, burst 40, per application and
            seller), and a change arrives about ``interval`` seconds after it is made.
            The second poll comes after a random share of the interval, so that feeds
            started together (many sellers in one process) spread their polls over it.
        :param overlap: how far before the last complete moment each poll looks again,
            for late writes and clock skew (default
            :data:`~spapi_services.feed.DEFAULT_OVERLAP`, 2 minutes).

        Every argument is checked here, before anything is sent.  Polls spend the
        client's getServiceJobs plan, shared with its other calls and feeds.  Transient
        failures (throttling, 5xx, the network) are outlasted with back-off and counted
        in the feed's ``errors``; refused credentials or a refused request are raised.
        """
        from ..feed import DEFAULT_OVERLAP
        from ..feed._feed import open_feed

        return open_feed(
            self._client,
            since=since,
            resume_token=resume_token,
            marketplace_ids=marketplace_ids,
            interval=interval,
            overlap=DEFAULT_OVERLAP if overlap is None else overlap,
        )


class RawJobPage:
    """A page of a job search whose jobs are not decoded yet: for a reader that sees
    most jobs again unchanged and decodes only the others (the change feed).

    The page's own fields are checked and decoded at once; ``jobs`` holds each job's
    JSON as parsed, and :meth:`decode` makes one a :class:`ServiceJob`, with the
    errors decoding the whole page would give.
    """

    __slots__ = ("_response", "jobs", "next_page_token", "total_result_size")

    def __init__(self, listing: JobListing, jobs: Sequence[Any], response: ApiResponse) -> None:
        self.jobs = jobs
        self.next_page_token = listing.next_page_token
        self.total_result_size = listing.total_result_size
        self._response = response

    @classmethod
    def of(cls, response: ApiResponse) -> RawJobPage:
        """The page an answer holds; an answer without a payload is an empty page."""
        payload = None
        if response.data is not None:
            payload = body_object(response, _LIST).get("payload")
        if payload is None:
            return cls(JobListing(), (), response)
        jobs = payload.get("jobs") if isinstance(payload, dict) else None
        if not isinstance(payload, dict) or not (jobs is None or isinstance(jobs, list)):
            # Not the shape of a page: decoding it whole raises the error that says where.
            listing = structure(payload, JobListing, response, _LIST)
            return cls(listing, [job.to_api_dict() for job in listing.jobs or ()], response)
        shell = {name: value for name, value in payload.items() if name != "jobs"}
        return cls(structure(shell, JobListing, response, _LIST), jobs or (), response)

    def decode(self, data: Any, index: int | None = None) -> ServiceJob:
        """One of :attr:`jobs` (the ``index``-th) as a ``ServiceJob``; a mismatch names
        the request id, and the job's place in the page."""
        try:
            return structure(data, ServiceJob, self._response, _LIST)
        except ResponseDecodeError as exc:
            if index is not None:
                exc.add_note(f"(in the page's jobs[{index}])")
            raise


class JobPaginator(PageIterator[JobListing]):
    """Every service job matching a search, across all pages.

    ``async for job in client.service_jobs.list(...)`` yields :class:`ServiceJob`
    objects; ``async for page in paginator.pages()`` yields the :class:`JobListing`
    pages, with ``total_result_size`` and the page tokens.  ``max_items`` stops after
    that many jobs.

    After any stop (a ``break``, ``max_items``, an exception) :attr:`resume_token` says
    exactly where the jobs stopped, inside a page included; ``next_page_token`` is the
    API's own token of the page after the last one fetched.
    """

    def __init__(
        self,
        fetch: FetchPage[JobListing],
        *,
        page_token: str | None = None,
        max_items: int | None = None,
        skip: int = 0,
        search: str = "",
    ) -> None:
        super().__init__(fetch, lambda page: page.next_page_token, page_token=page_token)
        self._max_items = max_items
        self._skip = skip
        self._search = search
        self._position: tuple[str | None, int] | None = (page_token, skip)
        self._current: str | None = page_token
        self._pending_skip = skip

    @property
    def resume_token(self) -> str | None:
        """Where to go on from: pass it to ``service_jobs.list(resume_token=...)``.

        A string until every job has been yielded, then ``None``.  It holds the page the
        next job is on and how many of that page's jobs were already yielded, so resuming
        repeats none and misses none, as long as the API still takes that page's token.
        """
        if self._position is None:
            return None
        token, skip = self._position
        return _make_resume_token(token, skip, self._search)

    def __aiter__(self) -> AsyncIterator[ServiceJob]:  # type: ignore[override]
        return self.jobs()

    async def pages(self) -> AsyncIterator[JobListing]:
        """Every page, in order (a resumed search's first page without the jobs already seen)."""
        self._pending_skip = self._skip
        async for page in super().pages():
            skip, self._pending_skip = self._pending_skip, 0
            if skip:
                page = attrs.evolve(page, jobs=tuple((page.jobs or ())[skip:]))
            self._position = self._after_page()
            yield page

    async def jobs(self) -> AsyncIterator[ServiceJob]:
        """Every job, in order, up to ``max_items``."""
        remaining = self._max_items
        if remaining is not None and remaining <= 0:
            return
        self._pending_skip = self._skip
        async for page in super().pages():
            jobs: Sequence[ServiceJob] = page.jobs or ()
            token, end = self._current, self._after_page()
            first, self._pending_skip = self._pending_skip, 0
            if first >= len(jobs):
                self._position = end
            for index in range(first, len(jobs)):
                # Counted as delivered before the yield: a ``break`` ends the loop there.
                self._position = end if index + 1 == len(jobs) else (token, index + 1)
                yield jobs[index]
                if remaining is not None:
                    remaining -= 1
                    if remaining == 0:
                        return

    def _after_page(self) -> tuple[str | None, int] | None:
        return (self.next_page_token, 0) if self.next_page_token else None

    def _page_started(self, token: str | None) -> None:
        self._current = token
        self._position = (token, self._pending_skip)


def _search_key(query: dict[str, Any]) -> str:
    """A short fingerprint of a search (filters and page size), to match resume tokens."""
    text = json.dumps({k: str(v) for k, v in sorted(query.items())}, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _make_resume_token(token: str | None, skip: int, search: str) -> str:
    data = json.dumps({"v": 1, "t": token, "s": skip, "q": search}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def _read_resume_token(resume_token: str, search: str) -> tuple[str | None, int]:
    check_string("resume_token", resume_token, min_length=1)
    try:
        padded = resume_token + "=" * (-len(resume_token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        token, skip, made_for = data["t"], data["s"], data["q"]
        if data.get("v") != 1 or not (token is None or isinstance(token, str)):
            raise ValueError
        if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
            raise ValueError
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise ValueError("resume_token: not a token from JobPaginator.resume_token") from None
    if made_for != search:
        raise ValueError(
            "resume_token: it was made for another search; pass the same filters, "
            "marketplace and page_size as the search it came from"
        )
    return token, skip


class JobFilters(TypedDict, total=False):
    """The filters of a job search, all optional, all keyword arguments.

    Give exactly one of ``created_after`` and ``last_updated_after``.
    """

    #: Only the jobs of these service orders (up to 20).
    service_order_ids: Iterable[str] | None
    #: Only the jobs bought with these product orders (up to 20).
    product_order_ids: Iterable[str] | None
    #: Only the jobs that ship with these tracking ids (up to 20).
    tracking_ids: Iterable[str] | None
    #: Only jobs in these statuses (the enum or its names).
    statuses: Iterable[ServiceJobStatus | str] | None
    #: Jobs created at or after this time (aware datetime).
    created_after: datetime | None
    #: Jobs created before this time (an upper bound for ``created_after``).
    created_before: datetime | None
    #: Jobs changed at or after this time (aware datetime).
    last_updated_after: datetime | None
    #: Jobs changed before this time (an upper bound for ``last_updated_after``).
    last_updated_before: datetime | None
    #: The start of the range of appointment times to search.
    schedule_start_date: datetime | None
    #: The end of the range of appointment times to search.
    schedule_end_date: datetime | None
    #: Only jobs for these products, by ASIN (up to 20).
    asins: Iterable[str] | None
    #: Only jobs that need these skills (up to 20).
    required_skills: Iterable[str] | None
    #: Only the jobs of these stores (up to 50).
    store_ids: Iterable[str] | None
    #: What the results are ordered by: ``JOB_DATE`` or ``JOB_STATUS``.
    sort_field: SortField | str | None
    #: The direction of that order: ``ASC`` or ``DESC``.
    sort_order: SortOrder | str | None


def _job_query(filters: JobFilters, page_size: int) -> dict[str, Any]:
    """Check the filters of a job search and turn them into query parameters."""
    unknown = sorted(set(filters) - set(JobFilters.__annotations__))
    if unknown:
        named = [_with_nearest(name, JobFilters.__annotations__) for name in unknown]
        raise TypeError(f"unexpected job filter(s): {', '.join(named)}")
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


def _with_nearest(name: str, known: Iterable[str]) -> str:
    """``name``, and the known name it was likely meant to be: ``created_afterr (did you
    mean created_after?)``."""
    near = nearest(name, known)
    return name if near is None else f"{name} (did you mean {near}?)"


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
