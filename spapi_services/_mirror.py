"""The models decoded in C: msgspec mirrors of the models (the ``speedups`` extra).

With msgspec installed, parsed JSON becomes a model in two passes of msgspec's C code
instead of one Python hook per value:

1. ``msgspec.convert(data, Mirror)``: into the model's *mirror*, a ``msgspec.Struct``
   generated here once per class (the wire's camelCase names, the same field types, the
   nested models' own mirrors), which checks the JSON kind of every value on the way;
2. ``msgspec.convert(mirror, Model, from_attributes=True)``: from the mirror into the
   attrs model itself, built without a Python call per object.

A mirror accepts a subset of what the SDK's hooks (:mod:`spapi_services._serde`) accept,
and gives the same values for it; whatever it refuses goes to the hooks, which either
accept it too (an id sent as a number, a whole float as an integer, an RFC 3339 rarity,
a map of non-text values) or name every problem with its JSON path.  So a body decodes
to the same models, or fails with the same problems, with or without msgspec.  Two
values are read by the hooks' own rules rather than msgspec's: timestamps (msgspec
rounds a fraction finer than a microsecond; ``datetime.fromisoformat`` truncates it, as
the hooks do) and amounts (a Decimal that is not finite is refused, as by the hooks).

Only data as JSON parsers give it (dicts, lists, ``str``, ``int``, ``float``, ``bool``,
``None``, Decimals) may be decoded here: msgspec takes a ``str`` subclass (an enum
member) where text is expected, which the hooks refuse.  Classes holding a type this
module does not mirror (a ``Sequence`` field, which the hooks make a tuple and msgspec a
list) get no decoder, and use the hooks alone.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from .models._base import ApiEnum

__all__ = ["Unsupported", "make_decoder"]

_SCALARS = (str, int, bool)


class Unsupported(TypeError):
    """A type the mirrors do not cover: its class is decoded by the hooks alone."""


def make_decoder(tp: Any, msgspec: Any, to_camel: Callable[[str], str]) -> Callable[[Any], Any]:
    """A function decoding parsed JSON into ``tp`` with msgspec (``Unsupported`` if it cannot).

    It raises whatever msgspec raises for data it does not take as is; the caller then
    decodes the data with the hooks.
    """
    mirror = _Mirrors(msgspec, to_camel).of(tp)
    convert = msgspec.convert

    def decode(data: Any) -> Any:
        return convert(convert(data, mirror), tp, from_attributes=True)

    return decode


class _Mirrors:
    """The mirror types of one decoder's classes, made once each."""

    def __init__(self, msgspec: Any, to_camel: Callable[[str], str]) -> None:
        self._msgspec = msgspec
        self._to_camel = to_camel
        self._structs: dict[type, Any] = {}

    def of(self, tp: Any) -> Any:
        """The mirror of a field's type (``tp`` itself for scalars and enums)."""
        if tp is type(None) or tp in _SCALARS or tp is Decimal:
            return tp
        if isinstance(tp, type) and issubclass(tp, ApiEnum):
            return tp
        if attrs.has(tp):
            return self._struct(tp)
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Union or origin is types.UnionType:
            if len(args) == 2 and type(None) in args:
                inner = next(a for a in args if a is not type(None))
                return self.of(inner) | None
        elif origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple[self._item(args[0]), ...]  # type: ignore[misc]
        elif origin is list and len(args) == 1:
            return list[self._item(args[0])]  # type: ignore[misc]
        elif origin is dict and args == (str, str):
            return dict[str, str]
        raise Unsupported(f"no mirror for {tp!r}")

    def _item(self, tp: Any) -> Any:
        # Timestamps and amounts are checked by the struct holding them (see _checks):
        # inside an array there is none.
        if tp is datetime or tp is Decimal:
            raise Unsupported(f"no mirror for an array of {tp.__name__}")
        return self.of(tp)

    def _struct(self, cls: type) -> Any:
        found = self._structs.get(cls)
        if found is not None:
            return found
        hints = typing.get_type_hints(cls)
        fields: list[tuple[Any, ...]] = []
        timestamps: list[tuple[str, bool]] = []
        amounts: list[tuple[str, bool]] = []
        for field in attrs.fields(cls):
            tp = hints[field.name]
            optional = _is_optional(tp)
            inner = _without_none(tp) if optional else tp
            if inner is datetime:
                timestamps.append((field.name, optional))
                mirrored: Any = str | None if optional else str
            else:
                if inner is Decimal:
                    amounts.append((field.name, optional))
                mirrored = self.of(tp)
            if field.default is attrs.NOTHING:
                fields.append((field.name, mirrored))
            elif field.default is None:
                fields.append((field.name, mirrored, None))
            else:
                raise Unsupported(f"{cls.__qualname__}.{field.name}: a default other than None")
        namespace = {}
        checks = _checks(cls, timestamps, amounts)
        if checks is not None:
            namespace["__post_init__"] = checks
        struct = self._msgspec.defstruct(
            f"{cls.__name__}Mirror",
            fields,
            kw_only=True,
            rename={field.name: self._to_camel(field.name) for field in attrs.fields(cls)},
            # Short-lived and acyclic: the garbage collector need not track them.
            gc=False,
            namespace=namespace,
        )
        self._structs[cls] = struct
        return struct


def _checks(
    cls: type, timestamps: list[tuple[str, bool]], amounts: list[tuple[str, bool]]
) -> Callable[[Any], None] | None:
    """The mirror's ``__post_init__``: its timestamps parsed and its amounts checked.

    Generated straight-line code, one block per field.  A ValueError here (a timestamp
    ``fromisoformat`` cannot read, an amount that is not finite) fails the mirror, and
    the hooks take over.
    """
    if not timestamps and not amounts:
        return None
    lines = ["def __post_init__(self):"]
    for name, optional in timestamps:
        body = [
            "d = fromiso(v)",
            f"self.{name} = d if d.tzinfo is not None else d.replace(tzinfo=UTC)",
        ]
        lines.append(f"    v = self.{name}")
        if optional:
            lines.append("    if v is not None:")
            lines += [f"        {line}" for line in body]
        else:
            lines += [f"    {line}" for line in body]
    for name, optional in amounts:
        condition = "v is not None and " if optional else ""
        lines.append(f"    v = self.{name}")
        lines.append(f"    if {condition}not v.is_finite():")
        lines.append("        raise ValueError('not a finite number')")
    namespace: dict[str, Any] = {"fromiso": datetime.fromisoformat, "UTC": UTC}
    source = "\n".join(lines)
    exec(compile(source, f"<spapi_services mirror {cls.__qualname__}>", "exec"), namespace)
    function: Callable[[Any], None] = namespace["__post_init__"]
    return function


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        return len(args) == 2 and type(None) in args
    return False


def _without_none(tp: Any) -> Any:
    return next(a for a in typing.get_args(tp) if a is not type(None))
