"""Following a page token across pages, for any token-paged operation.

A page is read whole before it is yielded, so breaking out of a loop early leaves no
response open.  The loop stops when the token is absent or empty, keeps going past an
empty page that still has a token, and refuses to go round in circles when the API hands
back a token it already gave.  Job searches add a position to resume from to this: see
:class:`spapi_services.resources.service_jobs.JobPaginator`.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from .errors import PaginationError

__all__ = ["PageIterator", "PaginationError"]

PageT = TypeVar("PageT")

#: How many of the latest page tokens are checked for a repeat.
_REMEMBERED_TOKENS = 64

FetchPage = Callable[[str | None], Awaitable[PageT]]


class PageIterator(Generic[PageT]):
    """An async iterator over the pages of a token-paged operation.

    ``async for page in ...`` fetches one page at a time; iterating again starts over
    from ``page_token``.
    """

    def __init__(
        self,
        fetch: FetchPage[PageT],
        next_token: Callable[[PageT], str | None],
        *,
        page_token: str | None = None,
    ) -> None:
        self._fetch = fetch
        self._next_token = next_token
        self._start = page_token
        self.next_page_token: str | None = None
        """The API's token of the page after the last one fetched (``None`` at the end).

        Pages are yielded whole, so after a ``break`` between pages this is where to go on
        from: ``page_token=``.
        """
        self.pages_fetched = 0
        """How many pages this iterator has fetched."""

    def __aiter__(self) -> AsyncIterator[PageT]:
        return self.pages()

    async def pages(self) -> AsyncIterator[PageT]:
        """Every page, in order."""
        token = self._start
        # The recent tokens only: a loop in the API's paging shows up within a few pages,
        # and a set of every token would grow with a sync of millions of jobs.
        recent: collections.deque[str] = collections.deque(maxlen=_REMEMBERED_TOKENS)
        if token:
            recent.append(token)
        while True:
            self._page_started(token)
            page = await self._fetch(token)
            self.pages_fetched += 1
            token = self._next_token(page) or None
            self.next_page_token = token
            yield page
            if token is None:
                return
            if token in recent:
                raise PaginationError(f"the API returned the page token {token!r} twice")
            recent.append(token)

    def _page_started(self, token: str | None) -> None:
        """Called with each page's token just before it is fetched (for subclasses)."""
