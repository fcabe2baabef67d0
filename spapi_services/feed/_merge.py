"""Several sellers' feeds as one stream of :class:`~spapi_services.models.SellerChange`.

Each feed has at most one ``__anext__`` in flight, as a task; when it returns, the
seller's change waits in a queue until the merged iterator hands it out, and the feed is
asked for its next change.  No other task, no polling of the feeds: an idle seller costs
its feed's sleep and nothing else.  Closing the merged iterator (``async with``,
:meth:`MergedChanges.aclose`, cancelling the task that iterates it, or dropping it after
a ``break``) cancels every feed's pending step and closes every feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Hashable, Mapping
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

from ..models.feed import JobChange, SellerChange

__all__ = ["MergedChanges", "merge_changes"]

S = TypeVar("S", bound=Hashable)

_ENDED: Any = object()


def merge_changes(
    feeds: Mapping[S, AsyncIterator[JobChange]],
    *,
    on_error: Callable[[S, BaseException], None] | None = None,
) -> MergedChanges[S]:
    """Merge sellers' feeds into one async iterator of :class:`SellerChange`.

    ``feeds`` maps a key of your choice for each seller (a name, an id) to its feed
    (``client.service_jobs.changes(...)``, one client per seller).  Changes come in the
    order the feeds produce them, each tagged with its seller.  A feed that fails (its
    seller's credentials refused, say) ends the merged iterator with that error, the
    others closed first, unless ``on_error(seller, exc)`` is given: then that feed is
    dropped and the others go on.  Use it in ``async with`` (or call ``aclose``) to close
    every feed at a known point::

        async with merge_changes({s: clients[s].service_jobs.changes() for s in clients}) as merged:
            async for item in merged:
                print(item.seller, item.change.kind, item.change.job.service_job_id)
    """
    if not isinstance(feeds, Mapping):
        raise TypeError(f"feeds: expected a mapping of seller to feed, got {type(feeds).__name__}")
    for seller, feed in feeds.items():
        if not hasattr(feed, "__anext__"):
            raise TypeError(f"feeds[{seller!r}]: expected an async iterator of JobChange")
    return MergedChanges(feeds, on_error=on_error)


class MergedChanges(Generic[S]):
    """The merged feeds of several sellers (see :func:`merge_changes`)."""

    def __init__(
        self,
        feeds: Mapping[S, AsyncIterator[JobChange]],
        *,
        on_error: Callable[[S, BaseException], None] | None = None,
    ) -> None:
        self._feeds = dict(feeds)
        self._on_error = on_error
        self._steps: dict[S, asyncio.Task[Any]] = {}
        self._ready: deque[S] = deque()
        self._wake = asyncio.Event()
        self._started = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<MergedChanges of {len(self._feeds)} feeds, {len(self._steps)} waiting>"

    @property
    def sellers(self) -> tuple[S, ...]:
        """The sellers whose feeds are still open."""
        return tuple(self._feeds)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SellerChange[S]:
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            self._started = True
            for seller in self._feeds:
                self._step(seller)
        try:
            return await self._next()
        except BaseException:
            # Cancelled, or a feed failed: nothing of this iterator goes on running.
            await self.aclose()
            raise

    async def _next(self) -> SellerChange[S]:
        while True:
            while not self._ready:
                if not self._steps:
                    self._closed = True
                    raise StopAsyncIteration
                self._wake.clear()
                await self._wake.wait()
            seller = self._ready.popleft()
            step = self._steps.pop(seller)
            error = step.exception()
            if error is None:
                change = step.result()
                if change is _ENDED:
                    self._feeds.pop(seller, None)
                    continue
                self._step(seller)
                return SellerChange(seller, change)
            feed = self._feeds.pop(seller)
            if self._on_error is None:
                error.add_note(f"(from the change feed of seller {seller!r})")
                raise error
            await _close(feed)
            self._on_error(seller, error)

    def _step(self, seller: S) -> None:
        step = asyncio.ensure_future(_advance(self._feeds[seller]))
        # A weak reference: the loop holds the steps, and through a strong one it would
        # keep a merged iterator dropped after a ``break`` alive, its feeds polling.
        merged = weakref.ref(self)

        def arrived(_: object) -> None:
            alive = merged()
            if alive is not None:
                alive._arrived(seller)

        step.add_done_callback(arrived)
        self._steps[seller] = step

    def _arrived(self, seller: S) -> None:
        if self._closed:
            return
        self._ready.append(seller)
        self._wake.set()

    async def aclose(self) -> None:
        """Cancel every feed's pending step and close every feed.  Safe to call twice."""
        self._closed = True
        steps = list(self._steps.values())
        self._steps.clear()
        self._ready.clear()
        for step in steps:
            step.cancel()
        if steps:
            await asyncio.gather(*steps, return_exceptions=True)
        feeds = list(self._feeds.values())
        self._feeds.clear()
        for feed in feeds:
            await _close(feed)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        # Dropped after a ``break`` without aclose: stop the feeds' pending steps.
        for step in self._steps.values():
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                step.cancel()


async def _advance(feed: AsyncIterator[JobChange]) -> Any:
    try:
        return await anext(feed)
    except StopAsyncIteration:
        return _ENDED


async def _close(feed: AsyncIterator[JobChange]) -> None:
    close = getattr(feed, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
