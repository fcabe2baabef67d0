"""The ``SPAPI_*`` environment variables: one table, read by one function.

:class:`~spapi_services.ServicesClient` and the ``spapi-services`` command line both get
their connection settings from :func:`connection_settings`, with one precedence for each
setting: the argument (or command-line option) when given, else its variable, else the
default.  A variable set to the empty string counts as unset.  A bad value is refused
naming where it came from: the argument (``region``) or the variable (``SPAPI_REGION``).

The API host is one choice made from three settings: ``endpoint`` (or ``SPAPI_ENDPOINT``)
when set, else the ``region``'s production host, or its sandbox host with ``sandbox``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs

from ._config import Region
from ._marketplaces import check_marketplace_id, check_region

__all__ = [
    "ENVIRONMENT",
    "ConnectionSettings",
    "Variable",
    "connection_settings",
    "parse_flag",
    "parse_region",
]


@attrs.frozen
class Variable:
    """An environment variable, the argument it stands for, and what it holds."""

    name: str
    argument: str
    meaning: str
    default: str


#: Every variable the SDK and the command line read, in the order the guides list them.
ENVIRONMENT: tuple[Variable, ...] = (
    Variable(
        "SPAPI_CLIENT_ID", "credentials", "your Login with Amazon app's client id", "(required)"
    ),
    Variable("SPAPI_CLIENT_SECRET", "credentials", "that app's client secret", "(required)"),
    Variable(
        "SPAPI_REFRESH_TOKEN",
        "credentials",
        "the selling partner's refresh token, given when they authorised your app",
        "(required)",
    ),
    Variable("SPAPI_REGION", "region", "Amazon's region: NA, EU or FE (any case)", "NA"),
    Variable(
        "SPAPI_SANDBOX",
        "sandbox",
        "1, true, yes or on: the region's static sandbox host (0, false, no, off: not)",
        "off",
    ),
    Variable(
        "SPAPI_ENDPOINT",
        "endpoint",
        "another API base URL, in place of the region's host (a proxy, the emulator)",
        "the region's host",
    ),
    Variable(
        "SPAPI_TOKEN_URL",
        "token_url",
        "another Login with Amazon token URL (the emulator's)",
        "Login with Amazon",
    ),
    Variable(
        "SPAPI_MARKETPLACE_ID",
        "marketplace_id",
        "the marketplace for operations that take one, such as ATVPDKIKX0DER",
        "none: give it per call",
    ),
)

_BY_ARGUMENT = {v.argument: v.name for v in ENVIRONMENT if v.argument != "credentials"}
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f"})
_REGIONS = ("NA", "EU", "FE")


@attrs.frozen
class ConnectionSettings:
    """Where a client connects, and which source gave each setting.

    ``sources`` maps each of ``region``, ``sandbox``, ``endpoint``, ``token_url`` and
    ``marketplace_id`` to ``"argument"``, the variable's name, or ``"default"``.
    """

    region: str
    sandbox: bool
    endpoint: str | None
    token_url: str | None
    marketplace_id: str | None
    sources: Mapping[str, str]


def parse_flag(name: str, value: str) -> bool:
    """An on/off variable's value (``1``/``true``/``yes``/``on``, ``0``/``false``/...)."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(
        f"{name}: {value!r} is neither on (1, true, yes, on) nor off (0, false, no, off)"
    )


def parse_region(name: str, value: str) -> str:
    """A region's name, NA, EU or FE, from a variable's value in any case."""
    if value.strip().upper() in _REGIONS:
        return value.strip().upper()
    raise ValueError(f"{name}: {value!r} is not one of NA, EU, FE")


def _url(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a URL (a string), got {type(value).__name__}")
    if not value.startswith(("http://", "https://")):
        raise ValueError(
            f"{name}: must be an http(s) URL, such as http://127.0.0.1:8080, got {value!r}"
        )
    return value


def connection_settings(
    *,
    region: Any = None,
    sandbox: Any = None,
    endpoint: Any = None,
    token_url: Any = None,
    marketplace_id: Any = None,
    environ: Mapping[str, str] | None = None,
) -> ConnectionSettings:
    """The connection settings: each argument when not ``None``, else its variable in
    ``environ`` (default: :data:`os.environ`), else the default.

    Raises ``ValueError``/``TypeError`` naming the argument or the variable whose value
    is wrong.  ``sandbox`` with an endpoint is refused: the endpoint would replace the
    sandbox host, and the sandbox would be silently lost.  A ``marketplace_id`` argument
    that Amazon serves from another region than ``region``'s host is refused; one from
    the environment is a default, checked where it is used (``ServicesClient`` does).
    """
    env = os.environ if environ is None else environ
    given = {
        "region": region,
        "sandbox": sandbox,
        "endpoint": endpoint,
        "token_url": token_url,
        "marketplace_id": marketplace_id,
    }
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for argument, value in given.items():
        variable = _BY_ARGUMENT[argument]
        text = env.get(variable, "").strip()
        if value is not None:
            values[argument], sources[argument] = _read(argument, argument, value), "argument"
        elif text:
            values[argument], sources[argument] = _read(argument, variable, text), variable
        else:
            values[argument], sources[argument] = _DEFAULTS[argument], "default"
    if (
        values["endpoint"] is None
        and values["marketplace_id"] is not None
        and sources["marketplace_id"] == "argument"
    ):
        # Both given by the caller: a mistake now.  A marketplace from the environment is
        # only a default, checked against the region where a call falls back on it.
        check_region("marketplace_id", values["marketplace_id"], values["region"])
    if values["sandbox"] and values["endpoint"] is not None:
        raise ValueError(
            f"{_named('sandbox', sources)} / {_named('endpoint', sources)}: give one of them: "
            f"the endpoint ({values['endpoint']}) would replace the sandbox host"
        )
    return ConnectionSettings(sources=sources, **values)


_DEFAULTS: dict[str, Any] = {
    "region": "NA",
    "sandbox": False,
    "endpoint": None,
    "token_url": None,
    "marketplace_id": None,
}


def _named(argument: str, sources: Mapping[str, str]) -> str:
    source = sources[argument]
    return argument if source in ("argument", "default") else source


def _read(argument: str, name: str, value: Any) -> Any:
    """One setting's value, checked, from the argument or (a string) the variable."""
    if argument == "region":
        if name != argument:
            return parse_region(name, value)
        if not isinstance(value, Region):
            raise TypeError(
                f"region: expected a Region (Region.NA, EU or FE), got {type(value).__name__}"
            )
        return value.name
    if argument == "sandbox":
        if isinstance(value, str):
            return parse_flag(name, value)
        if not isinstance(value, bool):
            raise TypeError(f"{name}: expected True or False, got {type(value).__name__}")
        return value
    if argument in ("endpoint", "token_url"):
        return _url(name, value)
    return check_marketplace_id(name, value)
