"""The sync engine: page through every window of a run at once, storing page by page.

The windows share the client, and so its getServiceJobs bucket: however many pages are
in flight, the bucket lets requests out at the usage plan's rate.  Concurrency only has
to cover the latency: with ``L`` seconds per request and a rate of ``R`` per second,
``L × R`` requests must be in flight to keep the bucket busy (250 ms × 10/s = 2.5).

Workers take one page at a time from whichever window is free and has the most pages
left (a window's pages follow each other, so it has at most one in flight).  Windows
not started yet come first, since their first page tells how big they are; after that,
serving the longest first makes the windows finish together instead of leaving one long
window to crawl along alone at the end.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from .. import _serde
from .._client import ServicesClient
from .._validation import check_datetime, check_id, check_int, check_items
from ..errors import BadRequestError
from ..models.enums import SortField, SortOrder
from ..models.jobs import JobListing, ServiceJob
from ..resources.service_jobs import JobFilters
from ._buyer import BuyerData, BuyerDataPolicy, BuyerKeyLike, ErasedBuyers
from ._plan import Mode, SyncPlan, Window, split
from ._sink import Sink, SinkState, job_record

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_WINDOWS",
    "RunSummary",
    "SyncProgress",
    "SyncReport",
    "sync_jobs",
]

_log = logging.getLogger("spapi_services.sync")

#: How far before the checkpoint a later run starts looking, for jobs whose update was
#: recorded a little after the moment the previous run stopped looking.
DEFAULT_OVERLAP = timedelta(minutes=5)
#: How many windows a marketplace's range is cut into, and pages fetched at once.
DEFAULT_WINDOWS = 8

PAGE_SIZE = 20


@attrs.frozen(kw_only=True)
class SyncProgress:
    """Where a sync stands, handed to ``on_progress`` after every stored page.

    ``jobs`` and ``pages`` count whole runs, resumptions included; ``expected`` adds up
    the API's ``totalResultSize`` of the windows that have reported one, so it grows
    during the first round of pages.
    """

    windows: int
    windows_done: int
    pages: int
    jobs: int
    expected: int
    elapsed: float


@attrs.frozen(kw_only=True)
class RunSummary:
    """One marketplace's run within a sync: its mode, its range, what it fetched."""

    scope: str
    mode: str
    resumed: bool
    start: datetime
    end: datetime
    windows: int
    pages: int
    jobs: int


@attrs.frozen(kw_only=True)
class SyncReport:
    """What a call to :func:`sync_jobs` did.

    ``pages`` and ``jobs`` count what this call stored (pages stored by an interrupted
    call before are not included); ``requests`` is the getServiceJobs calls that
    succeeded: the pages, plus the first page of each large range, which is fetched to
    size the range and then again by its first window.  Retries after throttling or
    errors happen inside the client and are not counted here.  ``runs`` has one
    :class:`RunSummary` per marketplace; each run's ``end`` is now its checkpoint.
    """

    runs: tuple[RunSummary, ...]
    windows: int
    pages: int
    jobs: int
    requests: int
    elapsed: float

    @property
    def resumed(self) -> bool:
        """Whether any marketplace's run was an interrupted one, finished now."""
        return any(run.resumed for run in self.runs)

    @property
    def requests_per_second(self) -> float:
        """Successful requests per second of wall time."""
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0


ProgressCallback = Callable[[SyncProgress], None]


async def sync_jobs(
    client: ServicesClient,
    sink: Sink,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    windows: int = DEFAULT_WINDOWS,
    concurrency: int | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
    full: bool = False,
    marketplace_ids: Iterable[str] | None = None,
    on_progress: ProgressCallback | None = None,
    buyer_data: BuyerData = "keep",
    buyer_key: BuyerKeyLike | None = None,
) -> SyncReport:
    """Mirror service jobs into ``sink``, resuming where the last sync left off.

    For each marketplace (``marketplace_ids``, default the client's ``marketplace_id``):

    * the first run (no checkpoint in the sink), or any run with ``full=True``, fetches
      every job created from ``since`` to ``until`` (default, and at most: now);
    * later runs fetch the jobs updated since the checkpoint, less ``overlap``;
    * a run that was interrupted (Ctrl-C, a crash, a network failure) is finished first,
      from the first page it had not stored; ``since``, ``until`` and ``full`` do not
      apply to it.

    A new run first asks for one page of its whole range.  If that is all of it (the
    usual case for a later run), the run is done in one request.  Otherwise the page's
    ``totalResultSize`` sets how many equal windows the range is cut into: about
    ``windows`` in all, shared among the marketplaces in proportion to their sizes.
    ``concurrency`` pages (default: ``windows``) are then fetched at once across all
    windows, paced together by the client's getServiceJobs bucket.  A page's jobs and
    its window's progress are stored in one commit, so a sync stopped at any point
    loses and repeats nothing; a marketplace's checkpoint advances only when all of its
    windows are done.  ``on_progress`` is called after every stored page.

    ``buyer_data`` says what the sink stores of each buyer's personal data (id, name,
    phone, the service address, a linked vehicle): ``"keep"`` (the default) as sent,
    ``"encrypt"`` encrypted with ``buyer_key`` (AES-256-GCM), ``"hash"`` as keyed hashes
    (HMAC-SHA256 with ``buyer_key``), ``"drop"`` not at all.  ``buyer_key`` defaults to
    the sink's own ``buyer_key``; with a ring of keys, the first protects.  A buyer the
    sink has forgotten (``forget_buyer``) is stored without personal data whatever the
    mode.  Jobs already stored keep the form they were written in until rewritten
    (``rewrite_buyer_data`` on the sink, or a later sync of the job).

    Arguments are checked before anything is opened or sent; errors from the API
    propagate unchanged once the other pages in flight have been stopped.
    """
    scopes = _scopes(client, marketplace_ids)
    check_int("windows", windows, minimum=1, maximum=1000)
    workers = windows if concurrency is None else concurrency
    check_int("concurrency", workers, minimum=1, maximum=1000)
    if since is not None:
        check_datetime("since", since)
    if until is not None:
        check_datetime("until", until)
    if not isinstance(overlap, timedelta) or overlap < timedelta(0):
        raise ValueError("overlap: must be a timedelta of zero or more")
    if buyer_key is None:
        buyer_key = getattr(sink, "buyer_keys", None)
    policy = BuyerDataPolicy.of(buyer_data, buyer_key)

    started = time.monotonic()
    now = datetime.now(UTC)
    # Never past the present: the checkpoint becomes this end, and a future one would
    # make the next run skip every change made before that instant.
    end = now if until is None else min(until, now)
    await sink.open()
    try:
        plans: list[tuple[SyncPlan, bool]] = []
        erased = ErasedBuyers()
        for scope in scopes:
            state = await sink.state(scope)
            erased = state.erased
            plans.append(_choose_plan(state, scope, since, end, overlap, full))
        fresh: list[SyncPlan] = []
        for plan, resumed in plans:
            if resumed:
                _log.info("resuming an unfinished %s sync of %s", plan.mode.value, plan.scope)
            if resumed and any(w.pages for w in plan.windows):
                continue
            # New, or stopped before its first page: size it (again) before cutting it up.
            if len(plan.windows) > 1:
                plan.windows = split(plan.start, plan.end, 1)
            await sink.begin(plan)
            fresh.append(plan)
        run = _Run(client, sink, [p for p, _ in plans], fresh, windows, on_progress, started)
        run.protect = _protector(policy, erased)
        await run.execute(workers)
    finally:
        await sink.close()
    summaries = tuple(
        RunSummary(
            scope=plan.scope,
            mode=plan.mode.value,
            resumed=resumed,
            start=plan.start,
            end=plan.end,
            windows=len(plan.windows),
            pages=run.pages_of[plan.scope],
            jobs=run.jobs_of[plan.scope],
        )
        for plan, resumed in plans
    )
    return SyncReport(
        runs=summaries,
        windows=sum(s.windows for s in summaries),
        pages=run.pages,
        jobs=run.jobs,
        requests=run.requests,
        elapsed=time.monotonic() - started,
    )


def _as_is(jobs: Sequence[ServiceJob]) -> Sequence[ServiceJob]:
    return jobs


def _protector(
    policy: BuyerDataPolicy, erased: ErasedBuyers
) -> Callable[[Sequence[ServiceJob]], Sequence[ServiceJob]]:
    """What becomes of a page's jobs before the sink sees them.

    The policy is applied to each job's JSON record, and the job made again from the
    result: the sink gets jobs like any other and stores what it is given.
    """
    if policy.mode == "keep" and not erased.digests:
        return _as_is

    def protect(jobs: Sequence[ServiceJob]) -> Sequence[ServiceJob]:
        protected = []
        for job in jobs:
            record = job_record(job)
            stored = erased.guard(record)
            if stored is None:
                stored = policy.protect(record)
            protected.append(job if stored is record else _serde.structure(stored, ServiceJob))
        return protected

    return protect


def _scopes(client: ServicesClient, marketplace_ids: Iterable[str] | None) -> list[str]:
    if marketplace_ids is None:
        return [client._marketplace(None)]
    if isinstance(marketplace_ids, str):
        raise TypeError("marketplace_ids: expected a list of marketplace ids, not one string")
    ids = check_items("marketplace_ids", marketplace_ids, min_items=1)
    scopes: list[str] = []
    for index, value in enumerate(ids):
        check_id(f"marketplace_ids[{index}]", value)
        if value in scopes:
            raise ValueError(f"marketplace_ids[{index}]: {value!r} is listed twice")
        scopes.append(value)
    return scopes


def _choose_plan(
    state: SinkState,
    scope: str,
    since: datetime | None,
    end: datetime,
    overlap: timedelta,
    full: bool,
) -> tuple[SyncPlan, bool]:
    """The unfinished run to resume, or a new one of a single window (cut up later)."""
    if state.plan is not None:
        return state.plan, True
    if state.checkpoint is not None and not full:
        start = min(state.checkpoint - overlap, end - timedelta(seconds=1))
        return SyncPlan.new(scope=scope, mode=Mode.UPDATED, start=start, end=end, windows=1), False
    if since is None:
        raise ValueError(
            f"since: required for the first sync of marketplace {scope} "
            "(this store holds no checkpoint for it yet)"
        )
    if since >= end:
        raise ValueError("since: must be before until (or now)")
    return SyncPlan.new(scope=scope, mode=Mode.CREATED, start=since, end=end, windows=1), False


class _Run:
    """The pages of some plans, fetched by a pool of workers."""

    def __init__(
        self,
        client: ServicesClient,
        sink: Sink,
        plans: Sequence[SyncPlan],
        fresh: Sequence[SyncPlan],
        windows: int,
        on_progress: ProgressCallback | None,
        started: float,
    ) -> None:
        self._client = client
        self._sink = sink
        self._plans = list(plans)
        self._fresh = list(fresh)
        self._windows = windows
        self._on_progress = on_progress
        self._started = started
        self._busy: set[int] = set()
        self._sink_lock = asyncio.Lock()
        self._totals: dict[str, int] = {}
        self._surveyed: dict[str, tuple[JobListing, str]] = {}
        self.pages = 0
        self.jobs = 0
        self.requests = 0
        self.pages_of = {plan.scope: 0 for plan in plans}
        self.jobs_of = {plan.scope: 0 for plan in plans}
        self.protect: Callable[[Sequence[ServiceJob]], Sequence[ServiceJob]] = _as_is

    async def execute(self, workers: int) -> None:
        """Survey the new plans, cut them into windows, then fetch every pending page."""
        self._report()
        for plan in self._plans:
            if not plan.pending:  # interrupted after its last page, before its checkpoint
                await self._finish(plan)
        # The first request goes alone: it fetches the access token and opens a
        # connection, so the requests after it reach the API as the client's bucket lets
        # them out, and the bucket and the API's stay in step.
        if self._fresh:
            await self._survey(self._fresh[0])
            await _gather_limited([self._survey(p) for p in self._fresh[1:]], workers)
            await self._cut([p for p in self._fresh if p.scope in self._totals])
        elif (first := self._next_window()) is not None:
            await self._take(first)
        tasks = [asyncio.create_task(self._worker()) for _ in range(workers)]
        await _all_or_nothing(tasks)
        unfinished = [p.scope for p in self._plans if p.pending]
        if unfinished:  # every window is taken until done; this would be a bug
            raise RuntimeError(f"sync ended with windows pending for {', '.join(unfinished)}")

    async def _survey(self, plan: SyncPlan) -> None:
        """The first page of a new plan's whole range: often all of it, else its size.

        A range that fits in one page is finished by this one request (the common case
        for a later run a few minutes after the last).  For a larger one, the page's
        ``totalResultSize`` decides how many windows to cut it into.
        """
        window = plan.windows[0]
        page = await self._fetch(plan, window, None)
        token = page.next_page_token or None
        if token is None or page.total_result_size is None:
            # Complete, or no size to go by: keep the page as the window's first.
            await self._store(plan, window, page, token)
            return
        self._totals[plan.scope] = page.total_result_size
        self._surveyed[plan.scope] = (page, token)

    async def _cut(self, plans: Sequence[SyncPlan]) -> None:
        """Cut the surveyed plans into windows, in proportion to their sizes."""
        pages = {p.scope: max(1, math.ceil(self._totals[p.scope] / PAGE_SIZE)) for p in plans}
        counts = allocate(pages, self._windows)
        for plan in plans:
            count = counts[plan.scope]
            page, token = self._surveyed.pop(plan.scope)
            if count == 1:
                # One window: it is the surveyed range, so the survey is its first page.
                plan.windows[0].expected = self._totals[plan.scope]
                await self._store(plan, plan.windows[0], page, token)
                continue
            plan.windows = split(plan.start, plan.end, count)
            async with self._sink_lock:
                await self._sink.begin(plan)
            self._report()

    def _next_window(self) -> Window | None:
        best: Window | None = None
        best_left = -1.0
        for plan in self._plans:
            for window in plan.windows:
                if window.done or id(window) in self._busy:
                    continue
                left = _pages_left(window)
                if left > best_left:
                    best, best_left = window, left
        if best is not None:
            self._busy.add(id(best))
        return best

    async def _worker(self) -> None:
        while (window := self._next_window()) is not None:
            await self._take(window)

    async def _take(self, window: Window) -> None:
        """Fetch and store the next page of a window :meth:`_next_window` handed out."""
        try:
            await self._page(window)
        finally:
            self._busy.discard(id(window))

    def _plan_of(self, window: Window) -> SyncPlan:
        for plan in self._plans:
            if any(w is window for w in plan.windows):
                return plan
        raise LookupError(f"window {window.index} belongs to no plan")

    async def _page(self, window: Window) -> None:
        plan = self._plan_of(window)
        try:
            page = await self._fetch(plan, window, window.page_token)
        except BadRequestError:
            if window.page_token is None:
                raise
            # A token saved by an interrupted run may have expired: start the window
            # again; its jobs are upserted, or skipped if this run wrote them already.
            _log.warning(
                "%s: page token of window %d refused; fetching the window from its start",
                plan.scope,
                window.index,
            )
            page = await self._fetch(plan, window, None)
        await self._store(plan, window, page, page.next_page_token or None)

    async def _store(
        self, plan: SyncPlan, window: Window, page: JobListing, token: str | None
    ) -> None:
        if page.total_result_size is not None:
            window.expected = page.total_result_size
        jobs = self.protect(page.jobs or ())
        async with self._sink_lock:
            written = await self._sink.write_page(plan, window, jobs, token)
            window.page_token = token
            window.done = token is None
            window.pages += 1
            window.jobs += written
            if window.done and not plan.pending:
                await self._finish(plan)
        self.pages += 1
        self.jobs += written
        self.pages_of[plan.scope] += 1
        self.jobs_of[plan.scope] += written
        self._report()

    async def _finish(self, plan: SyncPlan) -> None:
        await self._sink.finish(plan)
        _log.info("%s: synced up to %s", plan.scope, plan.end.isoformat())

    async def _fetch(self, plan: SyncPlan, window: Window, token: str | None) -> JobListing:
        start, end = window.query_start, window.query_end
        filters: JobFilters = {"sort_field": SortField.JOB_DATE, "sort_order": SortOrder.ASC}
        if plan.mode is Mode.CREATED:
            filters["created_after"], filters["created_before"] = start, end
        else:
            filters["last_updated_after"], filters["last_updated_before"] = start, end
        page = await self._client.service_jobs.list_page(
            page_token=token, marketplace_id=plan.scope, page_size=PAGE_SIZE, **filters
        )
        self.requests += 1
        return page

    def _report(self) -> None:
        if self._on_progress is None:
            return
        windows = [w for plan in self._plans for w in plan.windows]
        expected = 0
        for plan in self._plans:
            known = sum(w.jobs if w.done else max(w.expected or 0, w.jobs) for w in plan.windows)
            expected += max(known, self._totals.get(plan.scope, 0))
        self._on_progress(
            SyncProgress(
                windows=len(windows),
                windows_done=sum(w.done for w in windows),
                pages=sum(w.pages for w in windows),
                jobs=sum(w.jobs for w in windows),
                expected=expected,
                elapsed=time.monotonic() - self._started,
            )
        )


def allocate(pages: dict[str, int], windows: int) -> dict[str, int]:
    """How many windows each range gets: ``windows`` in all, in proportion to its pages.

    Every range gets at least one window and at most one per page; the windows left
    over after rounding down go to the largest remainders.
    """
    total = sum(pages.values())
    if total <= windows:
        return dict(pages)
    quotas = {scope: count * windows / total for scope, count in pages.items()}
    counts = {scope: max(1, min(pages[scope], math.floor(q))) for scope, q in quotas.items()}
    spare = windows - sum(counts.values())
    for scope in sorted(quotas, key=lambda s: quotas[s] - math.floor(quotas[s]), reverse=True):
        if spare <= 0:
            break
        if counts[scope] < pages[scope]:
            counts[scope] += 1
            spare -= 1
    return counts


def _pages_left(window: Window) -> float:
    """Pages a window still needs, as far as we know (unknown counts as most)."""
    if window.expected is None:
        return math.inf
    # ``jobs`` may undercount what was fetched (a sink skips repeats), so this errs long.
    return max(1.0, math.ceil((window.expected - window.jobs) / PAGE_SIZE))


async def _gather_limited(coros: Sequence[Coroutine[Any, Any, None]], limit: int) -> None:
    """Run coroutines at most ``limit`` at a time; the first failure stops the rest."""
    pending = list(coros)
    if not pending:
        return
    queue = deque(pending)

    async def drain() -> None:
        while queue:
            await queue.popleft()

    tasks = [asyncio.create_task(drain()) for _ in range(min(limit, len(queue)))]
    try:
        await _all_or_nothing(tasks)
    finally:
        for coro in queue:  # never started, because another failed
            coro.close()


async def _all_or_nothing(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for every task; on the first failure (or our cancellation) stop the rest.

    The first error is raised as it is, not wrapped in an ExceptionGroup, so callers can
    catch the SDK's exceptions directly.
    """
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except BaseException:
        await _cancel(tasks)
        raise
    failed = [t for t in done if not t.cancelled() and t.exception() is not None]
    if failed:
        await _cancel(tasks)
        error = failed[0].exception()
        assert error is not None
        raise error


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
