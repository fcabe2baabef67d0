"""What a client is configured with: one frozen attrs class, checked as it is built.

:class:`ServicesClient` turns its keyword arguments into a :class:`ClientConfig`;
``with_options`` makes a changed copy with :func:`attrs.evolve`, which checks the changed
values the same way.  Every check raises ``TypeError`` or ``ValueError`` naming the
argument and the rule, before anything is sent.
"""

from __future__ import annotations

import enum
import math
import platform
import sys
from collections.abc import Iterable
from typing import Any

import aiohttp
import attrs

from . import __version__
from ._auth import AccessTokenProvider, LwaCredentials, TokenCache
from ._marketplaces import check_marketplace_id
from ._ratelimit import RateLimits, UsagePlan
from ._retry import RetryPolicy
from ._sender import Sender
from ._timing import Timer

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "ClientConfig",
    "Region",
    "build_user_agent",
    "make_plan",
]

_MAX_USER_AGENT = 500

#: Seconds for one HTTP attempt, unless the client is told otherwise.
DEFAULT_TIMEOUT = 30.0

#: Seconds for a whole call (waits for the plan and the queue, attempts and back-offs).
DEFAULT_DEADLINE = 60.0


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


def _type(name: str, expected: type | tuple[type, ...], what: str) -> Any:
    def check(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, expected):
            raise TypeError(f"{name}: expected {what}, got {type(value).__name__}")

    return check


def _seconds(name: str, *, optional: bool = False) -> Any:
    def check(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value < math.inf
        ):
            rule = "a positive number of seconds" + (" or None" if optional else "")
            raise ValueError(f"{name}: must be {rule}, got {value!r}")

    return check


def _marketplace(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
    if value is not None:
        check_marketplace_id("marketplace_id", value, warn=False)


def _endpoint(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise TypeError(f"endpoint: expected a string, got {type(value).__name__}")
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"endpoint: must be an http(s) URL, got {value!r}")


def _provider(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError("access_token_provider: expected an async callable returning a token")


def _plan(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
    if value is None or isinstance(value, bool | UsagePlan):
        return
    raise TypeError(
        "rate_limits: expected None, False, a RateLimits or another UsagePlan, "
        f"got {type(value).__name__}"
    )


def make_plan(value: UsagePlan | bool | None) -> UsagePlan | None:
    """The plan a ``rate_limits`` value means: ``None``/``True`` Amazon's published plans
    (a new :class:`RateLimits`), ``False`` none, otherwise the plan given."""
    if value is None or value is True:
        return RateLimits()
    if value is False:
        return None
    return value


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


def _user_agent(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
    build_user_agent(value)  # raises for a value it cannot use


def _timer(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (
        callable(getattr(value, "now", None)) and callable(getattr(value, "sleep", None))
    ):
        raise TypeError("timer: expected an object with now() and async sleep(seconds)")


def _sender(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not callable(value):
        raise TypeError("sender: expected an async callable (method, url, headers, body, timeout)")


def _provider_of(name: str, kind: str, method: str) -> Any:
    def check(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not callable(getattr(value, method, None)):
            raise TypeError(
                f"{name}: expected an OpenTelemetry {kind} (with {method}()), "
                f"got {type(value).__name__}"
            )

    return check


def _trace_configs(value: Iterable[aiohttp.TraceConfig] | None) -> tuple[aiohttp.TraceConfig, ...]:
    if value is None:
        return ()
    if isinstance(value, aiohttp.TraceConfig):
        raise TypeError("trace_configs: expected a list of aiohttp.TraceConfig, not one")
    try:
        return tuple(value)
    except TypeError:
        raise TypeError(
            f"trace_configs: expected a list of aiohttp.TraceConfig, got {type(value).__name__}"
        ) from None


def _check_trace_configs(_: Any, __: attrs.Attribute[Any], value: Any) -> None:
    for index, item in enumerate(value):
        if not isinstance(item, aiohttp.TraceConfig):
            raise TypeError(
                f"trace_configs[{index}]: expected an aiohttp.TraceConfig, "
                f"got {type(item).__name__}"
            )


@attrs.frozen(kw_only=True)
class ClientConfig:
    """Everything a :class:`ServicesClient` is configured with (see its docstring)."""

    #: The LWA application and refresh token (``None`` with an ``access_token_provider``).
    credentials: LwaCredentials | None = attrs.field(
        default=None, validator=_type("credentials", LwaCredentials, "LwaCredentials")
    )
    #: Amazon's region, whose API host and marketplaces the client uses.
    region: Region = attrs.field(default=Region.NA, validator=_type("region", Region, "a Region"))
    #: Whether calls go to the region's static sandbox host.
    sandbox: bool = attrs.field(default=False, validator=_type("sandbox", bool, "True or False"))
    #: Another API base URL in place of the region's host (a proxy, the emulator), or ``None``.
    endpoint: str | None = attrs.field(default=None, validator=_endpoint)
    #: Another LWA token URL, or ``None`` for Login with Amazon's.
    token_url: str | None = attrs.field(default=None, validator=_type("token_url", str, "a string"))
    #: The marketplace of operations not given one, or ``None``.
    marketplace_id: str | None = attrs.field(default=None, validator=_marketplace)
    #: An async callable giving the access token to send, in place of the LWA exchange.
    access_token_provider: AccessTokenProvider | None = attrs.field(
        default=None, validator=_provider
    )
    #: The caller's ``aiohttp.ClientSession``, used and never closed (``None``: the client makes its
    #: own).
    session: aiohttp.ClientSession | None = attrs.field(
        default=None,
        validator=_type("session", aiohttp.ClientSession, "an aiohttp.ClientSession"),
    )
    #: Seconds for one HTTP attempt.
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=_seconds("timeout"))
    #: Seconds for a whole call, waits and retries included (``None``: no bound beyond each
    #: attempt's timeout).
    deadline: float | None = attrs.field(
        default=DEFAULT_DEADLINE, validator=_seconds("deadline", optional=True)
    )
    #: When and how patiently failed attempts are retried.
    retry: RetryPolicy = attrs.field(
        factory=RetryPolicy, validator=_type("retry", RetryPolicy, "a RetryPolicy")
    )
    #: The usage plans calls are paced by: ``None`` for Amazon's published ones, ``False`` for none,
    #: or a shared plan.
    rate_limits: UsagePlan | bool | None = attrs.field(default=None, validator=_plan)
    #: The name of the selling partner whose usage plan is spent, for plans shared between clients
    #: (default: the refresh token, hashed).
    seller: str | None = attrs.field(default=None, validator=_type("seller", str, "a string"))
    #: Where access tokens are kept (``None``: the client's own memory).
    token_cache: TokenCache | None = attrs.field(
        default=None,
        validator=_type(
            "token_cache", TokenCache, "a TokenCache (MemoryTokenCache, RedisTokenCache)"
        ),
    )
    #: Your application's name and version, sent before the SDK's in ``User-Agent``.
    user_agent: str | None = attrs.field(default=None, validator=_user_agent)
    #: A replacement for the HTTP layer (for tests, or another HTTP stack); ``None``: aiohttp.
    sender: Sender | None = attrs.field(default=None, validator=_sender)
    #: A replacement for the clock and sleep the client waits with (for tests).
    timer: Timer | None = attrs.field(default=None, validator=_timer)
    #: Whether calls are traced and measured with OpenTelemetry, when it is installed.
    instrument: bool = attrs.field(
        default=True, validator=_type("instrument", bool, "True or False")
    )
    #: The OpenTelemetry ``TracerProvider`` for the calls' spans (``None``: the global one).
    tracer_provider: Any = attrs.field(
        default=None, validator=_provider_of("tracer_provider", "TracerProvider", "get_tracer")
    )
    #: The OpenTelemetry ``MeterProvider`` for the SDK's metrics (``None``: the global one).
    meter_provider: Any = attrs.field(
        default=None, validator=_provider_of("meter_provider", "MeterProvider", "get_meter")
    )
    #: ``aiohttp.TraceConfig`` objects for the session the client makes.
    trace_configs: tuple[aiohttp.TraceConfig, ...] = attrs.field(
        default=(), converter=_trace_configs, validator=_check_trace_configs
    )

    def __attrs_post_init__(self) -> None:
        if self.credentials is None and self.access_token_provider is None:
            raise ValueError("credentials: required unless access_token_provider is given")
        if self.trace_configs and self.session is not None:
            raise ValueError(
                "trace_configs: only for the session the client makes; with session= "
                "give them to your own: aiohttp.ClientSession(trace_configs=[...])"
            )
        if self.trace_configs and self.sender is not None:
            raise ValueError(
                "trace_configs: only for the client's own aiohttp session, which a sender= replaces"
            )

    @property
    def base_url(self) -> str:
        """The API's base URL: the endpoint given, else the region's (sandbox) host."""
        region = self.region
        chosen = self.endpoint or (region.sandbox_endpoint if self.sandbox else region.endpoint)
        return chosen.rstrip("/")
