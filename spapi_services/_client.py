"""ServicesClient: configuration, lifecycle, and the resources hung off it."""

from __future__ import annotations

import enum
import math
import platform
import sys
from functools import cached_property
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs

from . import __version__
from ._auth import DEFAULT_TOKEN_URL, AccessTokenProvider, LwaCredentials, TokenSource
from ._ratelimit import RateLimits
from ._retry import RetryPolicy
from ._routes import route
from ._transport import ApiResponse, CallOptions, Transport, encode_query

if TYPE_CHECKING:
    from .resources.appointments import Appointments
    from .resources.documents import Documents
    from .resources.reservations import Reservations
    from .resources.schedules import Schedules
    from .resources.service_jobs import ServiceJobs

__all__ = ["Region", "ServicesClient"]

_MAX_USER_AGENT = 500


class Region(enum.Enum):
    """An SP-API region: its production host and its sandbox host."""

    NA = (
        "https://sellingpartnerapi-na.amazon.com",
        "https://sandbox.sellingpartnerapi-na.amazon.com",
    )
    EU = (
        "https://sellingpartnerapi-eu.amazon.com",
        "https://sandbox.sellingpartnerapi-eu.amazon.com",
    )
    FE = (
        "https://sellingpartnerapi-fe.amazon.com",
        "https://sandbox.sellingpartnerapi-fe.amazon.com",
    )

    @property
    def endpoint(self) -> str:
        """The production host."""
        return self.value[0]

    @property
    def sandbox_endpoint(self) -> str:
        """The static sandbox host."""
        return self.value[1]


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class _Core:
    """What a client and its ``with_options`` copies share: session, tokens, buckets."""

    def __init__(self, session: aiohttp.ClientSession | None, timeout: float) -> None:
        self.session = session
        self.owns_session = session is None
        self.state = _State.UNOPENED
        self.timeout = timeout

    async def get_session(self) -> aiohttp.ClientSession:
        if self.state is _State.CLOSED:
            raise RuntimeError("this ServicesClient is closed; create a new one")
        if self.session is None:
            # Made here, inside the running loop: aiohttp binds a session to its loop.
            self.session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=100, limit_per_host=100),
            )
            self.owns_session = True
        if self.state is _State.UNOPENED:
            self.state = _State.OPENED
        return self.session

    async def close(self) -> None:
        if self.state is _State.CLOSED:
            return
        self.state = _State.CLOSED
        if self.owns_session and self.session is not None:
            await self.session.close()


def build_user_agent(prefix: str | None = None) -> str:
    """The User-Agent header: ours, after the application's own name if one is given."""
    ours = (
        f"spapi-services/{__version__} "
        f"(Language=Python/{sys.version_info.major}.{sys.version_info.minor}; "
        f"Platform={platform.system() or 'unknown'})"
    )
    if prefix is None:
        return ours
    if not isinstance(prefix, str):
        raise TypeError(f"user_agent: expected a string, got {type(prefix).__name__}")
    if any(ord(c) < 32 or ord(c) == 127 for c in prefix):
        raise ValueError("user_agent: must be a single line of printable text")
    if not prefix.strip():
        return ours
    # Amazon refuses a User-Agent over 500 characters; the application's part gives way,
    # from its end, so its name and version (at the start) survive.
    room = _MAX_USER_AGENT - len(ours) - 1
    return f"{prefix.strip()[:room].rstrip()} {ours}"


def _check_timeout(timeout: object) -> None:
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout < math.inf
    ):
        raise ValueError(f"timeout: must be a positive number of seconds, got {timeout!r}")


def _check_retry(retry: object) -> None:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise TypeError(f"retry: expected a RetryPolicy, got {type(retry).__name__}")


class ServicesClient:
    """An async client for the Selling Partner API's Services API v1.

    Use it as ``async with ServicesClient(...) as client:``, or call :meth:`aclose`
    when done.  Every operation lives on a resource: :attr:`service_jobs`,
    :attr:`appointments`, :attr:`schedules`, :attr:`reservations` and
    :attr:`documents`.

    :param credentials: the LWA app and refresh token; ``None`` reads them from
        ``SPAPI_CLIENT_ID``, ``SPAPI_CLIENT_SECRET`` and ``SPAPI_REFRESH_TOKEN``
        (not needed with ``access_token_provider``).
    :param region: NA, EU or FE; ``sandbox=True`` uses the region's static sandbox.
    :param endpoint: any other API base URL (a proxy, the local emulator).
    :param token_url: any other LWA token URL.
    :param marketplace_id: the default for operations that take a marketplace.
    :param access_token_provider: an async callable returning the token to send,
        replacing the LWA exchange (for tokens managed elsewhere).
    :param session: an ``aiohttp.ClientSession`` of the caller's, used and never closed.
    :param timeout: seconds for one HTTP attempt.
    :param retry: the :class:`RetryPolicy`.
    :param rate_limits: ``None`` for Amazon's published usage plans, ``False`` for no
        client-side limiting, or a :class:`RateLimits` (shareable between clients).
    :param user_agent: your application's name and version, put before ours.
    """

    def __init__(
        self,
        credentials: LwaCredentials | None = None,
        *,
        region: Region = Region.NA,
        sandbox: bool = False,
        endpoint: str | None = None,
        token_url: str | None = None,
        marketplace_id: str | None = None,
        access_token_provider: AccessTokenProvider | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limits: RateLimits | bool | None = None,
        user_agent: str | None = None,
    ) -> None:
        if credentials is None and access_token_provider is None:
            credentials = LwaCredentials.from_env()
        if credentials is not None and not isinstance(credentials, LwaCredentials):
            raise TypeError(
                f"credentials: expected LwaCredentials, got {type(credentials).__name__}"
            )
        if not isinstance(region, Region):
            raise TypeError(f"region: expected a Region, got {region!r}")
        _check_timeout(timeout)
        _check_retry(retry)
        if access_token_provider is not None and not callable(access_token_provider):
            raise TypeError("access_token_provider: expected an async callable returning a token")
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"session: expected an aiohttp.ClientSession, got {type(session).__name__}"
            )
        if marketplace_id is not None and not (
            isinstance(marketplace_id, str) and marketplace_id.strip()
        ):
            raise ValueError("marketplace_id: must be a non-empty string")
        if rate_limits is True:
            rate_limits = None
        if (
            rate_limits is not None
            and rate_limits is not False
            and not isinstance(rate_limits, RateLimits)
        ):
            raise TypeError("rate_limits: expected None, False or a RateLimits")

        base_url = endpoint or (region.sandbox_endpoint if sandbox else region.endpoint)
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint: must be an http(s) URL, got {base_url!r}")

        self.region = region
        self.marketplace_id = marketplace_id
        self.base_url = base_url.rstrip("/")
        self._options = CallOptions(retry=retry or RetryPolicy(), timeout=float(timeout))
        self._core = _Core(session, float(timeout))
        self._limits: RateLimits | None = None
        if rate_limits is not False:
            self._limits = rate_limits if isinstance(rate_limits, RateLimits) else RateLimits()
        self._transport = Transport(
            base_url=self.base_url,
            tokens=TokenSource(
                credentials,
                token_url=token_url or DEFAULT_TOKEN_URL,
                provider=access_token_provider,
                timeout=float(timeout),
            ),
            limits=self._limits,
            user_agent=build_user_agent(user_agent),
            session=self._core.get_session,
        )

    def __repr__(self) -> str:
        return (
            f"ServicesClient(endpoint={self.base_url!r}, marketplace_id={self.marketplace_id!r}, "
            f"state={self._core.state.value})"
        )

    # --- lifecycle ---------------------------------------------------------------

    async def __aenter__(self) -> ServicesClient:
        if self._core.state is _State.CLOSED:
            raise RuntimeError("this ServicesClient is closed; create a new one")
        await self._core.get_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if this client made it.  Calling it again does nothing."""
        await self._core.close()

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` has been called."""
        return self._core.state is _State.CLOSED

    def with_options(
        self, *, retry: RetryPolicy | None = None, timeout: float | None = None
    ) -> ServicesClient:
        """A view of this client with another retry policy or timeout for its calls.

        It shares the session, the token and the rate-limit buckets; closing either
        closes both::

            await client.with_options(retry=RetryPolicy(max_retries=0)).service_jobs.get(job_id)
        """
        if timeout is not None:
            _check_timeout(timeout)
        _check_retry(retry)
        copy = object.__new__(ServicesClient)
        copy.__dict__.update({k: v for k, v in self.__dict__.items() if k not in _RESOURCE_NAMES})
        copy._options = attrs.evolve(
            self._options,
            retry=retry or self._options.retry,
            timeout=float(timeout) if timeout is not None else self._options.timeout,
        )
        return copy

    # --- resources ---------------------------------------------------------------

    @cached_property
    def service_jobs(self) -> ServiceJobs:
        """Get, list, cancel and complete service jobs."""
        from .resources.service_jobs import ServiceJobs

        return ServiceJobs(self)

    @cached_property
    def appointments(self) -> Appointments:
        """Book, reschedule and staff appointments; record fulfilment; find free slots."""
        from .resources.appointments import Appointments

        return Appointments(self)

    @cached_property
    def schedules(self) -> Schedules:
        """Set a resource's working hours and read its capacity."""
        from .resources.schedules import Schedules

        return Schedules(self)

    @cached_property
    def reservations(self) -> Reservations:
        """Reserve a resource's time, and change or cancel reservations."""
        from .resources.reservations import Reservations

        return Reservations(self)

    @cached_property
    def documents(self) -> Documents:
        """Upload fulfilment documents (proof of appointment)."""
        from .resources.documents import Documents

        return Documents(self)

    # --- for the resources -------------------------------------------------------

    async def _call(
        self,
        operation_id: str,
        *,
        path: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
        body: Any = None,
    ) -> ApiResponse:
        """Send one operation (the resources' only way out)."""
        if self._core.state is _State.CLOSED:
            raise RuntimeError("this ServicesClient is closed; create a new one")
        return await self._transport.send(
            route(operation_id),
            self._options,
            path_params=path,
            query=encode_query(query) if query else None,
            json_body=body,
        )

    def _marketplace(self, marketplace_id: str | None) -> str:
        chosen = marketplace_id if marketplace_id is not None else self.marketplace_id
        if chosen is None:
            raise ValueError(
                "marketplace_id: required for this operation; pass marketplace_id= "
                "or set ServicesClient(marketplace_id=...)"
            )
        if not isinstance(chosen, str) or not chosen.strip():
            raise ValueError("marketplace_id: must be a non-empty string")
        return chosen


_RESOURCE_NAMES = frozenset(
    {"service_jobs", "appointments", "schedules", "reservations", "documents"}
)
