"""The one converter between the models and the API's JSON, and the body decoders.

Built once at import and never changed afterwards (cattrs captures hooks when it first
generates a class's code).  Wire names are camelCase; unknown keys are ignored; ``None``
fields are left out of what we send; datetimes are read tolerantly and written in UTC
with a ``Z``.  Scalars are checked by type, so a body of the wrong shape fails with the
JSON path of the mismatch instead of being coerced into nonsense.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

from .errors import ResponseDecodeError
from .models._base import ApiEnum
from .models.common import ApiWarning, Error

#: Set to ``1``, the SDK uses neither orjson nor msgspec, as if the ``speedups`` extra were
#: not installed (the tests decode both ways through it).
NO_SPEEDUPS_VARIABLE = "SPAPI_SERVICES_NO_SPEEDUPS"
_speedups = os.environ.get(NO_SPEEDUPS_VARIABLE, "") in ("", "0")

# The ``speedups`` extra: orjson when installed (looked up by name, so that type checkers
# without it installed see no missing module).
_orjson: Any = None
if _speedups:
    try:
        _orjson = importlib.import_module("orjson")
    except ImportError:  # pragma: no cover - depends on what is installed
        _orjson = None

# And msgspec, imported at the first decode (see :mod:`spapi_services._mirror`):
# ``_LATER`` until then, None when it is not installed.
_LATER: Any = object()
_msgspec: Any = _LATER if _speedups else None

__all__ = [
    "converter",
    "decode_problems",
    "dumps",
    "format_datetime",
    "loads",
    "make_converter",
    "parse_datetime",
    "parse_errors",
    "parse_warnings",
    "structure",
    "to_camel",
    "unstructure",
]

T = TypeVar("T")

# Wire names that the camelCase rule does not produce.
_WIRE_NAMES = {"content_md5": "contentMD5"}


def to_camel(name: str) -> str:
    """``service_job_id`` -> ``serviceJobId`` (``address_line1`` -> ``addressLine1``)."""
    wire = _WIRE_NAMES.get(name)
    if wire is not None:
        return wire
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# --- datetimes -------------------------------------------------------------------------


def parse_datetime(text: str) -> datetime:
    """Read an API timestamp into an aware datetime.

    Accepts what the API and its sandbox actually send: ``Z``, fractional seconds of any
    length, ``+05:30`` and the hour-only ``-07``; and every form RFC 3339 allows, ``t``
    and ``z`` in lower case and a leap second included (read as the last microsecond of
    its minute: a datetime has no 60th second).  A timestamp without an offset is taken
    as UTC, which is what the API documents for every time it returns.
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        value = _parse_rfc3339_rarity(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


# What RFC 3339 allows and fromisoformat refuses: a lower-case "z", a leap second.
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:)(\d\d)(\.\d+)?([Zz]|[+-]\d\d(?::?\d\d)?)?")


def _parse_rfc3339_rarity(text: str) -> datetime:
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(f"Invalid isoformat string: {text[:40]!r}")
    head, second, fraction, offset = match.groups()
    if second == "60":
        second, fraction = "59", ".999999"
    if offset in ("z", "Z"):
        offset = "+00:00"
    return datetime.fromisoformat(f"{head}{second}{fraction or ''}{offset or ''}")


def format_datetime(value: datetime) -> str:
    """Write an aware datetime as UTC with a ``Z``; a naive one is a ValueError.

    The one exception: within a day of the calendar's ends (1 January of year 1, 31
    December 9999) an instant may have no UTC date a datetime can hold, and is written
    with its own offset instead, so that whatever was read can be written back.
    """
    if value.tzinfo is UTC:
        # The usual case (every timestamp the API sends is read as UTC): no conversion.
        writer = _datetime_writer()
        microsecond = value.microsecond
        if writer is not None:
            # msgspec's C writer: "...T12:00:00Z", or six digits of fraction.
            text: str = writer(value)
            if not microsecond:
                return text
            return text[:23] + "Z" if microsecond >= 1000 else text[:19] + "Z"
        if microsecond >= 1000:
            return value.isoformat(timespec="milliseconds")[:-6] + "Z"
        return value.isoformat(timespec="seconds")[:-6] + "Z"
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} has no time zone; "
            "pass an aware datetime (for example with tzinfo=timezone.utc)"
        )
    # isoformat pads the year to four digits (strftime's %Y does not on every platform)
    # and truncates to the millisecond, which is all the API keeps.
    try:
        utc = value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        return value.isoformat(timespec="milliseconds" if value.microsecond >= 1000 else "seconds")
    return utc.isoformat(timespec="milliseconds" if utc.microsecond >= 1000 else "seconds") + "Z"


def _datetime_writer() -> Callable[[datetime], str] | None:
    """msgspec's ``to_builtins`` (which writes a UTC datetime as RFC 3339 text), if any."""
    found = _load_msgspec()
    return None if found is None else found.to_builtins


# --- strict, fast scalar hooks --------------------------------------------------------


class _ShapeError(ValueError):
    """A value of the wrong JSON kind; its message is reported as is, with the path."""


def _expected(value: Any, kind: str) -> _ShapeError:
    # Only the JSON kind of the value: bodies hold buyers' names and phones, and these
    # messages end up in logs.
    return _ShapeError(f"expected {kind}, got {_json_kind(value)}")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float | Decimal):
        return "a number"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _structure_str(value: Any, _: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return str(value)  # an id sent as a number is still the id
    raise _expected(value, "a string")


def _structure_int(value: Any, _: Any) -> int:
    if type(value) is int:
        return value
    if isinstance(value, float | Decimal) and not isinstance(value, bool):
        try:
            whole = int(value)
        except (OverflowError, ValueError):  # infinity, NaN
            raise _expected(value, "an integer") from None
        if whole == value:
            return whole
    raise _expected(value, "an integer")


def _structure_bool(value: Any, _: Any) -> bool:
    if type(value) is bool:
        return value
    raise _expected(value, "a boolean")


def _structure_decimal(value: Any, _: Any) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            # A float's repr is the shortest text that reads back as it: what was sent.
            number = Decimal(repr(value) if isinstance(value, float) else value)
        except InvalidOperation:
            raise _expected(value, "a number") from None
    else:
        raise _expected(value, "a number")
    if not number.is_finite():
        # NaN and Infinity are no amount of money, and no JSON number either.
        raise _ShapeError(f"expected a finite number, got {_json_kind(value)} {str(value)[:20]!r}")
    return number


def _structure_datetime(value: Any, _: Any) -> datetime:
    # parse_datetime, inlined: a page of jobs holds hundreds of timestamps.
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            try:
                parsed = _parse_rfc3339_rarity(value)
            except ValueError:
                raise _ShapeError(f"expected an ISO 8601 timestamp, got {value[:40]!r}") from None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise _expected(value, "an ISO 8601 timestamp")


def _structure_enum(value: Any, cls: type[ApiEnum]) -> ApiEnum:
    if type(value) is str:
        # The member map first: calling the class costs several times more.
        member = cls._value2member_map_.get(value)
        if member is not None:
            return member  # type: ignore[return-value]
        return cls(value)
    if isinstance(value, str):
        return cls(value)
    raise _expected(value, f"a {cls.__name__} string")


def _unstructure_decimal(value: Decimal) -> Decimal:
    # Kept a Decimal: :func:`dumps` writes it digit for digit (a float would round it).
    return value


# --- container hooks that resolve their inner hook once ------------------------------
#
# cattrs' generic handling of ``X | None`` and ``tuple[X, ...]`` looks the inner hook up
# on every value.  These factories look it up once and pass values that are already of
# the exact scalar type straight through; arrays of objects call each object's lean
# function directly, and only on a failure go through the full hook for the report.

_EXACT_SCALARS: frozenset[Any] = frozenset({str, int, bool})


def _raw_object_fn(hook: Any) -> Any:
    """The lean function behind an object hook, or None for any other hook.

    It takes a dict and does not report problems: a caller that gets an exception from
    it must call the hook itself to get the problems with their paths.
    """
    return getattr(hook, "raw", None)


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        return len(args) == 2 and type(None) in args
    return False


def _optional_factory(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = next(a for a in typing.get_args(tp) if a is not type(None))
    hook = conv.get_structure_hook(inner)

    if inner in _EXACT_SCALARS:

        def structure_optional_scalar(value: Any, _: Any) -> Any:
            if value is None or type(value) is inner:
                return value
            return hook(value, inner)

        return structure_optional_scalar

    def structure_optional(value: Any, _: Any) -> Any:
        return None if value is None else hook(value, inner)

    return structure_optional


def _is_sequence(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is tuple:
        args = typing.get_args(tp)
        return len(args) == 2 and args[1] is Ellipsis
    return origin in (list, Sequence) and len(typing.get_args(tp)) == 1


def _sequence_factory(tp: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
    inner = typing.get_args(tp)[0]
    hook = conv.get_structure_hook(inner)
    raw = _raw_object_fn(hook)
    # ``list[X]`` gives a list; ``tuple[X, ...]`` and ``Sequence[X]`` give a tuple.
    make: Callable[[Any], Any] = list if typing.get_origin(tp) is list else tuple
    scalar = inner in _EXACT_SCALARS

    def convert(value: Sequence[Any]) -> Any:
        if scalar:
            for item in value:
                if type(item) is not inner:
                    break
            else:
                return make(value)
        if raw is not None:
            return make([raw(i, inner) if type(i) is dict else hook(i, inner) for i in value])
        return make([hook(item, inner) for item in value])

    def structure_sequence(value: Any, _: Any) -> Any:
        if type(value) is not list and type(value) is not tuple:
            raise _expected(value, "an array")
        try:
            return convert(value)
        except Exception:
            pass
        # Slow path, only on failure: find every bad item and name its index.
        problems: list[Exception] = []
        for index, item in enumerate(value):
            try:
                hook(item, inner)
            except Exception as exc:
                note = IterableValidationNote(f"Structuring {tp} @ index {index}", index, inner)
                exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                problems.append(exc)
        raise IterableValidationError(f"While structuring {tp!r}", problems, tp)

    return structure_sequence


def _is_str_dict(tp: Any) -> bool:
    return typing.get_origin(tp) is dict and typing.get_args(tp) == (str, str)


def _structure_str_dict(value: Any, _: Any) -> dict[str, str]:
    # Free-form maps (an upload's headers, an asset's attributes).  The model leaves the
    # kind of some values open: a scalar is kept as its text and a null as absent, rather
    # than failing a whole answer (an upload destination cannot be asked for twice).  An
    # object or an array, which no header can carry, is still a mismatch.
    if type(value) is not dict:
        raise _expected(value, "an object")
    return {str(k): _map_text(v) for k, v in value.items() if v is not None}


def _map_text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return _structure_str(value, str)


def _object_factory(forbid_extra_keys: bool) -> Callable[[Any, cattrs.Converter], Any]:
    """Hooks for attrs classes: camelCase keys, and anything but a JSON object refused.

    cattrs' generated function alone would take a string for an object (``"key" in
    "text"`` is a substring test) and return a model of defaults.  Each class gets two
    functions: cattrs' own, which names every problem with its path, and a lean one
    (:func:`_fast_structure_fn`) tried first.  The lean one has no bookkeeping, so any
    failure falls back to cattrs' for the report; a good body never pays for it.
    """

    def factory(cls: Any, conv: cattrs.Converter) -> Callable[[Any, Any], Any]:
        detailed = make_dict_structure_fn(
            cls, conv, _cattrs_forbid_extra_keys=forbid_extra_keys, **_renames(cls)
        )
        fast = None if forbid_extra_keys else _fast_structure_fn(cls, conv)

        if fast is None:

            def structure_object(value: Any, _: Any) -> Any:
                if type(value) is dict or isinstance(value, Mapping):
                    return detailed(value, cls)
                raise _expected(value, "an object")

            structure_object.raw = detailed  # type: ignore[attr-defined]
            return structure_object

        def structure_object_fast(value: Any, _: Any) -> Any:
            if type(value) is dict or isinstance(value, Mapping):
                try:
                    return fast(value)
                except Exception:
                    return detailed(value, cls)  # raises, naming every problem
            raise _expected(value, "an object")

        # Nested objects call the lean function directly: a failure anywhere inside
        # propagates to the outermost object (or array), which falls back as a whole.
        structure_object_fast.raw = fast  # type: ignore[attr-defined]
        return structure_object_fast

    return factory


def _array_item_raw(tp: Any, conv: cattrs.Converter) -> Any:
    """For ``tuple[X, ...]`` or ``Sequence[X]`` of a model ``X``: X's lean function."""
    if typing.get_origin(tp) not in (tuple, Sequence) or not _is_sequence(tp):
        return None
    return _raw_object_fn(conv.get_structure_hook(typing.get_args(tp)[0]))


def _fast_structure_fn(cls: Any, conv: cattrs.Converter) -> Callable[[Any], Any] | None:
    """A structure function for ``cls`` with the inner hooks and plain scalars inlined.

    Generated once per class: one ``o.get`` per optional field, exact ``str``/``int``/
    ``bool`` values passed through without a call, nested objects built by their own
    lean function.  Returns None for a class it does not handle (a default other than
    ``None``), which then uses cattrs' function alone.
    """
    hints = typing.get_type_hints(cls)
    namespace: dict[str, Any] = {"__cl": cls}
    arguments = []
    for index, field in enumerate(attrs.fields(cls)):
        key = to_camel(field.name)
        tp = hints[field.name]
        hook_name, type_name = f"h{index}", f"t{index}"
        namespace[type_name] = tp
        if field.default is attrs.NOTHING:
            namespace[hook_name] = conv.get_structure_hook(tp)
            value = f"{hook_name}(o[{key!r}], {type_name})"
        elif field.default is None and _is_optional(tp):
            inner = next(a for a in typing.get_args(tp) if a is not type(None))
            hook = conv.get_structure_hook(inner)
            namespace[hook_name] = hook
            namespace[type_name] = inner
            raw = _raw_object_fn(hook)
            if inner in _EXACT_SCALARS:
                namespace[f"s{index}"] = inner
                value = (
                    f"(v if (v := g({key!r})) is None or type(v) is s{index} "
                    f"else {hook_name}(v, {type_name}))"
                )
            elif raw is not None:
                namespace[f"r{index}"] = raw
                value = (
                    f"(None if (v := g({key!r})) is None else r{index}(v) "
                    f"if type(v) is dict else {hook_name}(v, {type_name}))"
                )
            elif (item_raw := _array_item_raw(inner, conv)) is not None:
                # An array of objects: built in place; anything odd fails over to the hook.
                namespace[f"r{index}"] = item_raw
                value = (
                    f"(None if (v := g({key!r})) is None else "
                    f"tuple([r{index}(i) for i in v]) if type(v) is list "
                    f"else {hook_name}(v, {type_name}))"
                )
            else:
                value = f"(None if (v := g({key!r})) is None else {hook_name}(v, {type_name}))"
        else:
            return None
        arguments.append(f"{field.alias}={value}")
    source = "\n".join(
        [
            "def structure(o, _=None):",
            "    g = o.get",
            "    return __cl(" + ", ".join(arguments) + ")",
        ]
    )
    exec(compile(source, f"<spapi_services fast structure {cls.__qualname__}>", "exec"), namespace)
    function: Callable[[Any], Any] = namespace["structure"]
    return function


# --- the converter -------------------------------------------------------------------


def _renames(cls: type) -> dict[str, Any]:
    return {a.name: override(rename=to_camel(a.name)) for a in attrs.fields(cls)}


def make_converter(*, forbid_extra_keys: bool = False) -> cattrs.Converter:
    """Build a converter for the models.

    The SDK uses one built with the defaults.  ``forbid_extra_keys=True`` gives a strict
    twin for tests that prove the models cover every field a recorded body uses.
    """
    conv = cattrs.Converter(detailed_validation=True, forbid_extra_keys=forbid_extra_keys)
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_structure_hook(ApiEnum, _structure_enum)
    conv.register_structure_hook_func(_is_str_dict, _structure_str_dict)
    conv.register_structure_hook_factory(_is_optional, _optional_factory)
    conv.register_structure_hook_factory(_is_sequence, _sequence_factory)
    conv.register_structure_hook_factory(attrs.has, _object_factory(forbid_extra_keys))

    conv.register_unstructure_hook(datetime, format_datetime)
    conv.register_unstructure_hook(ApiEnum, str)
    conv.register_unstructure_hook(Decimal, _unstructure_decimal)
    conv.register_unstructure_hook_factory(
        attrs.has,
        lambda cls, c: make_dict_unstructure_fn(
            cls, c, _cattrs_omit_if_default=True, **_renames(cls)
        ),
    )
    return conv


converter = make_converter()


def structure(
    data: Any,
    cls: type[T],
    *,
    operation: str | None = None,
    subject: str = "response",
    parsed: bool = True,
) -> T:
    """Structure JSON data into ``cls``; a mismatch is a :class:`ResponseDecodeError`.

    ``subject`` names what was being read in the error's message ("response does not fit
    ServiceJob"; ``from_api_dict`` says "data").  ``parsed`` says that ``data`` holds
    only what a JSON parser gives (as :func:`loads` does); data from elsewhere, which
    may hold other types, is read by the hooks alone.
    """
    if parsed:
        fast = _fast_decoder(cls)
        if fast is not None:
            try:
                return fast(data)  # type: ignore[no-any-return]
            except Exception:  # the hooks accept it, or name every problem
                pass
    try:
        return converter.structure(data, cls)
    except Exception as exc:  # whatever a hook raised, the caller gets one error type
        problems = decode_problems(exc)
        raise ResponseDecodeError(
            f"{subject} does not fit {cls.__name__}", problems=problems, operation=operation
        ) from exc


# cls -> its msgspec decoder, or None for a class the mirrors do not cover.
_FAST_DECODERS: dict[Any, Callable[[Any], Any] | None] = {}


def _load_msgspec() -> Any:
    """msgspec, imported at the first use; None when it is not installed (or turned off)."""
    global _msgspec
    if _msgspec is _LATER:
        try:
            _msgspec = importlib.import_module("msgspec")
        except ImportError:  # pragma: no cover - depends on what is installed
            _msgspec = None
    return _msgspec


def _fast_decoder(cls: Any) -> Callable[[Any], Any] | None:
    """The msgspec decoder of ``cls`` (see :mod:`spapi_services._mirror`), if there is one."""
    if _msgspec is None:
        return None
    try:
        return _FAST_DECODERS[cls]
    except KeyError:
        pass
    except TypeError:  # an unhashable type: no decoder to keep
        return None
    if _load_msgspec() is None:
        return None
    from . import _mirror

    try:
        decoder = _mirror.make_decoder(cls, _msgspec, to_camel)
    except _mirror.Unsupported:
        decoder = None
    _FAST_DECODERS[cls] = decoder
    return decoder


def decode_problems(exc: BaseException) -> list[str]:
    """Each mismatch in a structuring failure as ``"<what> @ <JSON path>"``, camelCase."""
    return [_wire_path(p) for p in cattrs.transform_error(exc, "$", _format_problem)]


def _format_problem(exc: BaseException, tp: Any) -> str:
    if isinstance(exc, _ShapeError):
        return str(exc)
    return format_exception(exc, tp)


_PATH_SEGMENT = re.compile(r"\.([a-z0-9_]+)")


def _wire_path(problem: str) -> str:
    # cattrs names fields by their Python names; users compare against the JSON they got.
    message, sep, path = problem.rpartition(" @ ")
    if not sep:
        return problem
    return f"{message} @ " + _PATH_SEGMENT.sub(lambda m: "." + to_camel(m.group(1)), path)


def unstructure(obj: Any) -> Any:
    """A model as JSON-ready data (camelCase keys, ``None`` fields left out)."""
    function = _UNSTRUCTURE_FNS.get(type(obj))
    if function is None:
        if not attrs.has(type(obj)):
            return converter.unstructure(obj)
        function = _unstructure_fn(type(obj))
    return function(obj)


# class -> the function writing it (see :mod:`spapi_services._unstructure`), or the
# converter's own for a class it does not cover.
_UNSTRUCTURE_FNS: dict[type, Callable[[Any], Any]] = {}


def _unstructure_fn(cls: type) -> Callable[[Any], Any]:
    function = _UNSTRUCTURE_FNS.get(cls)
    if function is not None:
        return function
    from . import _unstructure

    try:
        function = _unstructure.make_unstructure_fn(
            cls,
            converter,
            to_camel=to_camel,
            format_datetime=format_datetime,
            function_of=_unstructure_fn,
        )
    except _unstructure.Unsupported:
        function = converter.get_unstructure_hook(cls)
    _UNSTRUCTURE_FNS[cls] = function
    return function


def loads(body: str | bytes) -> Any:
    """Parse JSON.

    With the standard library, every number with a fraction is read as an exact
    :class:`Decimal`.  With orjson installed (the ``speedups`` extra) it is read as a float
    and made a Decimal from its shortest repr: exact for up to 15 significant digits, far
    beyond any amount of money a job carries.  ``NaN`` and ``Infinity`` are not JSON and
    are refused either way.
    """
    if _orjson is not None:
        return _orjson.loads(body)
    return json.loads(body, parse_float=Decimal, parse_constant=_not_json)


def dumps(data: Any) -> str:
    """Serialise JSON-ready data compactly; a :class:`Decimal` is written exactly."""
    if _orjson is not None:
        written: bytes = _orjson.dumps(data, default=_orjson_default)
        return written.decode()
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=_mark_decimal)
    if _WRITTEN_MARK in text:
        text = _MARKED_DECIMAL.sub(r"\1", text)
    return text


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def _finite_text(value: Decimal) -> str:
    if not value.is_finite():
        raise ValueError(f"{value} cannot be written as a JSON number")
    return str(value)


# The standard library cannot write a number from text: a Decimal goes out as a marked
# string, and the marks (with their quotes) come off afterwards.  The mark holds a random
# part, so no string a caller passes can be mistaken for one.
_DECIMAL_MARK = f"\x00{secrets.token_hex(8)}:"
_WRITTEN_MARK = json.dumps(_DECIMAL_MARK)[1:-1]  # as it appears in the output
_MARKED_DECIMAL = re.compile('"' + re.escape(_WRITTEN_MARK) + r'([-+.0-9Ee]+)"')


def _mark_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _DECIMAL_MARK + _finite_text(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _orjson_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _orjson.Fragment(_finite_text(value).encode())
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- bodies to results -------------------------------------------------------------


def parse_errors(body: Any) -> tuple[Error, ...]:
    """The errors in a body, whether bare (``[...]``) or wrapped (``{"errors": [...]}``).

    Never raises: a body that holds no recognisable errors gives an empty tuple, and an
    entry missing its code or message is kept with what it has.
    """
    if isinstance(body, dict):
        body = body.get("errors")
    if not isinstance(body, list):
        return ()
    errors: list[Error] = []
    for entry in body:
        if not isinstance(entry, dict):
            continue
        try:
            errors.append(converter.structure(entry, Error))
        except Exception:
            errors.append(
                Error(code=str(entry.get("code", "")), message=str(entry.get("message", "")))
            )
    return tuple(errors)


def parse_warnings(body: Any) -> tuple[ApiWarning, ...]:
    """The warnings of a body or of its payload, tolerant like :func:`parse_errors`.

    Never raises: an entry that is not an object with a string ``code`` and ``message``
    is left out.
    """
    if not isinstance(body, dict):
        return ()
    found = body.get("warnings")
    if found is None and isinstance(body.get("payload"), dict):
        found = body["payload"].get("warnings")
    if not isinstance(found, list):
        return ()
    warnings: list[ApiWarning] = []
    for entry in found:
        if isinstance(entry, dict) and "code" in entry and "message" in entry:
            try:
                warnings.append(converter.structure(entry, ApiWarning))
            except Exception:
                continue
    return tuple(warnings)
