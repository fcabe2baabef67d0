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

Whatever the page tokens are, a window's pages must end holding every job that was in
the window when its pass began and is still there at its end.  Keyset tokens give that;
offset tokens do not when a job leaves the result set mid-pass (every later page shifts
by one, and a job slides back unseen).  So each pass records the window's
``totalResultSize`` on its first page and watches it on every later page: when it has
shrunk since the page before, the jobs just before the new page (where a job would have
slid to) are fetched by its previous-page token, back to one the pass had seen.  After
the last page the first page is asked for once more (the check, right away, by the same
worker): when its size moved the wrong way since, the last page is asked for again, to
tell a change made after the pages (its size moved too: nothing to redo) from sizes
counted once per search that hid changes (it did not: the window is paged again, cut
into pieces when it is large, since smaller pieces each pass through sooner with fewer
changes).  The pending check is stored in place of the window's page token, so a
resumed run never skips it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs

from .. import _serde
from .._client import ServicesClient
from .._validation import check_datetime, check_id, check_int, check_items
from ..errors import BadRequestError
from ..feed._detect import content_hash
from ..models.enums import SortField, SortOrder
from ..models.feed import JobChange
from ..models.jobs import JobListing, ServiceJob
from ..resources.service_jobs import JobFilters
from ._buyer import BuyerData, BuyerDataPolicy, BuyerKeyLike, ErasedBuyers, erase_record
from ._plan import (
    CHECK_PENDING,
    CUT,
    Mode,
    SyncPlan,
    Window,
    cut,
    format_time,
    pieces_allowed,
    split,
)
from ._sink import ChangeSink, Sink, SinkState, job_from_record, job_record

__all__ = [
    "DEFAULT_OVERLAP",
    "DEFAULT_WINDOWS",
    "ChangeCallback",
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
#: Page tokens of one window the API may refuse in a row before the run gives up.
MAX_REFUSALS = 3
#: Passes of one window (and the pieces it is cut into) that may each find its result
#: set changed before the run gives up: a sign that the API's sizes are not exact.
MAX_PASSES = 30


@attrs.frozen(kw_only=True)
class SyncProgress:
    """Where a sync stands, handed to ``on_progress`` after every stored page.

    ``jobs`` and ``pages`` count whole runs, resumptions included; ``expected`` adds up
    the API's ``totalResultSize`` of the windows that have reported one, so it grows
    during the first round of pages.
    """

    #: Windows the sync pages, in every marketplace (a window cut into pieces counts each piece).
    windows: int
    #: Windows paged to the end and checked.
    windows_done: int
    #: Pages stored so far, an interrupted run's included.
    pages: int
    #: Jobs stored so far, an interrupted run's included.
    jobs: int
    #: The jobs the API said the windows hold (their ``totalResultSize``), once their first pages
    #: have told.
    expected: int
    #: Seconds since the sync began.
    elapsed: float


@attrs.frozen(kw_only=True)
class RunSummary:
    """One marketplace's run within a sync: its mode, its range, what it fetched.

    ``windows`` counts the windows the range was paged in: a window cut into pieces
    after its result set changed counts, and so does each piece.
    """

    #: The marketplace id.
    scope: str
    #: ``created`` for a run over creation times (a first or full sync), ``updated`` for one over
    #: last updates.
    mode: str
    #: Whether the run was an interrupted one, finished now.
    resumed: bool
    #: The start of its time range.
    start: datetime
    #: The end of its time range: now the marketplace's checkpoint.
    end: datetime
    #: Windows the range was paged in.
    windows: int
    #: Pages this sync stored.
    pages: int
    #: Jobs this sync stored.
    jobs: int
    #: Jobs stored that were changes: new to the sink, or stored with other content.
    changes: int = 0


@attrs.frozen(kw_only=True)
class SyncReport:
    """What a call to :func:`sync_jobs` did.

    ``pages`` and ``jobs`` count what this call stored (pages stored by an interrupted
    call before are not included); ``requests`` is the getServiceJobs calls that
    succeeded: the pages, the checks and look-backs, plus the first page of each large
    range, which is fetched to size the range and then again by its first window.
    ``checks`` are the requests that asked for a window's first page again after its
    last, to see whether its result set changed while it was paged (one per window of
    more than one page: the fixed price of completeness), and its last page again when
    it had (to tell whether the change came after the pages).  The rest is the price
    of jobs that moved: ``looked_back`` counts the pages fetched just before a page
    whose result set had shrunk since the page before it (about one per change seen
    mid-pass), and ``repeated`` the pages fetched in passes that were then started
    again (the pages' sizes had hidden a change, or a page token was refused).  Retries
    after throttling or errors happen inside the client and are not counted here.
    ``runs`` has one :class:`RunSummary` per marketplace; each run's ``end`` is now its
    checkpoint.  ``changes`` counts the jobs stored that were changes: new to the sink,
    or stored with other content (each handed to ``on_change``); it stays 0 with a sink
    that does not tell changes (not a :class:`~spapi_services.sync.ChangeSink`).
    """

    #: One summary per marketplace.
    runs: tuple[RunSummary, ...]
    #: Windows paged, in every marketplace.
    windows: int
    #: Pages stored by this call.
    pages: int
    #: Jobs stored by this call.
    jobs: int
    #: getServiceJobs calls that succeeded: pages, checks, look-backs and repeats.
    requests: int
    #: Seconds the call took.
    elapsed: float
    #: Requests that asked for a window's first page again after its last, to see whether jobs moved
    #: while it was paged.
    checks: int = 0
    #: Pages fetched again just before a page whose result set had shrunk since the one before it.
    looked_back: int = 0
    #: Pages fetched in passes that were started again (jobs moved under them, or a page token was
    #: refused).
    repeated: int = 0
    #: Jobs stored that were changes: new to the sink, or stored with other content.
    changes: int = 0

    @property
    def resumed(self) -> bool:
        """Whether any marketplace's run was an interrupted one, finished now."""
        return any(run.resumed for run in self.runs)

    @property
    def requests_per_second(self) -> float:
        """Successful requests per second of wall time."""
        return self.requests / self.elapsed if self.elapsed > 0 else 0.0


ProgressCallback = Callable[[SyncProgress], None]
#: What ``on_change`` is: an async callable awaited with each change once it is stored.
ChangeCallback = Callable[[JobChange], Awaitable[object]]


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
    on_change: ChangeCallback | None = None,
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
    loses and repeats nothing.  ``on_progress`` is called after every stored page.

    Page tokens may be keyset cursors or offsets, and may expire: a window of more than
    one page is checked after its last page (its first page once more: if its
    ``totalResultSize`` shows that jobs left it while it was paged, a later page may
    have skipped one, and the window is paged again, cut smaller when it is large), and
    a refused page token starts its window again from its first page.  A marketplace's
    checkpoint advances only when all of its windows are checked.  See the sync guide
    for what the sync assumes of the API.

    ``buyer_data`` says what the sink stores of each buyer's personal data (id, name,
    phone, the service address, a linked vehicle): ``"keep"`` (the default) as sent,
    ``"encrypt"`` encrypted with ``buyer_key`` (AES-256-GCM), ``"hash"`` as keyed hashes
    (HMAC-SHA256 with ``buyer_key``), ``"drop"`` not at all.  ``buyer_key`` defaults to
    the sink's own ``buyer_key``; with a ring of keys, the first protects.  A buyer the
    sink has forgotten (``forget_buyer``) is stored without personal data whatever the
    mode.  Jobs already stored keep the form they were written in until rewritten
    (``rewrite_buyer_data`` on the sink, or a later sync of the job).

    ``on_change`` is awaited with each :class:`~spapi_services.feed.JobChange` (a job
    new to the sink, ``created``, or stored with another content hash, ``updated``)
    once its page is stored, one call at a time, in the order the pages were stored.
    The change's ``job`` is the job as the sink now holds it (buyer data as
    ``buyer_data`` left it, encrypted values decrypted: under ``"keep"``, the job as
    fetched).  Its ``content_hash`` is what the sink keeps to tell the next change: under
    ``"keep"`` the hash of the job as fetched, so its ``change_id`` is the one a change
    feed gives the same change; under the other modes the hash of the job without its
    buyer's personal data (which the sink does not keep, so keeps no hash of either),
    and a change of the buyer's data alone is no change.  ``resume_token`` is empty.
    A slow callback slows the sync (no page is stored while it runs).  An
    exception from it stops the sync as any error does, and is raised: its page is
    stored, so the sink holds that change and the rest of the page's, and a later sync
    does not report them again.  A crash between a page's commit and its callbacks
    loses those calls the same way: ``on_change`` is at most once per change.  For
    at-least-once, use :class:`~spapi_services.sync.PostgresSink`, whose outbox records
    every change in the page's own transaction.  The sink must be a
    :class:`~spapi_services.sync.ChangeSink` (every sink of the SDK is).

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
    reports_changes = isinstance(sink, ChangeSink)
    if on_change is not None:
        if not callable(on_change):
            raise TypeError(
                f"on_change: expected an async callable, got {type(on_change).__name__}"
            )
        if not reports_changes:
            raise TypeError(
                f"on_change: {type(sink).__name__} does not tell which jobs are changes "
                "(it is not a ChangeSink: it lacks write_page_changes); use SqliteSink, "
                "JsonlSink or PostgresSink, or implement ChangeSink"
            )

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
        if reports_changes:
            run.changed = _Changes(on_change, _revealer(policy), _hasher(policy))
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
            changes=run.changes_of[plan.scope],
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
        checks=run.checks,
        looked_back=run.looked_back,
        repeated=run.repeated,
        changes=sum(run.changes_of.values()),
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


def _revealer(policy: BuyerDataPolicy) -> Callable[[ServiceJob], ServiceJob]:
    """How a stored job becomes the job a change hands over: encrypted values decrypted
    (the other policies store nothing a key could give back)."""
    if policy.mode != "encrypt":
        return _same
    keys = policy.keys

    def reveal(job: ServiceJob) -> ServiceJob:
        return job_from_record(job_record(job), keys)

    return reveal


def _same(job: ServiceJob) -> ServiceJob:
    return job


def _hasher(policy: BuyerDataPolicy) -> Callable[[ServiceJob], str]:
    """What tells a change of a job as stored: its content hash.

    Kept as sent, the job as stored is the job as fetched (a forgotten buyer's aside),
    so its hash is the one a change feed gives it.  Otherwise the hash leaves the
    buyer's personal data out: a hash of it, kept beside a job stored without it, would
    let whoever holds the mirror confirm a guess of a buyer's name, phone and address
    (and an encrypted value differs at every write).  A change of the buyer's data alone
    is then no change to such a mirror.
    """
    if policy.mode == "keep":
        return content_hash
    return _hash_without_buyer


def _hash_without_buyer(job: ServiceJob) -> str:
    return content_hash(erase_record(job_record(job)))


@attrs.define
class _Changes:
    """What a run does with the changes its sink reports."""

    callback: ChangeCallback | None
    reveal: Callable[[ServiceJob], ServiceJob]
    hash_of: Callable[[ServiceJob], str]

    async def hand_over(self, changes: Sequence[JobChange]) -> None:
        if self.callback is None:
            return
        for change in changes:
            job = self.reveal(change.job)
            if job is not change.job:
                change = attrs.evolve(change, job=job)
            outcome = self.callback(change)
            if not inspect.isawaitable(outcome):
                raise TypeError(
                    f"on_change: must be an async callable (it returned "
                    f"{type(outcome).__name__}, not an awaitable)"
                )
            await outcome


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


@attrs.define(eq=False)
class _Track:
    """What a run knows of a window beyond its stored progress (in memory only).

    The track holds the window itself, so the window's ``id`` stays its own for the
    whole run, even after the window is dropped from its plan.
    """

    window: Window
    busy: bool = False
    pass_pages: int = 0
    """Pages of the window's current pass fetched by this run."""
    seen: set[str] = attrs.Factory(set)
    """Ids of the jobs the current pass has fetched (in this run)."""
    last_token: str | None = None
    """The token the pass's latest page was fetched with (``None``: its first page)."""
    last_total: int | None = None
    """The ``totalResultSize`` the pass's latest page reported."""
    peak: int | None = None
    """The largest ``totalResultSize`` a page of the current pass reported."""
    refusals: int = 0
    """Page tokens refused in a row."""
    passes: int = 0
    """Passes started again because the result set moved, in this window's line."""


class _Run:
    """The pages of some plans, fetched by a pool of workers, each window checked."""

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
        self._tracks: dict[int, _Track] = {}
        self._freed = asyncio.Event()
        self._sink_lock = asyncio.Lock()
        self._totals: dict[str, int] = {}
        self._surveyed: dict[str, tuple[JobListing, str]] = {}
        self._unchecked_warned = False
        self.pages = 0
        self.jobs = 0
        self.requests = 0
        self.checks = 0
        self.looked_back = 0
        self.repeated = 0
        self.pages_of = {plan.scope: 0 for plan in plans}
        self.jobs_of = {plan.scope: 0 for plan in plans}
        self.changes_of = {plan.scope: 0 for plan in plans}
        #: Set when the sink reports changes (a ChangeSink).
        self.changed: _Changes | None = None
        self.protect: Callable[[Sequence[ServiceJob]], Sequence[ServiceJob]] = _as_is

    async def execute(self, workers: int) -> None:
        """Survey the new plans, cut them into windows, then fetch every pending page."""
        self._report()
        for plan in self._plans:
            if not plan.pending:  # interrupted after its last check, before its checkpoint
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
            await self._begin_pass(plan, window, page)
            return
        self._totals[plan.scope] = page.total_result_size
        self._surveyed[plan.scope] = (page, token)

    async def _cut(self, plans: Sequence[SyncPlan]) -> None:
        """Cut the surveyed plans into windows, in proportion to their sizes."""
        pages = {p.scope: max(1, math.ceil(self._totals[p.scope] / PAGE_SIZE)) for p in plans}
        counts = allocate(pages, self._windows)
        for plan in plans:
            count = counts[plan.scope]
            page, _ = self._surveyed.pop(plan.scope)
            if count == 1:
                # One window: it is the surveyed range, so the survey is its first page.
                await self._begin_pass(plan, plan.windows[0], page)
                continue
            plan.windows = split(plan.start, plan.end, count)
            async with self._sink_lock:
                await self._sink.begin(plan)
            self._report()

    # --- handing out windows ----------------------------------------------------------

    def _track(self, window: Window) -> _Track:
        track = self._tracks.get(id(window))
        if track is None:
            track = self._tracks[id(window)] = _Track(window)
        return track

    def _next_window(self) -> Window | None:
        best: _Track | None = None
        best_rank = -1.0
        for plan in self._plans:
            for window in plan.windows:
                if window.done:
                    continue
                track = self._track(window)
                if track.busy:
                    continue
                rank = _priority(window, track)
                if rank > best_rank:
                    best, best_rank = track, rank
        if best is None:
            return None
        best.busy = True
        return best.window

    async def _worker(self) -> None:
        """Take windows until every window is done, waiting while all left are taken.

        A worker with nothing to take waits rather than ends: a window cut into pieces
        brings new windows to take, at any time.
        """
        while True:
            window = self._next_window()
            if window is None:
                if not any(plan.pending for plan in self._plans):
                    return
                self._freed.clear()
                await self._freed.wait()
                continue
            try:
                await self._take(window)
            finally:
                self._freed.set()

    async def _take(self, window: Window) -> None:
        """Fetch and store the next page of a window :meth:`_next_window` handed out.

        A pass's last page is followed at once by the window's check: the sooner it
        comes, the fewer changes made after the pages were fetched (harmless, but each
        costs the check a request more to tell) fall in between.
        """
        try:
            await self._step(window)
            if window.checking:
                await self._step(window)
        finally:
            self._track(window).busy = False

    def _plan_of(self, window: Window) -> SyncPlan:
        for plan in self._plans:
            if any(w is window for w in plan.windows):
                return plan
        raise LookupError(f"window {window.index} belongs to no plan")

    # --- a window's passes ------------------------------------------------------------

    async def _step(self, window: Window) -> None:
        plan = self._plan_of(window)
        if window.checking:
            await self._check(plan, window)
            return
        token = window.page_token
        try:
            page = await self._fetch(plan, window, token)
        except BadRequestError as error:
            if token is None:
                raise
            self._refused(plan, window, error)
            page = await self._fetch(plan, window, None)
            token = None
        if token is None:
            await self._begin_pass(plan, window, page)
        else:
            self._track(window).refusals = 0
            await self._continue_pass(plan, window, page, token)

    def _refused(self, plan: SyncPlan, window: Window, error: BadRequestError) -> None:
        """A page token the API refused: the window starts again from its first page.

        Tokens expire (a run resumed after a long stop holds old ones), and a refused
        token cannot be told from one that never worked.  Refused again and again in a
        row, the tokens expire faster than the window's pages come: that is an error.
        """
        track = self._track(window)
        track.refusals += 1
        self.repeated += track.pass_pages
        if track.refusals > MAX_REFUSALS:
            error.add_note(
                f"spapi_services.sync: the API refused {track.refusals} page tokens of window "
                f"{window.index} of {plan.scope} in a row: its tokens expire before the next "
                "page is asked for (fewer windows, or a higher concurrency, fetch each "
                "window's pages sooner)"
            )
            raise error
        _log.warning(
            "%s: the API refused the page token of window %d (expired?); "
            "paging the window again from its first page",
            plan.scope,
            window.index,
        )

    async def _begin_pass(self, plan: SyncPlan, window: Window, page: JobListing) -> None:
        """Store the first page of a pass through a window: its size is the pass's baseline.

        A pass of one page is complete as it is (a page is one answer, of one moment), so
        the window is done; otherwise its check is due after its last page.
        """
        track = self._track(window)
        track.pass_pages = 1
        track.seen = _ids(page.jobs)
        track.last_token, track.last_total = None, page.total_result_size
        track.peak = window.expected = page.total_result_size
        await self._store(plan, window, page.jobs or (), page.next_page_token or None)

    async def _continue_pass(
        self, plan: SyncPlan, window: Window, page: JobListing, token: str
    ) -> None:
        """Store the next page of a pass (fetched with ``token``); if the result set
        shrank since the page before, first fetch what may have slid back past the
        boundary between them."""
        track = self._track(window)
        track.pass_pages += 1
        total = page.total_result_size
        track.last_token, track.last_total = token, total
        jobs: list[ServiceJob] = list(page.jobs or ())
        peak = window.expected if track.peak is None else track.peak
        if _moved(plan.mode, window.expected, peak, total):
            lost = abs((window.expected or 0) - (total or 0))
            behind = await self._look_back(plan, window, page, lost)
            if behind is None:
                await self._again(plan, window, lost, None)
                return
            # The pass goes on from here, as if it had begun with this page's size.
            jobs = _unique([*jobs, *behind])
            window.expected = peak = total
        if total is not None:
            track.peak = total if peak is None else max(peak, total)
        track.seen.update(_ids(jobs))
        await self._store(plan, window, jobs, page.next_page_token or CHECK_PENDING)

    async def _look_back(
        self, plan: SyncPlan, window: Window, page: JobListing, lost: int
    ) -> list[ServiceJob] | None:
        """The jobs just before ``page``, back to one the pass has already fetched.

        ``lost`` jobs left the result set after the page before ``page`` was served.
        With offset tokens every job after one that left moves one place back, so as
        many jobs slid back across the boundary between the two pages, unseen; with
        keyset tokens none did.  Either way they are among the jobs just before
        ``page``, which its previous-page token points at.  Pages are followed back
        until one holds a job the pass fetched before: everything between that job and
        ``page`` is then in hand.  ``None`` when that cannot be shown (no previous-page
        token, or no such job within ``lost`` jobs and a page): the window is then paged
        again.
        """
        track = self._track(window)
        token = page.previous_page_token or None
        found: list[ServiceJob] = []
        for _ in range(math.ceil(lost / PAGE_SIZE) + 1):
            if token is None:
                return None
            back = await self._fetch(plan, window, token)
            self.looked_back += 1
            found.extend(back.jobs or ())
            if not track.seen.isdisjoint(_ids(back.jobs)):
                _log.debug(
                    "%s: %d jobs left window %d during its pass; the jobs before its page "
                    "%d fetched again",
                    plan.scope,
                    lost,
                    window.index,
                    track.pass_pages,
                )
                return found
            token = back.previous_page_token or None
        return None

    async def _check(self, plan: SyncPlan, window: Window) -> None:
        """A window's first page again, after its last: did its result set change?

        An updated-range window's jobs can only leave it while it is paged (a job
        updated now moves past the window's end), and a created-range window's can only
        grow (by jobs created now, which the next run fetches); either way the pass saw
        every job still there if the size is what it was when the pass began (or, by
        creation, no smaller than the largest seen).  If it is not, the window is paged
        again, cut smaller when it is large enough to be.
        """
        page = await self._fetch(plan, window, None)
        self.checks += 1
        track = self._track(window)
        total = page.total_result_size
        if window.expected is None or total is None:
            if not self._unchecked_warned:
                self._unchecked_warned = True
                _log.warning(
                    "%s: the API gave no totalResultSize: window %d cannot be checked, "
                    "its pages are taken as complete",
                    plan.scope,
                    window.index,
                )
        else:
            peak = window.expected if track.peak is None else max(track.peak, window.expected)
            if _moved(plan.mode, window.expected, peak, total) and not (
                await self._counted_afresh(plan, window)
            ):
                await self._again(plan, window, abs(window.expected - total), page)
                return
        await self._store(plan, window, None, None)

    async def _counted_afresh(self, plan: SyncPlan, window: Window) -> bool:
        """Whether the API counts the result set afresh for every page, not once per search.

        A check that finds the size changed cannot tell by itself whether the change
        came after the last page (harmless: every change before it showed in a page's
        size and was looked back over) or the pages' sizes were counted once, when the
        search began, and hid changes.  The last page's token asked for again tells: a
        size counted once comes back the same, one counted afresh has moved with the
        check's.  One request, instead of the window again.
        """
        track = self._track(window)
        if track.last_token is None or track.last_total is None:
            return False  # resumed: the pass's pages were fetched before
        try:
            probe = await self._fetch(plan, window, track.last_token)
        except BadRequestError:
            return False  # the token expired: no way to tell
        self.checks += 1
        return probe.total_result_size is not None and probe.total_result_size != track.last_total

    async def _again(
        self, plan: SyncPlan, window: Window, lost: int, first: JobListing | None
    ) -> None:
        """Page a window whose result set changed again: cut into pieces, or as it is.

        A window's chance of changing during a pass grows with its jobs and with the
        pass's length, so the pieces are made small enough that each has an even chance
        of coming through unchanged at the rate of change just seen.  ``first`` is a
        first page of the window fetched just now (by the check), which starts the new
        pass when the window is not cut.
        """
        track = self._track(window)
        self.repeated += track.pass_pages
        track.passes += 1
        if track.passes > MAX_PASSES:
            raise RuntimeError(
                f"sync of {plan.scope}: window {window.index} "
                f"({format_time(window.query_start)} to {format_time(window.query_end)}) "
                f"changed during each of its last {MAX_PASSES} passes; the API's "
                "totalResultSize may not count its result set exactly"
            )
        count = _pieces(window, lost, track.pass_pages)
        if count >= 2:
            pieces = cut(window, count, len(plan.windows))
            for piece in pieces:
                self._track(piece).passes = track.passes
            window.page_token, window.done = CUT, True
            track.pass_pages = 0
            plan.windows.extend(pieces)
            async with self._sink_lock:
                await self._sink.begin(plan)  # the same run, with the pieces in it
            _log.info(
                "%s: %d jobs left window %d while it was paged; paging it again as %d windows",
                plan.scope,
                lost,
                window.index,
                count,
            )
            self._report()
            return
        _log.info(
            "%s: %d jobs left window %d while it was paged; paging it again",
            plan.scope,
            lost,
            window.index,
        )
        if first is None:
            first = await self._fetch(plan, window, None)
        await self._begin_pass(plan, window, first)

    async def _store(
        self,
        plan: SyncPlan,
        window: Window,
        jobs: Sequence[ServiceJob] | None,
        token: str | None,
    ) -> None:
        """Store a page's jobs (``None`` for a check) and the window's progress, at once."""
        protected = self.protect(jobs) if jobs else ()
        async with self._sink_lock:
            if self.changed is None:
                written = await self._sink.write_page(plan, window, protected, token)
            else:
                assert isinstance(self._sink, ChangeSink)
                hashes = [self.changed.hash_of(job) for job in protected]
                page = await self._sink.write_page_changes(plan, window, protected, token, hashes)
                written = page.written
                self.changes_of[plan.scope] += len(page.changes)
                await self.changed.hand_over(page.changes)
            window.page_token = token
            window.done = token is None
            window.pages += 1
            window.jobs += written
            if window.done and not plan.pending:
                await self._finish(plan)
        if jobs is not None:
            self.pages += 1
            self.pages_of[plan.scope] += 1
        self.jobs += written
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
        windows = [w for plan in self._plans for w in plan.windows if not w.superseded]
        expected = 0
        for plan in self._plans:
            known = sum(
                w.jobs if w.done else max(w.expected or 0, w.jobs)
                for w in plan.windows
                if not w.superseded
            )
            expected += max(known, self._totals.get(plan.scope, 0))
        self._on_progress(
            SyncProgress(
                windows=len(windows),
                windows_done=sum(w.done for w in windows),
                pages=sum(w.pages for plan in self._plans for w in plan.windows),
                jobs=sum(w.jobs for plan in self._plans for w in plan.windows),
                expected=expected,
                elapsed=time.monotonic() - self._started,
            )
        )


def _ids(jobs: Sequence[ServiceJob] | None) -> set[str]:
    return {job.service_job_id for job in jobs or () if job.service_job_id}


def _unique(jobs: Sequence[ServiceJob]) -> list[ServiceJob]:
    """``jobs`` with each id once, at its last place (the latest fetched)."""
    latest: dict[str, ServiceJob] = {}
    anonymous: list[ServiceJob] = []
    for job in jobs:
        if job.service_job_id:
            latest.pop(job.service_job_id, None)
            latest[job.service_job_id] = job
        else:
            anonymous.append(job)
    return [*anonymous, *latest.values()]


def _moved(mode: Mode, baseline: int | None, peak: int | None, total: int | None) -> bool:
    """Whether a window's result set changed in a way that can hide a job from a pass.

    By last update, jobs only leave a window while it is paged, so any change of its
    size counts.  By creation, new jobs may join a window that ends in the present,
    which shifts pages forward (a job is fetched twice, none skipped); only a smaller
    size than the largest seen counts.
    """
    if baseline is None or total is None:
        return False
    if mode is Mode.UPDATED:
        return total != baseline
    return total < (baseline if peak is None else peak)


def _pieces(window: Window, lost: int, pass_pages: int) -> int:
    """How many pieces to page a changed window again in (1: as it is).

    ``lost`` jobs left while ``pass_pages`` pages were fetched.  A piece of ``p`` of the
    window's ``P`` pages holds ``p/P`` of its jobs and takes ``p/P`` of the time to page,
    so it sees about ``lost/pass_pages × p²/P`` changes: under one half when the window
    is cut into ``√(2 × lost/pass_pages × P)`` pieces.
    """
    pages = math.ceil((window.expected or 0) / PAGE_SIZE)
    if pages < 2:
        return 1
    wanted = math.ceil(math.sqrt(2 * max(1, lost) / max(1, pass_pages) * pages))
    count = min(max(2, wanted), pages, pieces_allowed(window))
    return count if count >= 2 else 1


def _priority(window: Window, track: _Track) -> float:
    """Which free window goes next: checks first, then windows not started, then the
    window with the most pages left."""
    if window.checking:
        return math.inf
    if window.expected is None:
        return 1e12  # not started: its first page tells how big it is
    fetched = track.pass_pages or window.pages
    return max(1.0, math.ceil(window.expected / PAGE_SIZE) - fetched)


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
