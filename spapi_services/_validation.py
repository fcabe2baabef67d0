"""Client-side checks of what we are about to send.

Every rule here comes from the API model (lengths, ranges, patterns, item counts) or from
the type of a field.  A failure is a :class:`ValueError` (or :class:`TypeError` for the
wrong kind of value) that names the field by its Python path, such as
``schedules[2].recurrence.days_of_month[0]``, and states the rule.  Nothing here is ever
applied to responses: what Amazon sends back is accepted as it comes.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from .models._base import ApiEnum

__all__ = [
    "check_datetime",
    "check_enum",
    "check_id",
    "check_int",
    "check_items",
    "check_request",
    "check_string",
    "did_you_mean",
    "nearest",
]

E = TypeVar("E", bound=ApiEnum)


# --- single values -------------------------------------------------------------------


def check_string(
    name: str,
    value: Any,
    *,
    min_length: int | None = None,
    max_length: int | None = None,
    pattern: str | None = None,
) -> str:
    """A string within the given length and pattern."""
    if not isinstance(value, str):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}")
    if min_length is not None and len(value) < min_length:
        if min_length == 1:
            raise ValueError(f"{name}: must not be empty")
        raise ValueError(
            f"{name}: must be at least {min_length} characters, got {len(value)}: {value!r}"
        )
    if max_length is not None and len(value) > max_length:
        raise ValueError(f"{name}: must be at most {max_length} characters, got {len(value)}")
    if pattern is not None and not _compiled(pattern).fullmatch(value):
        raise ValueError(f"{name}: {value!r} does not match the pattern {pattern}")
    return value


def check_id(
    name: str,
    value: Any,
    *,
    max_length: int = 100,
    carried_as: Sequence[str] = (),
) -> str:
    """An identifier: a non-empty string of at most ``max_length`` characters, or a record
    carrying one in an attribute named in ``carried_as`` (a ``ServiceJob`` for
    ``("service_job_id",)``); any object with the attribute will do: the SDK's models,
    the emulator's records, the caller's own.

    Where records are not taken, a record that has the attribute is refused with a
    message naming it (``pass its .service_job_id``).
    """
    if isinstance(value, str):
        return check_string(name, value, min_length=1, max_length=max_length)
    for attribute in carried_as:
        if hasattr(value, attribute):
            carried = getattr(value, attribute)
            where = f"{name} ({type(value).__name__}.{attribute})"
            if carried is None:
                raise ValueError(f"{where}: the {type(value).__name__} has no {attribute}")
            return check_string(where, carried, min_length=1, max_length=max_length)
    if carried_as:
        carriers = " or ".join(f".{a}" for a in carried_as)
        raise TypeError(
            f"{name}: expected an id (a string) or a record with {carriers}, "
            f"got {type(value).__name__}"
        )
    own = re.sub(r"\[\d+\]$", "", name)
    if own.endswith("_id") and hasattr(value, own):
        raise TypeError(f"{name}: expected a string, got {type(value).__name__}: pass its .{own}")
    raise TypeError(f"{name}: expected a string, got {type(value).__name__}")


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    multiple_of: int | None = None,
) -> int:
    """A whole number within the given range."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    _check_number(name, value, minimum, maximum, multiple_of)
    return value


def check_datetime(name: str, value: Any) -> datetime:
    """An aware datetime (a naive one is refused: its time zone would be a guess)."""
    if not isinstance(value, datetime):
        raise TypeError(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"{name}: naive datetime {value.isoformat()} has no time zone; "
            "pass an aware datetime (for example with tzinfo=timezone.utc)"
        )
    return value


def check_enum(name: str, value: Any, enum: type[E]) -> E:
    """A member of ``enum``, or one of its known values as a string.

    A plain string that is not a known value is refused, so a typo fails here rather than
    at Amazon.  To send a value this release does not know yet, pass it through the enum
    (``ServiceJobStatus("NEW_STATUS")``): that is taken as deliberate.
    """
    if isinstance(value, enum):
        return value
    if isinstance(value, str):
        # Names equal values in every enum of this API.  A member of another enum with a
        # known value (``ItemStatus.ACTIVE`` for an ``AppointmentStatus``) is the same
        # string on the wire, so it is taken by value.
        text = str(value)
        if text in enum.__members__:
            return enum(text)
        # Not taken in another case: what is sent is what was written; the nearest value
        # is named instead (``pending_schedule`` → ``PENDING_SCHEDULE``).
        allowed = ", ".join(enum.__members__)
        hint = did_you_mean(text, enum.__members__)
        raise ValueError(f"{name}: {text!r} is not one of {allowed}{hint}")
    raise TypeError(f"{name}: expected a {enum.__name__} or string, got {type(value).__name__}")


def check_items(
    name: str,
    values: Any,
    *,
    min_items: int | None = None,
    max_items: int | None = None,
) -> list[Any]:
    """A list, tuple or other non-string iterable, within the given item count.

    A mapping is refused: iterating it would send its keys, which is never what a caller
    who passed ``{"resourceId": ...}`` or a dict of technicians meant.
    """
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise TypeError(f"{name}: expected a list, got {type(values).__name__}")
    items: list[Any] = list(values)
    if min_items is not None and len(items) < min_items:
        if min_items == 1:
            raise ValueError(f"{name}: must not be empty")
        raise ValueError(f"{name}: must have at least {min_items} items, got {len(items)}")
    if max_items is not None and len(items) > max_items:
        raise ValueError(f"{name}: must have at most {max_items} items, got {len(items)}")
    return items


# How alike a spelling must be to be named as meant: a slip of a letter or two (0.8 keeps
# image/pgn → image/png and leaves image/webp unguessed).
_NEAR = 0.8


def nearest(typed: str, choices: Iterable[str]) -> str | None:
    """The choice nearest ``typed``: the same letters in another case first, then the
    closest spelling (in any case); ``None`` when none is near."""
    options = list(choices)
    folded = [c for c in options if c.casefold() == typed.casefold()]
    if folded:
        return folded[0]
    near = difflib.get_close_matches(typed, options, n=1, cutoff=_NEAR)
    if near:
        return near[0]
    upper = {c.upper(): c for c in options}
    near = difflib.get_close_matches(typed.upper(), list(upper), n=1, cutoff=_NEAR)
    return upper[near[0]] if near else None


def did_you_mean(typed: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` naming the choice :func:`nearest` ``typed``, or ``""``."""
    near = nearest(typed, choices)
    return "" if near is None else f"; did you mean {near!r}?"


def _check_number(
    name: str,
    value: int | float | Decimal,
    minimum: int | None,
    maximum: int | None,
    multiple_of: int | None,
) -> None:
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: must be at most {maximum}, got {value}")
    if multiple_of is not None and value % multiple_of:
        raise ValueError(f"{name}: must be a multiple of {multiple_of}, got {value}")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# --- whole request bodies ------------------------------------------------------------


def check_request(obj: Any, name: str) -> None:
    """Check a request model (and everything in it) against its types and the model's bounds."""
    if not attrs.has(type(obj)):
        raise TypeError(f"{name}: expected a request model, got {type(obj).__name__}")
    _check_model(obj, name)


@functools.cache
def _fields(cls: type) -> tuple[tuple[str, Any, Mapping[str, Any]], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((a.name, hints[a.name], a.metadata.get("bounds", {})) for a in attrs.fields(cls))


def _check_model(obj: Any, path: str) -> None:
    cls: type = type(obj)
    for field, tp, bounds in _fields(cls):
        _check_value(getattr(obj, field), tp, f"{path}.{field}", bounds)


def _check_value(value: Any, tp: Any, path: str, bounds: Mapping[str, Any]) -> None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None:
            return
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
        origin = typing.get_origin(tp)
    if value is None:
        raise ValueError(f"{path}: is required")
    if origin in (tuple, Sequence):
        items = check_items(
            path, value, min_items=bounds.get("min_items"), max_items=bounds.get("max_items")
        )
        item_bounds = {k[5:]: v for k, v in bounds.items() if k.startswith("item_")}
        inner = typing.get_args(tp)[0]
        for index, item in enumerate(items):
            _check_value(item, inner, f"{path}[{index}]", item_bounds)
        return
    if origin is dict:
        if not isinstance(value, Mapping):
            raise TypeError(f"{path}: expected a mapping, got {type(value).__name__}")
        return
    if isinstance(tp, type) and issubclass(tp, ApiEnum):
        check_enum(path, value, tp)
    elif tp is datetime:
        check_datetime(path, value)
    elif tp is str:
        check_string(
            path,
            value,
            min_length=bounds.get("min_length"),
            max_length=bounds.get("max_length"),
            pattern=bounds.get("pattern"),
        )
    elif tp is int:
        check_int(
            path,
            value,
            minimum=bounds.get("minimum"),
            maximum=bounds.get("maximum"),
            multiple_of=bounds.get("multiple_of"),
        )
    elif tp is bool:
        if not isinstance(value, bool):
            raise TypeError(f"{path}: expected a boolean, got {type(value).__name__}")
    elif tp is Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise TypeError(f"{path}: expected a number, got {type(value).__name__}")
    elif attrs.has(tp):
        if not isinstance(value, tp):
            raise TypeError(f"{path}: expected {tp.__name__}, got {type(value).__name__}")
        _check_model(value, path)
