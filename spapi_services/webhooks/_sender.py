"""One attempt to deliver one message to one endpoint: sign, POST, read the status.

The body posted is the body signed, byte for byte.  Redirects are not followed (a 3xx is
a failure: a receiver that moved must be set anew, and following one would let an
endpoint point the sender anywhere).  Every address connected to passes the
:class:`~spapi_services.webhooks.AddressGuard`.  The receiver's answer is not read past
a few kilobytes and never logged; neither is the body sent, nor a secret.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import datetime
from types import TracebackType

import aiohttp
import attrs
from yarl import URL

from .._retry import parse_retry_after
from .._timing import LoopTimer, Timer
from ._addresses import AddressGuard, EndpointAddressError, NetworkLike, literal_address
from ._endpoint import WebhookEndpoint
from ._schedule import AttemptOutcome, outcome_of
from ._signing import webhook_headers

__all__ = ["DEFAULT_TIMEOUT", "AttemptResult", "WebhookSender"]

#: Seconds an attempt may take, connecting included, before it counts as failed.
DEFAULT_TIMEOUT = 15.0
_MAX_TIMEOUT = 60.0
_READ_AT_MOST = 64 * 1024


@attrs.frozen(kw_only=True)
class AttemptResult:
    """What one attempt came to.

    :param outcome: what it means for the delivery (see :class:`AttemptOutcome`).
    :param status: the receiver's HTTP status; ``None`` if it did not answer.
    :param error: why it failed, in a few words (never the body or a secret); ``None``
        when delivered.
    :param retry_after: seconds the receiver's ``Retry-After`` asked for, if it did.
    :param elapsed: seconds the attempt took.
    :param timestamp: the ``webhook-timestamp`` sent (unix seconds).
    """

    #: What the attempt means for the delivery.
    outcome: AttemptOutcome
    #: The receiver's HTTP status (``None``: it did not answer).
    status: int | None = None
    #: Why it failed, in a few words, never the body or a secret (``None``: delivered).
    error: str | None = None
    #: Seconds the receiver's ``Retry-After`` asked for (``None``: it did not).
    retry_after: float | None = None
    #: Seconds the attempt took.
    elapsed: float = 0.0
    #: The ``webhook-timestamp`` sent, in unix seconds.
    timestamp: int = 0


def _wall_seconds(timer: Timer) -> float:
    # A test's fake timer may carry the wall clock too (``utcnow()``), as the feed's does.
    utcnow = getattr(timer, "utcnow", None)
    if callable(utcnow):
        moment = utcnow()
        if isinstance(moment, datetime) and moment.tzinfo is not None:
            return moment.timestamp()
    return time.time()


class WebhookSender:
    """Sends single attempts over one connection pool, guarded against private addresses.

    :param timeout: seconds one attempt may take (at most 60; 15 by default).
    :param allow_networks: networks to allow although they are not public (see
        :class:`AddressGuard`).
    :param timer: the clock attempts are timed by (and, if it has ``utcnow()``, the
        wall clock the ``webhook-timestamp`` is read from).
    :param user_agent: the ``User-Agent`` sent.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        allow_networks: Iterable[NetworkLike] = (),
        timer: Timer | None = None,
        user_agent: str | None = None,
    ) -> None:
        if not 0 < timeout <= _MAX_TIMEOUT:
            raise ValueError(
                f"timeout: must be more than 0 and at most {_MAX_TIMEOUT:g} seconds, "
                f"got {timeout!r}"
            )
        #: Seconds one attempt may take.
        self.timeout = float(timeout)
        #: Which addresses endpoints may resolve to.
        self.guard = AddressGuard(allow_networks)
        self._timer = timer if timer is not None else LoopTimer()
        if user_agent is None:
            from .. import __version__

            user_agent = f"spapi-services/{__version__} (webhooks)"
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"WebhookSender(timeout={self.timeout:g}, guard={self.guard!r})"

    async def __aenter__(self) -> WebhookSender:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (closing twice is harmless)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this WebhookSender is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=self.guard.resolver(), limit=100)
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        return self._session

    async def attempt(
        self, endpoint: WebhookEndpoint, message_id: str, body: bytes
    ) -> AttemptResult:
        """POST ``body`` to ``endpoint``, signed as message ``message_id``; never raises
        for what the receiver or the network does (that is the result), only for
        cancellation."""
        stamp = int(_wall_seconds(self._timer))
        headers = {
            **webhook_headers(endpoint.secrets, message_id, stamp, body),
            "content-type": "application/json",
            "user-agent": self._user_agent,
        }
        started = self._timer.now()

        def result(
            outcome: AttemptOutcome,
            status: int | None = None,
            error: str | None = None,
            retry_after: float | None = None,
        ) -> AttemptResult:
            return AttemptResult(
                outcome=outcome,
                status=status,
                error=error,
                retry_after=retry_after,
                elapsed=max(self._timer.now() - started, 0.0),
                timestamp=stamp,
            )

        try:
            literal = literal_address(URL(endpoint.url).host or "")
            if literal is not None:
                self.guard.check(endpoint.host, literal)
            async with self._client().post(
                endpoint.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await _drain(response)
                status = response.status
                wait = parse_retry_after(response.headers.get("Retry-After"))
        except EndpointAddressError as exc:
            return result(AttemptOutcome.FAILED, error=str(exc))
        except TimeoutError:
            return result(AttemptOutcome.FAILED, error=f"no answer within {self.timeout:g} s")
        except aiohttp.ClientError as exc:
            return result(AttemptOutcome.FAILED, error=_describe(endpoint, exc))
        outcome = outcome_of(status)
        if outcome is AttemptOutcome.DELIVERED:
            return result(outcome, status)
        return result(outcome, status, _status_error(status), wait)


async def _drain(response: aiohttp.ClientResponse) -> None:
    # Read (and drop) a little of the answer so the connection can be reused; a receiver
    # that answers with more is cut off rather than read to the end.
    read = 0
    while read < _READ_AT_MOST:
        chunk = await response.content.readany()
        if not chunk:
            return
        read += len(chunk)


def _status_error(status: int) -> str:
    if 300 <= status < 400:
        return f"HTTP {status}: a redirect (not followed)"
    if status == 410:
        return "HTTP 410 Gone: the receiver asked for no more"
    return f"HTTP {status}"


def _describe(endpoint: WebhookEndpoint, exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        if isinstance(cause, EndpointAddressError):
            return str(cause)
        reason = cause.strerror or type(cause).__name__
        return f"could not connect to {endpoint.host}: {reason}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{endpoint.host} closed the connection without answering"
    return f"{type(exc).__name__} talking to {endpoint.host}"
