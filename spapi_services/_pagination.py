"""Following ``nextPageToken`` across pages.

A page is read whole before anything from it is yielded, so breaking out of a loop
early leaves no response open.  The loop stops when the token is absent or empty, keeps
going past an empty page that still has a token, and refuses to go round in circles when
the API hands back a token it already gave.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from .errors import SpApiError
from .models.jobs import JobListing, ServiceJob

__all__ = ["JobPaginator", "PageIterator", "PaginationError"]

PageT = TypeVar("PageT")

#: How many of the latest page tokens are checked for a repeat.
_REMEMBERED_TOKENS = 64

FetchPage = Callable[[str | None], Awaitable[PageT]]


class PaginationError(SpApiError):
    """The API handed back a page token it had already given: following it would loop."""


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
        """The token of the page after the last one fetched (``None`` once finished).

        Save it to resume a long iteration later with ``page_token=``.
        """
        self.pages_fetched = 0
        """How many pages this iterator has fetched."""
        self._page_token: str | None = page_token  # the token that fetched the current page

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
            self._page_token = token
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


class JobPaginator(PageIterator[JobListing]):
    """Every service job matching a search, across all pages.

    ``async for job in client.service_jobs.list(...)`` yields :class:`ServiceJob`
    objects; ``async for page in paginator.pages()`` yields the :class:`JobListing`
    pages, with ``total_result_size`` and the page tokens.  ``max_items`` stops after
    that many jobs.  When it stops inside a page, :attr:`next_page_token` is that page's
    own token, so resuming from it loses nothing (it yields that page again from its
    first job).
    """

    def __init__(
        self,
        fetch: FetchPage[JobListing],
        *,
        page_token: str | None = None,
        max_items: int | None = None,
    ) -> None:
        super().__init__(fetch, lambda page: page.next_page_token, page_token=page_token)
        self._max_items = max_items

    def __aiter__(self) -> AsyncIterator[ServiceJob]:  # type: ignore[override]
        return self.jobs()

    async def jobs(self) -> AsyncIterator[ServiceJob]:
        """Every job, in order, up to ``max_items``."""
        remaining = self._max_items
        if remaining is not None and remaining <= 0:
            return
        async for page in self.pages():
            jobs: Sequence[ServiceJob] = page.jobs or ()
            for index, job in enumerate(jobs):
                yield job
                if remaining is not None:
                    remaining -= 1
                    if remaining == 0:
                        if index + 1 < len(jobs):
                            self.next_page_token = self._page_token
                        return
