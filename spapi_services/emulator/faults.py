"""Trouble on demand: latency, server errors, dropped connections, slow or mangled bodies.

A :class:`Fault` is set per operationId, for ``"*"`` (every Services API operation), or
for the two non-API endpoints ``"token"`` (LWA) and ``"upload"`` (document PUT).  An
operation's own fault replaces the ``"*"`` one.  For each request the injector draws a
:class:`FaultPlan` from a seeded ``random.Random``, so a run with the same seed and the
same request order fails the same way.  ``count`` limits a fault to the next N requests
it applies to, which makes "fail twice, then succeed" exact.

Most faults strike before the operation runs.  ``mangle`` strikes after: the operation
has taken effect and only its answer goes wrong, which is what makes a retry of a
request that creates something dangerous.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Mapping
from typing import Any

import attrs

from .._routes import ROUTES
from .._validation import nearest
from .replies import dump, error_entry

__all__ = [
    "FAULT_KEYS",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "check_fault_key",
    "error_page",
    "parse_fault_spec",
]

ALL = "*"

#: What a fault may be set for: the model's operationIds, ``token`` (the LWA endpoint),
#: ``upload`` (the document PUT) and ``*`` (every Services API operation).
FAULT_KEYS = (*ROUTES, "token", "upload", ALL)


def check_fault_key(operation: object, keys: Collection[str] = FAULT_KEYS) -> str:
    """``operation`` if a fault may be set for it (one of ``keys``); else a ``ValueError``
    naming the nearest (a fault set for a name no request carries would never strike)."""
    if not isinstance(operation, str):
        raise TypeError(f"operation: expected a string, got {type(operation).__name__}")
    if operation in keys:
        return operation
    near = nearest(operation, keys)
    hint = f"did you mean {near}? " if near else ""
    raise ValueError(
        f"operation: {operation!r} is no operation of the Services API; {hint}"
        f"Faults are set for an operationId ({', '.join(ROUTES)}), or token, upload or *"
    )


#: What ``mangle`` can do to an answer once the operation has run.
MANGLES = frozenset({"lose", "reset", "truncate", "html", "empty"})


def _rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name}: must be between 0 and 1, got {value}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name}: must not be negative, got {value}")


def _server_status(_: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not (500 <= value <= 599 or value == 429):
        raise ValueError(f"{attribute.name}: must be 429 or a 5xx status, got {value}")


def _mangle(_: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is not None and value not in MANGLES:
        raise ValueError(f"{attribute.name}: must be one of {sorted(MANGLES)}, got {value!r}")


@attrs.frozen(kw_only=True)
class Fault:
    """What can go wrong with one operation's requests.

    :param latency: seconds added before answering.
    :param jitter: up to this many more seconds, drawn uniformly per request.
    :param error_rate: share of requests answered with ``error_status`` instead.
    :param error_status: the status of those answers: a 5xx (500 or 503 are the usual),
        or 429 (``QuotaExceeded``, as an exhausted usage plan answers).
    :param html: answer errors with an HTML page, as a load balancer would, not JSON.
    :param drop_rate: share of requests whose connection is closed without an answer.
    :param slow_body: seconds over which the body of a normal answer trickles out
        (Services API operations only).
    :param mangle: spoil the answer *after* the operation has run (Services API
        operations only): ``"lose"`` closes the connection without answering,
        ``"reset"`` sends the status, the headers and half the body and then closes it,
        ``"truncate"`` sends half the body as if it were all of it, ``"html"`` answers 200
        with an HTML page, ``"empty"`` answers 200 with no body.
    :param mangle_rate: share of the operation's answers that ``mangle`` spoils.
    :param count: apply to this many requests only, then remove itself.
    """

    #: Seconds added before answering.
    latency: float = attrs.field(default=0.0, converter=float, validator=_non_negative)
    #: Up to this many more seconds, drawn per request.
    jitter: float = attrs.field(default=0.0, converter=float, validator=_non_negative)
    #: The share of requests answered with ``error_status`` instead (0 to 1).
    error_rate: float = attrs.field(default=0.0, converter=float, validator=_rate)
    #: The status of those answers: a 5xx, or 429.
    error_status: int = attrs.field(default=503, converter=int, validator=_server_status)
    #: Whether errors are HTML pages, as a load balancer sends, rather than JSON.
    html: bool = False
    #: The share of requests whose connection is closed without an answer.
    drop_rate: float = attrs.field(default=0.0, converter=float, validator=_rate)
    #: Seconds over which a normal answer's body trickles out.
    slow_body: float = attrs.field(default=0.0, converter=float, validator=_non_negative)
    #: How the answer is spoiled after the operation ran: ``lose``, ``reset``, ``truncate``,
    #: ``html`` or ``empty`` (``None``: not).
    mangle: str | None = attrs.field(default=None, validator=_mangle)
    #: The share of answers that ``mangle`` spoils.
    mangle_rate: float = attrs.field(default=1.0, converter=float, validator=_rate)
    #: How many requests the fault applies to before it removes itself (``None``: all).
    count: int | None = None


@attrs.frozen(slots=True)
class FaultPlan:
    """The trouble chosen for one request."""

    #: Seconds to wait before answering.
    delay: float = 0.0
    #: Whether the connection is closed without an answer.
    drop: bool = False
    #: The error status to answer with instead (``None``: the operation runs).
    error_status: int | None = None
    #: Whether that error is an HTML page.
    html: bool = False
    #: Seconds over which the body trickles out.
    slow_body: float = 0.0
    #: How the answer is spoiled after the operation ran (``None``: not).
    mangle: str | None = None


class FaultInjector:
    """The faults in force, and the seeded dice that decide each request's fate."""

    def __init__(self, seed: int = 0, *, operations: Collection[str] | None = None) -> None:
        """``operations``: the keys a fault may be set for (an emulator's are
        :data:`FAULT_KEYS`: a misspelt one is refused, naming the nearest); ``None``
        takes any key."""
        self._operations = None if operations is None else frozenset(operations)
        self._rng = random.Random(seed)
        self._faults: dict[str, Fault] = {}
        self._left: dict[str, int] = {}

    def set(self, operation: str = ALL, fault: Fault | None = None, **options: Any) -> Fault:
        """Set the fault of ``operation`` (an operationId, ``"*"``, ``"token"`` or ``"upload"``).

        Pass a :class:`Fault`, or its fields as keywords:
        ``faults.set("getServiceJobs", latency=0.25, error_rate=0.05, html=True)``.
        """
        self._check(operation)
        if fault is None:
            fault = Fault(**options)
        elif options:
            fault = attrs.evolve(fault, **options)
        self._faults[operation] = fault
        if fault.count is not None:
            self._left[operation] = fault.count
        else:
            self._left.pop(operation, None)
        return fault

    def _check(self, operation: str) -> None:
        if self._operations is not None and operation not in self._operations:
            check_fault_key(operation, self._operations)

    def get(self, operation: str) -> Fault | None:
        """The fault set for exactly this key, if any."""
        return self._faults.get(operation)

    @property
    def active(self) -> Mapping[str, Fault]:
        """Every fault in force, by key."""
        return dict(self._faults)

    def clear(self, operation: str | None = None) -> None:
        """Remove one key's fault, or every fault."""
        if operation is None:
            self._faults.clear()
            self._left.clear()
        else:
            self._check(operation)
            self._faults.pop(operation, None)
            self._left.pop(operation, None)

    def plan(self, operation: str, *, api: bool = True) -> FaultPlan | None:
        """The trouble for one request of ``operation``; ``None`` (fast) when there is none.

        ``api=False`` keeps the ``"*"`` fault away from the token and upload endpoints.
        """
        if not self._faults:
            return None
        key = operation
        fault = self._faults.get(key)
        if fault is None and api:
            key = ALL
            fault = self._faults.get(key)
        if fault is None:
            return None
        self._spend(key)
        rng = self._rng
        delay = fault.latency + (rng.uniform(0.0, fault.jitter) if fault.jitter else 0.0)
        drop = fault.drop_rate > 0 and rng.random() < fault.drop_rate
        failed = not drop and fault.error_rate > 0 and rng.random() < fault.error_rate
        mangle = fault.mangle
        # No draw unless the rate is partial: the other dice's seeded sequence stays as it was.
        if mangle is not None and fault.mangle_rate < 1 and rng.random() >= fault.mangle_rate:
            mangle = None
        return FaultPlan(
            delay=delay,
            drop=drop,
            error_status=fault.error_status if failed else None,
            html=fault.html,
            slow_body=fault.slow_body,
            mangle=mangle,
        )

    def _spend(self, key: str) -> None:
        left = self._left.get(key)
        if left is None:
            return
        if left <= 1:
            self.clear(key)
        else:
            self._left[key] = left - 1


_REASONS = {
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_JSON_ERRORS = {
    429: ("QuotaExceeded", "You exceeded your quota for the requested resource."),
    500: ("InternalFailure", "We encountered an internal error. Please try again."),
    503: ("ServiceUnavailable", "Service temporarily unavailable. Please try again later."),
}


def error_page(status: int, *, html: bool) -> tuple[bytes, str]:
    """The body and content type of an injected server error."""
    reason = _REASONS.get(status, "Server Error")
    if html:
        page = (
            f"<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
            f"<body><h1>{status} {reason}</h1><p>The server is unable to handle the request "
            "right now.</p></body></html>\n"
        )
        return page.encode(), "text/html"
    code, message = _JSON_ERRORS.get(status, ("InternalFailure", reason))
    return dump({"errors": [error_entry(code, message)]}), "application/json"


_FLOATS = {"latency", "jitter", "error_rate", "drop_rate", "slow_body", "mangle_rate"}
_TRUE = {"1", "true", "yes", "on"}


def parse_fault_spec(spec: str) -> tuple[str, Fault]:
    """Read ``"OPERATION:key=value,key=value"`` (the CLI's ``--fault``) into a fault.

    ``OPERATION`` may be ``*``; keys are the fields of :class:`Fault`, e.g.
    ``getServiceJobs:latency=0.25,error_rate=0.05,error_status=503,html=true``.
    """
    operation, sep, options = spec.partition(":")
    if not sep or not operation:
        raise ValueError(f"fault spec {spec!r}: expected OPERATION:key=value,...")
    try:
        check_fault_key(operation)
    except ValueError as exc:
        raise ValueError(f"fault spec {spec!r}: {str(exc).removeprefix('operation: ')}") from None
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, eq, raw = item.partition("=")
        if not eq:
            raise ValueError(f"fault spec {spec!r}: {item!r} is not key=value")
        if key in _FLOATS:
            values[key] = _read(spec, key, raw, float)
        elif key in ("error_status", "count"):
            values[key] = _read(spec, key, raw, int)
        elif key == "html":
            values[key] = raw.lower() in _TRUE
        elif key == "mangle":
            values[key] = raw
        else:
            known = sorted(attrs.fields_dict(Fault))
            near = nearest(key, known)
            hint = f"did you mean {near}? " if near else ""
            raise ValueError(
                f"fault spec {spec!r}: unknown option {key!r}; {hint}The options are "
                f"{', '.join(known)}"
            )
    try:
        return operation, Fault(**values)
    except ValueError as exc:
        raise ValueError(f"fault spec {spec!r}: {exc}") from None


def _read(spec: str, key: str, raw: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(raw)
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise ValueError(f"fault spec {spec!r}: {key}={raw!r} is not {noun}") from None
