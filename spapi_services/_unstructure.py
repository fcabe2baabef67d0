"""Models as the API's JSON, by a function generated per class.

The converter's own functions (cattrs) call a hook for every field and compare each value
with its default through ``!=``, which for a nested model is a comparison of models: a
job costs some 470k instructions to write out.  The functions generated here do what they
do in straight-line code: a field left out when it is ``None`` (every default of the
models is ``None``), a value of exactly the declared type written inline (text, numbers
and Decimals as they are, an enum as its value, a timestamp through
:func:`spapi_services._serde.format_datetime`, a nested model by its own function, an
array as a list), and any other value handed to the converter's hook for the field's type,
so that the output is the converter's in every case.

A class with a default other than ``None``, or a type not listed above, gets no function:
the converter writes it.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
import cattrs

from .models._base import ApiEnum

__all__ = ["Unsupported", "make_unstructure_fn"]

_SCALARS = (str, int, bool, Decimal)


class Unsupported(TypeError):
    """A class the generated functions do not cover: the converter writes it."""


def make_unstructure_fn(
    cls: type,
    converter: cattrs.Converter,
    *,
    to_camel: Callable[[str], str],
    format_datetime: Callable[[datetime], str],
    function_of: Callable[[type], Callable[[Any], Any]],
) -> Callable[[Any], dict[str, Any]]:
    """The generated function writing ``cls``; ``Unsupported`` when there is none.

    ``function_of`` gives the function writing a nested class (looked up when a value
    of it is written, so classes may hold one another).
    """
    hints = typing.get_type_hints(cls)
    namespace: dict[str, Any] = {"fmt": format_datetime, "of": function_of}
    lines = ["def unstructure(o):", "    r = {}"]
    for index, field in enumerate(attrs.fields(cls)):
        declared = hints[field.name]
        if field.default is attrs.NOTHING:
            optional, inner = False, declared
        elif field.default is None and _is_optional(declared):
            optional, inner = True, _without_none(declared)
        else:
            raise Unsupported(f"{cls.__qualname__}.{field.name}: its default")
        names = _Names(index, namespace)
        # The converter's own hook for the field: what any other value is given to.
        namespace[names.hook] = converter.get_unstructure_hook(declared)
        block = _write(inner, repr(to_camel(field.name)), names, converter)
        lines.append(f"    v = o.{field.name}")
        if optional:
            lines.append("    if v is not None:")
            lines += [f"        {line}" for line in block]
        else:
            lines += [f"    {line}" for line in block]
    lines.append("    return r")
    source = "\n".join(lines)
    exec(compile(source, f"<spapi_services unstructure {cls.__qualname__}>", "exec"), namespace)
    function: Callable[[Any], dict[str, Any]] = namespace["unstructure"]
    return function


class _Names:
    """The names one field's code uses in the generated function's namespace."""

    def __init__(self, index: int, namespace: dict[str, Any]) -> None:
        self.hook, self.type, self.item, self.item_hook = (
            f"h{index}",
            f"t{index}",
            f"i{index}",
            f"ih{index}",
        )
        self.namespace = namespace


def _write(tp: Any, key: str, names: _Names, converter: cattrs.Converter) -> list[str]:
    """Lines putting ``v`` (declared ``tp``, not None) into ``r[key]``."""
    namespace = names.namespace
    namespace[names.type] = tp
    hook, t = names.hook, names.type
    if tp in _SCALARS:
        return [f"r[{key}] = v if type(v) is {t} else {hook}(v)"]
    if tp is datetime:
        return [f"r[{key}] = fmt(v) if type(v) is {t} else {hook}(v)"]
    if isinstance(tp, type) and issubclass(tp, ApiEnum):
        return [f"r[{key}] = v._value_ if type(v) is {t} else {hook}(v)"]
    if attrs.has(tp):
        return [f"r[{key}] = of({t})(v) if type(v) is {t} else {hook}(v)"]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, list, Sequence) and _is_homogeneous(origin, args):
        item, i, ih = args[0], names.item, names.item_hook
        namespace[i] = item
        # Any item of another type gets the converter's hook for the declared item type,
        # as in the converter's own function for the array.
        namespace[ih] = converter.get_unstructure_hook(item)
        setup: list[str] = []
        if item in _SCALARS:
            each = f"x if type(x) is {i} else {ih}(x)"
        elif isinstance(item, type) and issubclass(item, ApiEnum):
            each = f"x._value_ if type(x) is {i} else {ih}(x)"
        elif attrs.has(item):
            each, setup = f"f(x) if type(x) is {i} else {ih}(x)", [f"    f = of({i})"]
        else:
            return [f"r[{key}] = {hook}(v)"]
        # The models hold tuples; anything else is the converter's.
        return [
            "if type(v) is tuple:",
            *setup,
            f"    r[{key}] = [{each} for x in v]",
            "else:",
            f"    r[{key}] = {hook}(v)",
        ]
    return [f"r[{key}] = {hook}(v)"]


def _is_homogeneous(origin: Any, args: tuple[Any, ...]) -> bool:
    if origin is tuple:
        return len(args) == 2 and args[1] is Ellipsis
    return len(args) == 1


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        return len(args) == 2 and type(None) in args
    return False


def _without_none(tp: Any) -> Any:
    return next(a for a in typing.get_args(tp) if a is not type(None))
