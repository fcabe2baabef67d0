"""The change feed of one seller: poll getServiceJobs, yield what is new or changed.

How a poll works, and why it neither misses nor repeats a change:

* Each marketplace has a window start ``A``.  A poll asks for every job updated at or
  after ``A`` (``lastUpdatedAfter``; no upper bound), newest first, following
  ``nextPageToken`` to the end, 20 jobs a page.
* A job in the answer is a change unless the feed remembers it with the same content
  (:mod:`._detect`).  Changes are yielded as their page arrives.  A job the last poll
  found with the very same JSON is known at once, without being decoded or hashed:
  most jobs of a poll are such, and decoding them was most of its work.
* When the poll is over, the watermark is the moment it began less :data:`MARGIN` (a
  write made before then is taken to be visible by then), and the next window starts
  :data:`DEFAULT_OVERLAP` before that (late writes, clock skew).  It never moves back,
  and never past the present.  The jobs this poll returned become the feed's window:
  any other job was last updated before ``A``, so it can only come back with a new
  update.  The window is what a resume token must hold; the feed also remembers up to
  :data:`REMEMBERED` jobs beyond it, so that one coming back unchanged is not yielded.
* With no upper bound the result set only grows while a poll pages (an update never
  takes a job out of it).  If the API's page tokens are offsets rather than cursors, a
  job entering the set, or moving to the front of it, shifts the later pages: a job
  may be read twice (the memory drops the repeat), but none is skipped, whether the
  API orders by creation or by update time, because the order is newest first.  A job
  that changes again while the poll pages is yielded again if its page is read after
  the change, and otherwise by the next poll: its new update time is inside the next
  window.

Feeds started together (hundreds of sellers in one process) would poll together, every
request of a round queued behind the others: so each feed's second poll comes after a
share of the interval drawn for that feed, and the feeds' polls spread over the interval.

Transient failures (throttling, 5xx, the network, after the client's own retries) end
the poll, not the feed: the next poll starts again from the same window, with what was
already yielded remembered, after a back-off; ``errors`` counts them and the first of
an outage is logged at WARNING.  Anything else (refused credentials, a 400) is raised.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .._routes import route
from .._validation import check_datetime, check_items, check_string
from ..errors import (
    ApiConnectionError,
    AuthenticationError,
    RateLimitError,
    ServerError,
)
from ..models.enums import SortField, SortOrder
from ..models.feed import JobChange, _Deferred
from ..resources.service_jobs import RawJobPage
from ._clock import FeedClock
from ._detect import classify, content_hash, fingerprint, job_key, raw_digest
from ._token import MarketState, decode_token, encode_token

if TYPE_CHECKING:
    from .._client import ServicesClient

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_OVERLAP",
    "FEED_SHARE",
    "MARGIN",
    "JobFeed",
    "is_transient",
    "open_feed",
]

_log = logging.getLogger("spapi_services.feed")

_LIST = "getServiceJobs"
#: The share of getServiceJobs' usage plan one marketplace's feed spends by default.
FEED_SHARE = 0.02
#: Seconds between polls by default: one request every 5 s is 2% of the published plan
#: (10 requests a second, burst 40, per application and seller), which leaves the rest
#: to the other work of the seller's plan and keeps a change's latency near 5 s.
DEFAULT_INTERVAL = 1.0 / (route(_LIST).rate * FEED_SHARE)
#: How long a write may take to show up in the API's listings.
MARGIN = timedelta(seconds=5)
#: How far before the watermark each poll looks again.
DEFAULT_OVERLAP = timedelta(minutes=2)
MIN_INTERVAL = 0.1
MAX_INTERVAL = 86_400.0
#: The longest wait between polls during an outage (or the interval, if longer).
MAX_BACKOFF = 60.0
_MAX_MARKETPLACES = 50
#: Jobs a feed remembers per marketplace, beyond those in its window: a job that left
#: the window and comes back with its content unchanged (its update time moved for a
#: reason the job does not show) is then still not a change.
REMEMBERED = 1000


#: The jobs a poll found, by id: each one's raw digest, job key and content fingerprint.
Known = dict[str, tuple[bytes, bytes, bytes]]


def _phase() -> float:
    """Where in the interval a feed's polls fall: a share of it, drawn for each feed."""
    return random.random()


def is_transient(exc: BaseException) -> bool:
    """Whether a failed poll is worth trying again later (throttled, 5xx, the network)."""
    if isinstance(exc, RateLimitError | ServerError | ApiConnectionError):
        return True
    # The token endpoint answering 429 or 5xx is an outage too, not refused credentials.
    return isinstance(exc, AuthenticationError) and (
        exc.status_code is not None and (exc.status_code == 429 or exc.status_code >= 500)
    )


def open_feed(
    client: ServicesClient,
    *,
    since: datetime | None,
    resume_token: str | None,
    marketplace_ids: Iterable[str] | None,
    interval: float | None,
    overlap: timedelta,
) -> JobFeed:
    """Check every argument, then make the feed (nothing is sent until it is iterated)."""
    if since is not None and resume_token is not None:
        raise ValueError("since / resume_token: give one of them, not both")
    if since is not None:
        check_datetime("since", since)
    every = DEFAULT_INTERVAL if interval is None else _check_interval(interval)
    if not isinstance(overlap, timedelta) or not timedelta(0) <= overlap <= timedelta(days=1):
        raise ValueError("overlap: must be a timedelta from zero to one day")
    markets = None if marketplace_ids is None else _check_marketplaces(marketplace_ids)
    states: list[MarketState] | None = None
    if resume_token is not None:
        check_string("resume_token", resume_token, min_length=1)
        states = decode_token(resume_token)
        held = [s.marketplace_id for s in states]
        if markets is not None and sorted(markets) != sorted(held):
            raise ValueError(
                f"marketplace_ids: the resume token is for {', '.join(held)}; leave "
                "marketplace_ids out, or give the same ones"
            )
        markets = held
    elif markets is None:
        markets = [client._marketplace(None)]
    return JobFeed(client, markets, states, since, every, overlap)


def _check_interval(interval: object) -> float:
    if isinstance(interval, bool) or not isinstance(interval, int | float):
        raise TypeError(f"interval: expected a number of seconds, got {type(interval).__name__}")
    if not (math.isfinite(interval) and MIN_INTERVAL <= interval <= MAX_INTERVAL):
        raise ValueError(
            f"interval: must be from {MIN_INTERVAL} to {MAX_INTERVAL:.0f} seconds, got {interval!r}"
        )
    return float(interval)


def _check_marketplaces(values: Iterable[str]) -> list[str]:
    items = check_items("marketplace_ids", values, min_items=1, max_items=_MAX_MARKETPLACES)
    for index, value in enumerate(items):
        check_string(f"marketplace_ids[{index}]", value, min_length=1, max_length=100)
        if not value.strip():
            raise ValueError(f"marketplace_ids[{index}]: must not be blank")
    if len(set(items)) != len(items):
        raise ValueError("marketplace_ids: each marketplace once")
    return list(items)


class _Poll:
    """One poll of one marketplace: the jobs it found, what it yielded, what it remembers.

    The state it starts from is only read: what the poll yields is kept apart
    (``delivered``), and a new state is made when the poll ends.
    """

    def __init__(
        self, states: tuple[MarketState, ...], index: int, began: datetime, known: Known
    ) -> None:
        self.states = states  # every marketplace's state as the poll began
        self.index = index
        self.state = states[index]
        self.began = began
        self.known_before = known  # read only
        self.known: Known = {}  # the jobs found in this poll, as they were found
        self.updates: dict[bytes, bytes] = {}  # what was yielded, by job key
        self.delivered: list[tuple[bytes, bytes]] = []  # ... and in order
        self.found: dict[bytes, bytes] = {}
        self.page_token: str | None = None
        self.done = False

    def recall(self, key: bytes) -> bytes | None:
        """The content fingerprint the feed remembers for a job, if any."""
        value = self.updates.get(key)
        return self.state.memory.get(key) if value is None else value

    def absorb(self, page: RawJobPage, seen_at: datetime) -> list[JobChange]:
        """The changes among a page's jobs; the poll moves on to the next page."""
        changes: list[JobChange] = []
        start = self.state.created_from
        for index, data in enumerate(page.jobs):
            raw = raw_digest(data)
            if self._unchanged(data, raw):
                continue
            job = page.decode(data, index)
            digest = content_hash(job)
            job_id = job.service_job_id or ""
            key, current = job_key(job_id), fingerprint(digest)
            self.known[job_id] = (raw, key, current)
            self.found[key] = current
            kind = classify(self.recall(key), current, job.create_time, start)
            if kind is None:
                continue
            self.updates[key] = current
            self.delivered.append((key, current))
            token = _Deferred(_Maker(self, len(self.delivered)))
            changes.append(
                JobChange(
                    kind=kind, job=job, seen_at=seen_at, content_hash=digest, resume_token=token
                )
            )
        self.page_token = page.next_page_token or None
        self.done = self.page_token is None
        return changes

    def _unchanged(self, data: Any, raw: bytes) -> bool:
        """Whether a job is one the last poll found with this very JSON, and remembered
        as it is: then it is no change, and is neither decoded nor hashed."""
        job_id = data.get("serviceJobId") if isinstance(data, dict) else None
        if not isinstance(job_id, str):
            return False
        known = self.known.get(job_id) or self.known_before.get(job_id)
        if known is None or known[0] != raw:
            return False
        _, key, current = known
        if self.recall(key) != current:
            return False  # forgotten, say: judged afresh
        self.known[job_id] = known
        self.found[key] = current
        return True

    def known_after(self) -> Known:
        """What the next poll may take as known: this poll's jobs (and, if it stopped
        short, the last poll's too)."""
        return self.known if self.done else {**self.known_before, **self.known}

    def remembered(self, count: int | None = None) -> MarketState:
        """The state with the first ``count`` changes yielded (all by default), window kept."""
        applied = self.delivered[:count]
        memory = _written(self.state.memory, applied)
        window = self.state.window | {key for key, _ in applied}
        state = self.state
        return MarketState(
            state.marketplace_id, state.window_start, state.created_from, memory, window
        )

    def finished(self, overlap: timedelta) -> MarketState:
        """The state after a complete poll: the window moved up, the found jobs remembered
        as the ones that may come back (see the module's docstring)."""
        watermark = self.began - MARGIN
        start = max(self.state.window_start, watermark - overlap)
        name, memory, window = self.state.marketplace_id, self.state.memory, self.state.window
        if self.delivered or self.found.keys() != window:
            memory = _written(memory, self.found.items())
            window = frozenset(self.found)
        return MarketState(name, start, self.state.window_start, memory, window)


def _written(
    memory: Mapping[bytes, bytes], entries: Iterable[tuple[bytes, bytes]]
) -> dict[bytes, bytes]:
    """A copy of ``memory`` with ``entries`` written last, the oldest beyond
    :data:`REMEMBERED` left out."""
    copy = dict(memory)
    for key, value in entries:
        copy.pop(key, None)
        copy[key] = value
    for key in list(itertools.islice(copy, max(0, len(copy) - REMEMBERED))):
        del copy[key]
    return copy


class _Maker:
    """Makes the resume token of a poll's ``count``-th change, when asked."""

    __slots__ = ("count", "poll")

    def __init__(self, poll: _Poll, count: int) -> None:
        self.poll, self.count = poll, count

    def __call__(self) -> str:
        states = list(self.poll.states)
        states[self.poll.index] = self.poll.remembered(self.count)
        return encode_token(states)


class JobFeed:
    """The changes of one seller's service jobs, as an async iterator of :class:`JobChange`.

    Made by :meth:`client.service_jobs.changes() <spapi_services.resources.ServiceJobs.changes>`.
    It polls only while it is being iterated, and between two changes it holds nothing
    but its own state: breaking out of the loop, cancelling the task or a deadline
    leaves no task and no open response behind.  ``async with`` (or :meth:`aclose`)
    finishes it at once.

    ``polls``, ``requests``, ``changes`` and ``errors`` count complete polls, pages
    fetched, changes yielded and failed polls (transient failures, which the feed
    outlasts); ``last_error`` is the most recent of those.  :attr:`resume_token` says
    where the feed stands now.
    """

    def __init__(
        self,
        client: ServicesClient,
        marketplace_ids: Sequence[str],
        states: Sequence[MarketState] | None,
        since: datetime | None,
        interval: float,
        overlap: timedelta,
    ) -> None:
        self._client = client
        self._marketplace_ids = tuple(marketplace_ids)
        self._states: list[MarketState] | None = list(states) if states is not None else None
        self._since = since
        self.interval = interval
        """Seconds from the start of one poll to the start of the next (from the first
        poll to the second: a share of it drawn for the feed, so that feeds started
        together spread their polls over the interval)."""
        self.overlap = overlap
        """How far before the watermark each poll looks again."""
        self._clock = FeedClock(client._core.transport.timer)
        self._phase = _phase()
        self._token: _Deferred | None = None
        # Per marketplace, the jobs of its last poll as found (see ``_Poll._unchanged``).
        self._known: list[Known] = [{} for _ in self._marketplace_ids]
        self._iterator: AsyncGenerator[JobChange, None] | None = None
        self.polls = 0
        self.requests = 0
        self.changes = 0
        self.errors = 0
        self.last_error: BaseException | None = None

    def __repr__(self) -> str:
        return (
            f"<JobFeed {','.join(self._marketplace_ids)} every {self.interval:g}s: "
            f"{self.polls} polls, {self.changes} changes, {self.errors} errors>"
        )

    @property
    def marketplace_ids(self) -> tuple[str, ...]:
        """The marketplaces the feed polls."""
        return self._marketplace_ids

    @property
    def resume_token(self) -> str:
        """Where the feed stands: after the last change it yielded and the last poll it
        finished.  Resuming from it yields every change not yielded yet."""
        if self._token is None:
            self._token = _Deferred(self._state_token(self._started()))
        return self._token.get()

    def _started(self) -> list[MarketState]:
        if self._states is None:
            start = self._since if self._since is not None else self._clock.wall()
            self._states = [MarketState(m, start, start, {}) for m in self._marketplace_ids]
        return self._states

    @staticmethod
    def _state_token(states: Sequence[MarketState]) -> _StateToken:
        return _StateToken(tuple(states))

    # --- the async iterator ---------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> JobChange:
        if self._iterator is None:
            self._iterator = self._run()
        return await anext(self._iterator)

    async def aclose(self) -> None:
        """Stop the feed; iterating it again ends at once.  (To stop a feed that another
        task is iterating, cancel that task: the poll in flight is cancelled with it.)"""
        if self._iterator is None:
            self._iterator = self._run()
        await self._iterator.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self) -> AsyncGenerator[JobChange, None]:
        states = self._started()
        failures = 0
        while True:
            began = self._clock.monotonic()
            failed: BaseException | None = None
            for index in range(len(states)):
                poll = _Poll(tuple(states), index, self._clock.wall(), self._known[index])
                while not poll.done:
                    try:
                        page = await self._fetch(poll)
                    except Exception as exc:
                        if not is_transient(exc):
                            raise
                        failed = exc
                        break
                    for change in poll.absorb(page, self._clock.wall()):
                        self._token = change._token
                        self.changes += 1
                        yield change
                states[index] = poll.finished(self.overlap) if poll.done else poll.remembered()
                self._known[index] = poll.known_after()
                self._token = None
            if failed is not None:
                failures += 1
                wait = self._failed(failed, failures)
            else:
                if failures:
                    _log.info("%s: polls succeed again after %d failed", self._name, failures)
                failures = 0
                self.polls += 1
                # The second poll comes at this feed's own phase of the interval, so that
                # feeds started together do not go on polling together.
                share = self._phase if self.polls == 1 else 1.0
                wait = self.interval * share - (self._clock.monotonic() - began)
            if wait > 0:
                await self._clock.sleep(wait)

    async def _fetch(self, poll: _Poll) -> RawJobPage:
        page = await self._client.service_jobs._raw_page(
            marketplace_id=poll.state.marketplace_id,
            last_updated_after=poll.state.window_start,
            page_token=poll.page_token,
            sort_field=SortField.JOB_DATE,
            sort_order=SortOrder.DESC,
        )
        self.requests += 1
        return page

    @property
    def _name(self) -> str:
        return f"service-job feed {','.join(self._marketplace_ids)} ({self._client.plan_scope})"

    def _failed(self, exc: BaseException, failures: int) -> float:
        """Count a failed poll, say so once per outage, and return the wait before the next."""
        self.errors += 1
        self.last_error = exc
        ceiling = max(MAX_BACKOFF, self.interval)
        wait: float = min(self.interval * 2.0 ** min(failures - 1, 16), ceiling)
        wait *= random.uniform(0.8, 1.0)  # feeds failing together do not retry together
        if failures == 1:
            _log.warning(
                "%s: a poll failed (%s: %s); retrying with back-off until it succeeds "
                "(logged once per outage; the feed's errors counts every failure)",
                self._name,
                type(exc).__name__,
                exc,
            )
        return wait


class _StateToken:
    """Makes the token of states between polls, when asked."""

    __slots__ = ("states",)

    def __init__(self, states: tuple[MarketState, ...]) -> None:
        self.states = states

    def __call__(self) -> str:
        return encode_token(self.states)
