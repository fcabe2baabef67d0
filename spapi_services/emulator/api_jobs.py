"""The service-job operations: get one, search, cancel, complete.

Search filters and sorts in memory and pages with cursors sealed into opaque tokens.
A cursor holds a fingerprint of the query, so a token cannot be replayed against
another query, and where the next page starts: by default the sort key of the page's
edge (a keyset cursor: pages stay stable when jobs change in between), or with
``paging="offset"`` a position in the result set as it is when the token is used (an
offset cursor: a job that leaves or enters the result set between two pages shifts
every page after it, as on many list APIs).  With a ``page_token_ttl`` a cursor also
holds when it was issued, and a token used later than that is refused as a foreign one
is.  A cancellation reason must look like the sandbox's valid one (``V`` and digits:
``V1``); anything else of the right shape is the sandbox's 422.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from .context import Handler, ServiceContext
from .replies import EMPTY_OBJECT, ApiError, Reply, dump, error_entry, invalid_input, unprocessable
from .store import JobRecord
from .times import parse_time
from .tokens import InvalidPageToken
from .validation import Call

__all__ = ["CANCELLATION_REASON", "JobsApi"]

#: Cancellation reason codes the emulator accepts (the sandbox's valid code is ``V1``).
CANCELLATION_REASON = re.compile(r"V[0-9]+")
_CLOSED = ("COMPLETED", "CANCELLED")
_DATES = (
    "createdAfter",
    "createdBefore",
    "lastUpdatedAfter",
    "lastUpdatedBefore",
    "scheduleStartDate",
    "scheduleEndDate",
)
# Everything that defines the result set (not the page size or the token itself).
_QUERY_KEYS = (
    *_DATES,
    "serviceOrderIds",
    "productOrderIds",
    "trackingIds",
    "serviceJobStatus",
    "asins",
    "requiredSkills",
    "storeIds",
    "marketplaceIds",
    "sortField",
    "sortOrder",
)

Predicate = Callable[[JobRecord], bool]
SortKey = tuple[str, ...]


class JobsApi:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def handlers(self) -> dict[str, Handler]:
        return {
            "getServiceJobByServiceJobId": self.get,
            "getServiceJobs": self.search,
            "cancelServiceJobByServiceJobId": self.cancel,
            "completeServiceJobByServiceJobId": self.complete,
        }

    # --- one job --------------------------------------------------------------------

    def get(self, call: Call) -> Reply:
        job_id = call.path["serviceJobId"]
        job = self.ctx.store.jobs.get(job_id)
        if job is None:
            raise ApiError(404, [error_entry("NotFound", f"Job not found for jobId {job_id}")])
        return Reply(200, job.payload_json())

    def cancel(self, call: Call) -> Reply:
        job_id = call.path["serviceJobId"]
        reason = call.query["cancellationReasonCode"]
        job = self.ctx.store.job(job_id)
        if job is None:
            raise unprocessable(f"Job not found for jobId {job_id}")
        if job.status in _CLOSED:
            raise unprocessable(
                f"Job with jobId {job_id} and jobStatus {job.status} cannot be cancelled"
            )
        if not CANCELLATION_REASON.fullmatch(reason):
            raise unprocessable(f"Received invalid input reason code {reason} for jobId {job_id}")
        return self._close(job, "CANCELLED")

    def complete(self, call: Call) -> Reply:
        job_id = call.path["serviceJobId"]
        job = self.ctx.store.job(job_id)
        if job is None:
            raise unprocessable(f"Job not found for jobId {job_id}")
        if job.status in _CLOSED:
            raise unprocessable(
                f"Operation not allowed on job with jobId : {job_id} and jobState : {job.status}"
            )
        return self._close(job, "COMPLETED")

    def _close(self, job: JobRecord, status: str) -> Reply:
        """End a job, and its active appointment with it, in ``status``."""
        job.status = status
        for appointment in job.appointments:
            if appointment.status == "ACTIVE":
                appointment.status = status
        self.ctx.store.touch_job(job)
        return EMPTY_OBJECT

    # --- search ---------------------------------------------------------------------

    def search(self, call: Call) -> Reply:
        q = call.query
        if ("createdAfter" in q) == ("lastUpdatedAfter" in q):
            raise invalid_input(
                "Missing or invalid request parameters: [createdAfter, lastUpdatedAfter]",
                "Specify exactly one of createdAfter and lastUpdatedAfter.",
            )
        dates = {name: _date(name, q[name]) for name in _DATES if name in q}
        _ordered(dates, "createdAfter", "createdBefore")
        _ordered(dates, "lastUpdatedAfter", "lastUpdatedBefore")
        _ordered(dates, "scheduleStartDate", "scheduleEndDate")

        tests = _predicates(q, dates)
        found = [job for job in self.ctx.store.jobs.values() if all(t(job) for t in tests)]
        by_status = q.get("sortField") == "JOB_STATUS"
        descending = q.get("sortOrder") == "DESC"
        key = _status_key if by_status else _date_key
        found.sort(key=key, reverse=descending)

        size: int = q.get("pageSize", 20)
        fingerprint = _fingerprint(q)
        start, end = 0, min(size, len(found))
        if "pageToken" in q:
            cursor = self._cursor(q["pageToken"], fingerprint)
            if self.ctx.paging == "offset":
                start, end = _at_offset(cursor, len(found), size)
            else:
                start, end = _after_edge(cursor, found, key, size, descending)
        page = found[start:end]
        meta: dict[str, Any] = {"totalResultSize": len(found)}
        if end < len(found):
            edge = {"o": end} if self.ctx.paging == "offset" else {"k": list(key(page[-1]))}
            meta["nextPageToken"] = self._token(fingerprint, "next", edge)
        if start > 0 and page:
            edge = {"o": start} if self.ctx.paging == "offset" else {"k": list(key(page[0]))}
            meta["previousPageToken"] = self._token(fingerprint, "prev", edge)
        head = dump(meta).decode()[:-1]
        jobs = ",".join(job.fragment() for job in page)
        return Reply(200, f'{{"payload":{head},"jobs":[{jobs}]}}}}'.encode())

    def _token(self, fingerprint: str, direction: str, edge: dict[str, Any]) -> str:
        cursor: dict[str, Any] = {"f": fingerprint, "d": direction, **edge}
        if self.ctx.page_token_ttl is not None:
            # Issued on the monotonic clock, to the millisecond: a jump of the system time
            # neither revives nor kills a token.
            cursor["t"] = round(self.ctx.clock.monotonic(), 3)
        return self.ctx.page_tokens.encode(cursor)

    def _cursor(self, token: str, fingerprint: str) -> dict[str, Any]:
        """The cursor of a token this emulator issued for this query, still in date."""
        try:
            cursor = self.ctx.page_tokens.decode(token)
        except InvalidPageToken as exc:
            raise _bad_token(str(exc)) from None
        if cursor.get("f") != fingerprint:
            raise _bad_token("The page token belongs to a different query.")
        ttl = self.ctx.page_token_ttl
        if ttl is not None:
            issued = cursor.get("t")
            # Told apart from an altered token by nothing: a client cannot learn which.
            if not isinstance(issued, int | float):
                raise _bad_token(_EXPIRED)
            if self.ctx.clock.monotonic() - issued > ttl:
                raise _bad_token(_EXPIRED)
        return cursor


def _bad_token(details: str) -> ApiError:
    return invalid_input("Missing or invalid request parameters: [pageToken]", details)


#: What an expired token is told: the words of any token the emulator cannot open.
_EXPIRED = "page token was altered or expired"


def _at_offset(cursor: Mapping[str, Any], total: int, size: int) -> tuple[int, int]:
    """The page an offset cursor points at, in the result set as it is now."""
    offset = cursor.get("o")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise _bad_token("not a page token")
    if cursor.get("d") == "prev":
        # A previous-page token points at the first job of the page it was issued with.
        end = min(offset, total)
        return max(0, end - size), end
    start = min(offset, total)
    return start, min(start + size, total)


def _after_edge(
    cursor: Mapping[str, Any],
    found: list[JobRecord],
    key: Callable[[JobRecord], SortKey],
    size: int,
    descending: bool,
) -> tuple[int, int]:
    """The page a keyset cursor points at: just past (or before) the edge's sort key."""
    if not isinstance(cursor.get("k"), list):
        raise _bad_token("not a page token")
    edge = tuple(cursor["k"])

    def beyond(job: JobRecord) -> bool:  # comes after the edge in the listing's order
        k = key(job)
        return k < edge if descending else k > edge

    if cursor.get("d") == "prev":
        end = next(
            (i for i, job in enumerate(found) if not _before(key(job), edge, descending)),
            len(found),
        )
        return max(0, end - size), end
    start = next((i for i, job in enumerate(found) if beyond(job)), len(found))
    return start, min(start + size, len(found))


def _before(k: SortKey, edge: SortKey, descending: bool) -> bool:
    return k > edge if descending else k < edge


def _date_key(job: JobRecord) -> SortKey:
    return (job.created.isoformat(), job.service_job_id)


def _status_key(job: JobRecord) -> SortKey:
    return (job.status, job.created.isoformat(), job.service_job_id)


def _date(name: str, text: str) -> datetime:
    try:
        return parse_time(text)
    except ValueError:
        raise invalid_input(
            f"Missing or invalid request parameters: [{name}]",
            f"{name} must be an ISO 8601 date-time, got {text!r}",
        ) from None


def _ordered(dates: Mapping[str, datetime], first: str, second: str) -> None:
    if first in dates and second in dates and dates[second] < dates[first]:
        raise invalid_input(
            f"Missing or invalid request parameters: [{first}, {second}]",
            f"{second} must not be earlier than {first}.",
        )


def _fingerprint(q: Mapping[str, Any]) -> str:
    canonical = json.dumps({k: q[k] for k in _QUERY_KEYS if k in q}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _predicates(q: Mapping[str, Any], dates: Mapping[str, datetime]) -> list[Predicate]:
    tests: list[Predicate] = []
    marketplace = q["marketplaceIds"][0]
    tests.append(lambda j: j.marketplace_id == marketplace)

    def member(values: list[str], attr: Callable[[JobRecord], str]) -> Predicate:
        wanted = frozenset(values)
        return lambda j: attr(j) in wanted

    def overlap(values: list[str], attr: Callable[[JobRecord], tuple[str, ...]]) -> Predicate:
        wanted = frozenset(values)
        return lambda j: not wanted.isdisjoint(attr(j))

    if "serviceOrderIds" in q:
        tests.append(member(q["serviceOrderIds"], lambda j: j.service_order_id))
    if "serviceJobStatus" in q:
        tests.append(member(q["serviceJobStatus"], lambda j: j.status))
    if "asins" in q:
        tests.append(member(q["asins"], lambda j: j.asin))
    if "storeIds" in q:
        tests.append(member(q["storeIds"], lambda j: j.store_id))
    if "productOrderIds" in q:
        tests.append(overlap(q["productOrderIds"], lambda j: j.product_order_ids))
    if "trackingIds" in q:
        tests.append(overlap(q["trackingIds"], lambda j: j.tracking_ids))
    if "requiredSkills" in q:
        tests.append(overlap(q["requiredSkills"], lambda j: j.required_skills))

    def bound(name: str, attr: Callable[[JobRecord], datetime], after: bool) -> None:
        if name in dates:
            limit = dates[name]
            if after:
                tests.append(lambda j: attr(j) >= limit)
            else:
                tests.append(lambda j: attr(j) <= limit)

    bound("createdAfter", lambda j: j.created, True)
    bound("createdBefore", lambda j: j.created, False)
    bound("lastUpdatedAfter", lambda j: j.last_updated, True)
    bound("lastUpdatedBefore", lambda j: j.last_updated, False)
    if "scheduleStartDate" in dates or "scheduleEndDate" in dates:
        lo, hi = dates.get("scheduleStartDate"), dates.get("scheduleEndDate")
        tests.append(
            lambda j: any(
                a.status != "CANCELLED"
                and (lo is None or a.start >= lo)
                and (hi is None or a.start <= hi)
                for a in j.appointments
            )
        )
    return tests
