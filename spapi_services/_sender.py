"""One HTTP attempt: the seam between the request pipeline and the network.

A sender takes ``(method, url, headers, body, timeout)`` and gives back the status, the
headers and the whole body, or raises what the network raised.  It never retries,
follows no redirect and raises for no status: deciding is the pipeline's job.  API
calls, the Login with Amazon exchange and the document PUT all go out through it, so a
test (or an application with its own HTTP stack) can replace it with one function.

:class:`AiohttpSender` is the one the client uses unless told otherwise.  It also keeps
the request queue of its session (see :mod:`spapi_services._queue`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

import aiohttp
import attrs
from yarl import URL

from ._queue import RequestQueue, queue_for

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_CONNECT_SECONDS",
    "AiohttpSender",
    "BodyTooLarge",
    "RawResponse",
    "Sender",
]

#: Bodies larger than this, once decompressed, are refused rather than read into memory.
MAX_BODY_BYTES = 16 * 1024 * 1024

#: The most an attempt waits for a socket to connect (half its timeout when that is less).
MAX_CONNECT_SECONDS = 10.0

# aiohttp adds these on its own; what we send is exactly what the caller of the sender
# asked for (the presigned document PUT must carry nothing it was not signed with).
_SKIPPED_AUTO_HEADERS = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})


@attrs.frozen(slots=True)
class RawResponse:
    """An HTTP answer, read whole: status, case-insensitive headers, body bytes."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=lambda body: f"<{len(body)} bytes>")


class Sender(Protocol):
    """Sends one request and reads its answer whole."""

    async def __call__(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,  # noqa: ASYNC109 (the seam's contract: aiohttp applies it)
    ) -> RawResponse: ...


class BodyTooLarge(Exception):
    """An answer's body passed :data:`MAX_BODY_BYTES` (counted after decompression)."""

    def __init__(
        self, status: int, headers: Mapping[str, str], size: int | None, limit: int
    ) -> None:
        what = f"{size}-byte" if size is not None else "longer"
        super().__init__(f"a {what} response body exceeds the {limit}-byte limit")
        self.status = status
        self.headers = headers


class AiohttpSender:
    """Sends through an ``aiohttp.ClientSession`` (the caller's, or one made on first use).

    ``session`` is an async callable returning the session to use, so that the session
    can be created lazily inside the running loop.  It is asked once, and again only
    once the session it gave is closed.
    """

    def __init__(
        self,
        session: Callable[[], Awaitable[aiohttp.ClientSession]],
        *,
        max_body: int | None = None,
    ) -> None:
        self._session = session
        self._max_body = max_body  # None: MAX_BODY_BYTES, read when a body is
        # The session once had, asked for again only when it is closed (its client's
        # calls check that the client is open before they get here).
        self._ready: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return "AiohttpSender()"

    async def request_queue(self) -> RequestQueue:
        """The queue in front of the session's connection pool (one per session)."""
        return queue_for(await self._session())

    async def _get_session(self) -> aiohttp.ClientSession:
        self._ready = session = await self._session()
        return session

    async def __call__(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float,  # noqa: ASYNC109 (passed to aiohttp as the attempt's timeout)
    ) -> RawResponse:
        session = self._ready
        if session is None or session.closed:
            session = await self._get_session()
        async with session.request(
            method,
            url,
            data=body,
            headers=headers,
            # aiohttp adds only what is missing: the API's and the token's requests name all
            # of it, so only a request that does not (the document PUT) needs skipping, and
            # the others spare aiohttp building the skip set.
            skip_auto_headers=None if "User-Agent" in headers else _SKIPPED_AUTO_HEADERS,
            timeout=_timeout(timeout),
            # A redirect would carry the access token (or the document and its signature)
            # wherever it points; none of the endpoints redirects, so it is an answer.
            allow_redirects=False,
            # Whatever the caller's session says: every status is the pipeline's to read.
            raise_for_status=False,
        ) as resp:
            limit = MAX_BODY_BYTES if self._max_body is None else self._max_body
            declared = resp.content_length
            if (
                declared is not None
                and declared <= limit
                and "Content-Encoding" not in resp.headers
            ):
                raw = await resp.read()  # what is declared is what arrives: within the limit
            else:
                raw = await _read_body(resp, limit)
            return RawResponse(resp.status, resp.headers, raw)


@functools.lru_cache(maxsize=16)
def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    # Opening a socket gets a budget of its own, shorter than the attempt's: only a
    # connect that runs out of *its* time is reported as a ConnectionTimeoutError, a
    # request that never left, which any operation may retry.  Under ``total`` alone it is
    # a bare TimeoutError: "sent, maybe processed".  The wait for a free connection of the
    # pool is not in it (``sock_connect``, not ``connect``): a busy client queueing for its
    # own connections is no reason to give up sooner, or to spend its retries.
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds / 2, MAX_CONNECT_SECONDS))


async def _read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    declared = resp.content_length
    encoded = "Content-Encoding" in resp.headers
    if declared is not None and not encoded:
        # What is declared is what arrives: refuse a large body before reading it.
        if declared > limit:
            raise BodyTooLarge(resp.status, resp.headers, declared, limit)
        return await resp.read()
    # Compressed or chunked: count what comes out of the decoder, not what went in
    # (a few kilobytes of gzip can inflate to gigabytes).
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(resp.status, resp.headers, None, limit)
        chunks.append(chunk)
    return b"".join(chunks)
