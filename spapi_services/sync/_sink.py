"""What the sync engine asks of a place to keep jobs, and the thread that sinks write on.

A sink stores three things and must store the second and third together: the
checkpoint of each scope (how far the last complete run got), the jobs of each page,
and the progress of the window the page came from.  Because a page's jobs and its
window's next page token are committed at once, a run stopped at any point resumes from
the first page not stored, and no page is ever stored twice.

The jobs a sink is handed are already as the mirror keeps them: the engine applies the
buyer-data policy (see :mod:`._buyer`) before any sink sees a job, so a sink stores
what it gets and need not know about keys.  :class:`MirrorSink` adds what every mirror
offers its users: reading jobs back (decrypted with the sink's ``buyer_key``), pruning
closed jobs, forgetting a buyer, and rewriting the buyer data under another policy.
A :class:`ChangeSink` also tells which of a page's jobs were changes (new to it, or
stored with other content), which ``sync_jobs(on_change=...)`` needs; every sink of the
SDK is one.  :class:`ThreadedSink` is a :class:`MirrorSink` whose store is reached by blocking calls
(a file), run on a thread of its own; a sink over an asyncio driver (PostgreSQL) is a
:class:`MirrorSink` directly.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar, runtime_checkable

import attrs

from .. import _serde
from .._validation import check_id
from ..feed._detect import content_hash
from ..models.feed import ChangeKind, JobChange
from ..models.jobs import ServiceJob
from ._buyer import (
    CLOSED_STATUSES,
    BuyerData,
    BuyerDataPolicy,
    BuyerKeyLike,
    BuyerKeys,
    ErasedBuyers,
    as_keys,
    reveal_record,
)
from ._plan import SyncPlan, Window

__all__ = [
    "ChangeSink",
    "MirrorSink",
    "PageWrite",
    "RewriteReport",
    "Sink",
    "SinkState",
    "ThreadedSink",
    "job_from_record",
    "job_record",
]

T = TypeVar("T")
_S = TypeVar("_S", bound="MirrorSink")

#: Jobs read from the store per trip to it (to the sink's thread, or the database).
READ_BATCH = 200


@attrs.frozen(kw_only=True)
class SinkState:
    """What a sink holds for a scope when a run starts.

    ``checkpoint`` is the end of the last complete run (``None`` before the first), and
    ``plan`` an unfinished run to resume (``None`` when the last run completed).
    ``erased`` are the buyers the store has forgotten: the engine stores none of their
    data again.
    """

    #: The end of the scope's last complete run (``None`` before the first).
    checkpoint: datetime | None = None
    #: An unfinished run to resume (``None`` when the last run completed).
    plan: SyncPlan | None = None
    #: The buyers the sink has forgotten, whose data is never stored again.
    erased: ErasedBuyers = attrs.field(factory=ErasedBuyers)


@attrs.frozen(kw_only=True)
class RewriteReport:
    """What :meth:`ThreadedSink.rewrite_buyer_data` did.

    ``jobs`` were rewritten; ``stale_hashes`` still hold keyed hashes made with a key
    other than the current one (a hash cannot be re-keyed: those values change when the
    job is synced again with ``full=True``, or its buyer is forgotten).
    """

    #: Jobs whose buyer data was rewritten.
    jobs: int
    #: Jobs still holding keyed hashes made with another key than the current one.
    stale_hashes: int


class Sink(Protocol):
    """Where :func:`~spapi_services.sync.sync_jobs` puts jobs and its progress.

    The engine calls :meth:`open` first and :meth:`close` last, whatever happens in
    between, and never calls two of the other methods at the same time.  A sink holds
    any number of scopes (marketplaces), each with its own checkpoint and run.

    **A fenced sink** (one that several processes may write for the same seller, such
    as :class:`~spapi_services.sync.PostgresSink` given a fencing token) promises that
    :meth:`begin`, :meth:`write_page` and :meth:`finish` each check, in the same commit
    as their write, that the token the sink holds is still the newest issued for its
    seller; when it is not, the call raises :class:`~spapi_services.FencedOut` and
    writes nothing (no row, no progress, no checkpoint).  The engine lets that error
    through unchanged, once the other pages in flight are stopped: the stale sync ends
    there, and what the newer one stored stands.  The file sinks
    (:class:`~spapi_services.sync.SqliteSink`, :class:`~spapi_services.sync.JsonlSink`)
    are not fenced: their files belong to one process at a time.
    """

    async def open(self) -> None:
        """Open (or create) the store."""
        ...

    async def state(self, scope: str) -> SinkState:
        """What the store holds for ``scope``: its checkpoint and any unfinished run."""
        ...

    async def begin(self, plan: SyncPlan) -> None:
        """Record a new run (replacing any unfinished one of the same scope)."""
        ...

    async def write_page(
        self, plan: SyncPlan, window: Window, jobs: Sequence[ServiceJob], next_token: str | None
    ) -> int:
        """Store a page's jobs and, in the same commit, the window's next page token.

        ``next_token`` ``None`` means the window is finished.  Returns how many jobs were
        written (a sink may skip jobs it already holds from this run).
        """
        ...

    async def finish(self, plan: SyncPlan) -> None:
        """Make ``plan.end`` the scope's checkpoint and forget the run's windows."""
        ...

    async def close(self) -> None:
        """Release the store; safe to call more than once."""
        ...


@attrs.frozen(kw_only=True)
class PageWrite:
    """What a :class:`ChangeSink` stored of a page.

    ``written`` counts the jobs written (as :meth:`Sink.write_page` returns it);
    ``changes`` are those of them that were changes, in the page's order: ``created``
    for a job the store did not hold, ``updated`` for one it held with other content.
    Each change's ``job`` is the job as the sink was handed it (its buyer data as the
    sync's ``buyer_data`` left it), its ``content_hash`` the hash the sink was given for
    it, and ``seen_at`` when the sink wrote it.
    """

    written: int
    changes: tuple[JobChange, ...] = ()


@runtime_checkable
class ChangeSink(Sink, Protocol):
    """A :class:`Sink` that also says which jobs of a page were changes.

    ``sync_jobs(on_change=...)`` needs one, and reports ``changes`` with one.  The
    sink judges, because only it knows what it held: a job is a change when the store
    did not hold it (``created``) or held it with another content hash (``updated``).
    The engine gives each job's :func:`~spapi_services.feed.content_hash`: of the job as
    fetched when the buyer's data is kept (so a change has the ``change_id`` a change
    feed gives it), else of the job without the buyer's personal data (so the hash
    reveals nothing the mirror does not keep, and an encrypted job, stored differently
    every time, is not taken for a change).  A sink keeps each job's hash beside it.
    """

    async def write_page_changes(
        self,
        plan: SyncPlan,
        window: Window,
        jobs: Sequence[ServiceJob],
        next_token: str | None,
        hashes: Sequence[str],
    ) -> PageWrite:
        """As :meth:`Sink.write_page`, and the page's changes (``hashes[i]`` is the
        content hash of ``jobs[i]``, see above), judged in the same commit."""
        ...


def changes_of(
    jobs: Sequence[ServiceJob],
    hashes: Sequence[str],
    held: dict[str, str],
    seen_at: datetime,
) -> list[JobChange]:
    """The changes among ``jobs``, given the content hash the store ``held`` for each
    job id it holds (see :func:`stored_hash`).

    ``held`` is updated as the page goes, so a job twice in one page is judged against
    its first copy.
    """
    found: list[JobChange] = []
    for job, digest in zip(jobs, hashes, strict=True):
        job_id = job.service_job_id
        if not job_id:
            continue
        if job_id not in held:
            kind = ChangeKind.CREATED
        elif held[job_id] != digest:
            kind = ChangeKind.UPDATED
        else:
            continue
        held[job_id] = digest
        found.append(JobChange(kind=kind, job=job, seen_at=seen_at, content_hash=digest))
    return found


def hashes_of(jobs: Sequence[ServiceJob]) -> list[str]:
    """Each job's content hash (for a sink asked to write without being given them)."""
    return [content_hash(job) for job in jobs]


def stored_hash(stored: str | None, record_text: str) -> str:
    """The hash to judge a stored job by: the one kept beside it, else (a job written
    before hashes were kept) its stored record's, which is the job's own when the
    mirror keeps buyer data as sent."""
    if stored is not None:
        return stored
    return content_hash(_serde.loads(record_text))


class MirrorSink:
    """What every mirror offers beside the :class:`Sink` protocol: opening counted, jobs
    read back, closed jobs pruned, a buyer forgotten, buyer data rewritten.

    Opening is counted: ``async with sink:`` around several calls (or around a
    ``sync_jobs`` that opens and closes the sink itself) keeps the store open until the
    outermost close.  The maintenance calls open the sink for their own duration if it
    is not open.  A subclass reaches its store through the ``_store_*`` coroutines and
    writes the :class:`Sink` protocol's ``state``, ``begin``, ``write_page`` and
    ``finish``.

    :param buyer_key: the key (or ring of keys) that reads encrypted buyer data back,
        and finds a buyer's jobs when their ids are stored encrypted or hashed.
    """

    def __init__(self, *, buyer_key: BuyerKeyLike | None = None) -> None:
        self._opens = 0
        #: The keys that read buyers' protected data back (``None``: protected fields come back as
        #: they are stored).
        self.buyer_keys: BuyerKeys | None = as_keys(buyer_key)

    async def __aenter__(self: _S) -> _S:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Open the sink (creating its store), ready for :meth:`state`."""
        if self._opens:
            self._opens += 1
            return
        await self._store_open()
        self._opens = 1

    async def close(self) -> None:
        """Close the sink.  Safe to call more than once; with nested opens, only the
        outermost closes."""
        if self._opens > 1:
            self._opens -= 1
            return
        self._opens = 0
        await self._store_close()

    # --- for the mirror's users ---------------------------------------------------------

    async def iter_jobs(self) -> AsyncIterator[ServiceJob]:
        """Every job the mirror holds, in its latest state, buyer data decrypted.

        The sink must be open (``async with sink:``).  Encrypted buyer data is decrypted
        with ``buyer_key``; without one it is returned as stored.  Keyed hashes are
        returned as stored.
        """
        if not self._opens:
            raise RuntimeError(
                f"{type(self).__name__}.iter_jobs: open the sink first (async with sink: ...)"
            )
        cursor: Any = None
        while True:
            jobs, cursor = await self._store_jobs_page(cursor)
            for job in jobs:
                yield job
            if cursor is None:
                return

    async def get(self, service_job_id: str) -> ServiceJob | None:
        """The job with this id in its latest state, buyer data decrypted; ``None`` if absent."""
        check_id("service_job_id", service_job_id)
        async with self:
            record = await self._store_read_one(service_job_id)
        if record is None:
            return None
        return job_from_record(record, self.buyer_keys)

    async def prune(
        self,
        older_than: timedelta,
        *,
        statuses: Iterable[str] = CLOSED_STATUSES,
        now: datetime | None = None,
    ) -> int:
        """Remove closed jobs whose last date is more than ``older_than`` ago; how many.

        A job's last date is the latest time it records (see
        :func:`~spapi_services.sync.last_activity`); ``statuses`` are the statuses that
        count as closed (default: COMPLETED, CANCELLED, NOT_FULFILLABLE).  The file
        sinks compact their store afterwards, so no copy of the removed jobs is left in
        their files.
        """
        if not isinstance(older_than, timedelta) or older_than < timedelta(0):
            raise ValueError("older_than: must be a timedelta of zero or more, e.g. 90 days")
        chosen = _statuses(statuses)
        cutoff = (now or datetime.now(UTC)) - older_than
        async with self:
            return await self._store_prune(cutoff, chosen)

    async def forget_buyer(self, buyer_id: str) -> int:
        """Erase a buyer's personal data from every job of theirs; how many jobs.

        The jobs stay, with their business (status, times, items, payments); the buyer's
        id, name, phone, the address and any vehicle go.  The buyer is remembered (as a
        salted digest of the id), so later syncs store none of their data again.  The
        file sinks compact their store afterwards, so no copy is left in their files.
        Where buyer ids are stored encrypted or hashed, the sink's ``buyer_key`` must
        hold their key.
        """
        check_id("buyer_id", buyer_id)
        async with self:
            return await self._store_forget(buyer_id)

    async def rewrite_buyer_data(
        self, buyer_data: BuyerData, *, buyer_key: BuyerKeyLike | None = None
    ) -> RewriteReport:
        """Store every job's buyer data again under ``buyer_data`` (a key rotation).

        Encrypted values are decrypted with the sink's ``buyer_key`` first, then
        protected with ``buyer_key`` (default: the sink's): after putting a new key
        first in the ring, this re-encrypts everything with it.  It also turns a mirror
        kept in clear into an encrypted, hashed or dropped one.  Keyed hashes cannot be
        undone and stay as they are.  The file sinks compact their store afterwards.
        """
        keys = as_keys(buyer_key) if buyer_key is not None else self.buyer_keys
        policy = BuyerDataPolicy(buyer_data, keys)
        async with self:
            return await self._store_rewrite(policy)

    # --- the store, as a subclass reaches it ------------------------------------------

    async def _store_open(self) -> None:
        raise NotImplementedError

    async def _store_close(self) -> None:
        raise NotImplementedError

    async def _store_jobs_page(self, cursor: Any) -> tuple[list[ServiceJob], Any]:
        """A batch of jobs from ``cursor`` (``None``: the start), decrypted; the next
        cursor, ``None`` after the last."""
        raise NotImplementedError

    async def _store_read_one(self, service_job_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    async def _store_prune(self, cutoff: datetime, statuses: frozenset[str]) -> int:
        raise NotImplementedError

    async def _store_forget(self, buyer_id: str) -> int:
        raise NotImplementedError

    async def _store_rewrite(self, policy: BuyerDataPolicy) -> RewriteReport:
        raise NotImplementedError


class ThreadedSink(MirrorSink):
    """Runs a sink's blocking file work on one thread of its own, one call at a time.

    One thread keeps the event loop free while a commit waits on the disk, and keeps
    every call to a connection on the thread that made it.  A call cancelled while it
    runs still finishes on its thread; it commits whole or not at all.  Opening is
    counted (see :class:`MirrorSink`).

    :param buyer_key: the key (or ring of keys) that reads encrypted buyer data back,
        and finds a buyer's jobs when their ids are stored encrypted or hashed.
    """

    _thread_name = "spapi-sync"

    def __init__(self, *, buyer_key: BuyerKeyLike | None = None) -> None:
        super().__init__(buyer_key=buyer_key)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # The Sink protocol, each call handed to the sink's thread.  A subclass provides the
    # blocking halves: _open, _scope_state, _begin, _write_page_changes, _finish and
    # _close, and for the mirror's users _read_page, _read_one, _prune, _forget and
    # _rewrite.

    async def open(self) -> None:
        """Open the sink (creating its files), ready for :meth:`state`."""
        await super().open()

    async def state(self, scope: str) -> SinkState:
        """The scope's checkpoint and unfinished run."""
        return await self._run(self._scope_state, scope)

    async def begin(self, plan: SyncPlan) -> None:
        """Record a new run, replacing any unfinished run of its scope."""
        await self._run(self._begin, plan)

    async def write_page(
        self, plan: SyncPlan, window: Window, jobs: Sequence[ServiceJob], next_token: str | None
    ) -> int:
        """Store a page's jobs together with the window's progress; the number written."""
        hashes = hashes_of(jobs)
        page = await self._run(self._write_page_changes, plan, window, jobs, next_token, hashes)
        return page.written

    async def write_page_changes(
        self,
        plan: SyncPlan,
        window: Window,
        jobs: Sequence[ServiceJob],
        next_token: str | None,
        hashes: Sequence[str],
    ) -> PageWrite:
        """Store a page's jobs with the window's progress; what was written, and which
        jobs were changes (see :class:`ChangeSink`)."""
        return await self._run(self._write_page_changes, plan, window, jobs, next_token, hashes)

    async def finish(self, plan: SyncPlan) -> None:
        """Advance the scope's checkpoint to the run's end."""
        await self._run(self._finish, plan)

    async def close(self) -> None:
        """Close the sink, after a write in progress (the event loop is not held up).

        Safe to call more than once; with nested opens, only the outermost closes.
        """
        await super().close()

    # --- MirrorSink's store, on the sink's thread -----------------------------------------

    async def _store_open(self) -> None:
        self._start_thread(self._thread_name)
        try:
            await self._run(self._open)
        except BaseException:
            await self._stop_thread(self._close)
            raise

    async def _store_close(self) -> None:
        await self._stop_thread(self._close)

    async def _store_jobs_page(self, cursor: Any) -> tuple[list[ServiceJob], Any]:
        return await self._run(self._jobs_page, cursor)

    async def _store_read_one(self, service_job_id: str) -> dict[str, Any] | None:
        return await self._run(self._read_one, service_job_id)

    async def _store_prune(self, cutoff: datetime, statuses: frozenset[str]) -> int:
        return await self._run(self._prune, cutoff, statuses)

    async def _store_forget(self, buyer_id: str) -> int:
        return await self._run(self._forget, buyer_id)

    async def _store_rewrite(self, policy: BuyerDataPolicy) -> RewriteReport:
        return await self._run(self._rewrite, policy)

    def _jobs_page(self, cursor: Any) -> tuple[list[ServiceJob], Any]:
        records, cursor = self._read_page(cursor, READ_BATCH)
        return [job_from_record(r, self.buyer_keys) for r in records], cursor

    # --- the blocking halves ------------------------------------------------------------

    def _open(self) -> None:
        raise NotImplementedError

    def _scope_state(self, scope: str) -> SinkState:
        raise NotImplementedError

    def _begin(self, plan: SyncPlan) -> None:
        raise NotImplementedError

    def _write_page_changes(
        self,
        plan: SyncPlan,
        window: Window,
        jobs: Sequence[ServiceJob],
        next_token: str | None,
        hashes: Sequence[str],
    ) -> PageWrite:
        raise NotImplementedError

    def _finish(self, plan: SyncPlan) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def _read_page(self, cursor: Any, limit: int) -> tuple[list[dict[str, Any]], Any]:
        """Up to ``limit`` records from ``cursor`` (``None``: the start); the next cursor,
        ``None`` after the last."""
        raise NotImplementedError

    def _read_one(self, service_job_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def _prune(self, cutoff: datetime, statuses: frozenset[str]) -> int:
        raise NotImplementedError

    def _forget(self, buyer_id: str) -> int:
        raise NotImplementedError

    def _rewrite(self, policy: BuyerDataPolicy) -> RewriteReport:
        raise NotImplementedError

    def _start_thread(self, name: str) -> None:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def _stop_thread(self, last: Callable[[], None]) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            # On the sink's thread, after whatever is queued there (a commit still running
            # for a cancelled caller): closing can wait on a lock held by another
            # connection, and the loop must not wait with it.
            await loop.run_in_executor(executor, last)
        finally:
            await asyncio.shield(asyncio.to_thread(executor.shutdown, wait=True))


def _statuses(statuses: Iterable[str]) -> frozenset[str]:
    if isinstance(statuses, str):
        raise TypeError("statuses: expected a list of statuses, not one string")
    chosen = frozenset(str(s) for s in statuses)
    if not chosen or not all(chosen):
        raise ValueError("statuses: give at least one status, e.g. COMPLETED")
    return chosen


def job_record(job: ServiceJob) -> dict[str, Any]:
    """A job as the JSON the API sent (camelCase, ``None`` fields left out)."""
    data: dict[str, Any] = _serde.unstructure(job)
    return data


def job_from_record(record: dict[str, Any], keys: BuyerKeys | None) -> ServiceJob:
    """A stored record as a job, its encrypted buyer data decrypted with ``keys``."""
    return _serde.structure(reveal_record(record, keys), ServiceJob)
