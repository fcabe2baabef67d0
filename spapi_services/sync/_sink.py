"""What the sync engine asks of a place to keep jobs, and the thread that sinks write on.

A sink stores three things and must store the second and third together: the
checkpoint of each scope (how far the last complete run got), the jobs of each page,
and the progress of the window the page came from.  Because a page's jobs and its
window's next page token are committed at once, a run stopped at any point resumes from
the first page not stored, and no page is ever stored twice.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import attrs

from .. import _serde
from ..models.jobs import ServiceJob
from ._plan import SyncPlan, Window

__all__ = ["Sink", "SinkState", "ThreadedSink", "job_record"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class SinkState:
    """What a sink holds for a scope when a run starts.

    ``checkpoint`` is the end of the last complete run (``None`` before the first), and
    ``plan`` an unfinished run to resume (``None`` when the last run completed).
    """

    checkpoint: datetime | None = None
    plan: SyncPlan | None = None


class Sink(Protocol):
    """Where :func:`~spapi_services.sync.sync_jobs` puts jobs and its progress.

    The engine calls :meth:`open` first and :meth:`close` last, whatever happens in
    between, and never calls two of the other methods at the same time.  A sink holds
    any number of scopes (marketplaces), each with its own checkpoint and run.
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


class ThreadedSink:
    """Runs a sink's blocking file work on one thread of its own, one call at a time.

    One thread keeps the event loop free while a commit waits on the disk, and keeps
    every call to a connection on the thread that made it.  A call cancelled while it
    runs still finishes on its thread; it commits whole or not at all.
    """

    _thread_name = "spapi-sync"

    def __init__(self) -> None:
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # The Sink protocol, each call handed to the sink's thread.  A subclass provides the
    # blocking halves: _open, _scope_state, _begin, _write_page, _finish and _close.

    async def open(self) -> None:
        """Open the sink (creating its files), ready for :meth:`state`."""
        self._start_thread(self._thread_name)
        try:
            await self._run(self._open)
        except BaseException:
            await self.close()
            raise

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
        return await self._run(self._write_page, plan, window, jobs, next_token)

    async def finish(self, plan: SyncPlan) -> None:
        """Advance the scope's checkpoint to the run's end."""
        await self._run(self._finish, plan)

    async def close(self) -> None:
        """Close the sink, after a write in progress (the event loop is not held up)."""
        await self._stop_thread(self._close)

    def _open(self) -> None:
        raise NotImplementedError

    def _scope_state(self, scope: str) -> SinkState:
        raise NotImplementedError

    def _begin(self, plan: SyncPlan) -> None:
        raise NotImplementedError

    def _write_page(
        self, plan: SyncPlan, window: Window, jobs: Sequence[ServiceJob], next_token: str | None
    ) -> int:
        raise NotImplementedError

    def _finish(self, plan: SyncPlan) -> None:
        raise NotImplementedError

    def _close(self) -> None:
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


def job_record(job: ServiceJob) -> dict[str, Any]:
    """A job as the JSON the API sent (camelCase, ``None`` fields left out)."""
    data: dict[str, Any] = _serde.unstructure(job)
    return data
