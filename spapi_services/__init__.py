"""Async client for Amazon's Selling Partner API, Services API v1.

::

    credentials = LwaCredentials.from_env()
    async with ServicesClient(credentials, marketplace_id="ATVPDKIKX0DER") as client:
        async for job in client.service_jobs.list(created_after=since):
            ...

The public names load on first use: ``import spapi_services`` alone costs almost nothing
(the pytest plugin, loaded in every pytest run of a project that installs the SDK, relies
on it), and ``from spapi_services import ServicesClient`` loads the client then.
"""

from __future__ import annotations

import importlib
import logging as _logging
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
"""The installed SDK's version (also sent in the User-Agent of every request)."""

# A library leaves output to the application: without this, WARNING records (an API
# warning about an answer) would reach stderr through logging's last-resort handler
# whenever the application has not configured logging, whatever it wanted.
_logging.getLogger("spapi_services").addHandler(_logging.NullHandler())

if TYPE_CHECKING:
    from ._auth import (
        AccessToken,
        AccessTokenProvider,
        LwaCredentials,
        MemoryTokenCache,
        TokenCache,
    )
    from ._client import Region, ServicesClient
    from ._pagination import PageIterator
    from ._ratelimit import (
        LearningPlan,
        RateLimits,
        ReservingPlan,
        TokenReservation,
        UsagePlan,
    )
    from ._retry import RetryPolicy
    from ._sender import RawResponse, Sender
    from ._timing import Timer, WallClockTimer
    from .errors import (
        ApiConnectionError,
        ApiStatusError,
        ApiTimeoutError,
        AuthenticationError,
        BadRequestError,
        FencedOut,
        ForbiddenError,
        InternalServerError,
        NotFoundError,
        OperationFailedError,
        PaginationError,
        PayloadTooLargeError,
        RateLimitError,
        ResponseDecodeError,
        ServerError,
        ServiceUnavailableError,
        SpApiError,
        TokenEndpointUnreachableError,
        UnknownMarketplaceWarning,
        UnprocessableEntityError,
        UnsupportedMediaTypeError,
        UploadError,
    )
    from .resources.service_jobs import JobFilters, JobPaginator

#: Where each public name lives.
_HOMES = {
    "AccessToken": "._auth",
    "AccessTokenProvider": "._auth",
    "ApiConnectionError": ".errors",
    "ApiStatusError": ".errors",
    "ApiTimeoutError": ".errors",
    "AuthenticationError": ".errors",
    "BadRequestError": ".errors",
    "FencedOut": ".errors",
    "ForbiddenError": ".errors",
    "InternalServerError": ".errors",
    "JobFilters": ".resources.service_jobs",
    "JobPaginator": ".resources.service_jobs",
    "LwaCredentials": "._auth",
    "MemoryTokenCache": "._auth",
    "NotFoundError": ".errors",
    "OperationFailedError": ".errors",
    "PageIterator": "._pagination",
    "PaginationError": ".errors",
    "PayloadTooLargeError": ".errors",
    "RateLimitError": ".errors",
    "LearningPlan": "._ratelimit",
    "RateLimits": "._ratelimit",
    "RawResponse": "._sender",
    "Region": "._client",
    "ReservingPlan": "._ratelimit",
    "ResponseDecodeError": ".errors",
    "RetryPolicy": "._retry",
    "Sender": "._sender",
    "ServerError": ".errors",
    "ServiceUnavailableError": ".errors",
    "ServicesClient": "._client",
    "SpApiError": ".errors",
    "Timer": "._timing",
    "TokenCache": "._auth",
    "TokenEndpointUnreachableError": ".errors",
    "TokenReservation": "._ratelimit",
    "UnknownMarketplaceWarning": ".errors",
    "UnprocessableEntityError": ".errors",
    "UnsupportedMediaTypeError": ".errors",
    "UploadError": ".errors",
    "UsagePlan": "._ratelimit",
    "WallClockTimer": "._timing",
}

__all__ = [
    "AccessToken",
    "AccessTokenProvider",
    "ApiConnectionError",
    "ApiStatusError",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "FencedOut",
    "ForbiddenError",
    "InternalServerError",
    "JobFilters",
    "JobPaginator",
    "LearningPlan",
    "LwaCredentials",
    "MemoryTokenCache",
    "NotFoundError",
    "OperationFailedError",
    "PageIterator",
    "PaginationError",
    "PayloadTooLargeError",
    "RateLimitError",
    "RateLimits",
    "RawResponse",
    "Region",
    "ReservingPlan",
    "ResponseDecodeError",
    "RetryPolicy",
    "Sender",
    "ServerError",
    "ServiceUnavailableError",
    "ServicesClient",
    "SpApiError",
    "Timer",
    "TokenCache",
    "TokenEndpointUnreachableError",
    "TokenReservation",
    "UnknownMarketplaceWarning",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
    "UploadError",
    "UsagePlan",
    "WallClockTimer",
    "__version__",
]


if not TYPE_CHECKING:
    # Hidden from type checkers, which see the imports above: a misspelt name is then
    # an error for them rather than silently Any.

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home, __name__), name)
        globals()[name] = value  # once found, an attribute like any other
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
