"""A Griffe extension: the reference laid out for reading, as httpx's or aiohttp's is.

Loaded after ``griffe_sphinx_text`` (whose attrs signatures it relies on), it changes what
the reference shows, never what the package is:

- **Fields as one table.**  A class's attributes (an attrs class's fields, an exception's
  attributes, a client's properties) become the rows of its "Attributes" table (name,
  type, description), instead of a block each.  A description is the attribute's
  docstring or ``#:`` comment; a model's field without a default says it is required; a
  field made with ``bounded(...)`` says what is checked before sending.  An attribute
  whose docstring runs to several paragraphs keeps a block of its own.
- **Enum values in a line.**  An enum's members become one "Values" line (or a table, if
  any member has a description).
- **No dunders.**  ``__repr__``, ``__aenter__``, ``__attrs_post_init__``... are not listed
  (``__init__`` is merged into its class; a protocol's ``__call__`` stays).
- **Defaults as values.**  A parameter whose default is a constant of the package
  (``timeout=DEFAULT_TIMEOUT``) shows the constant's value (``30.0``).
- **Models without a signature.**  The classes of ``spapi_services.models`` show their
  fields' table alone: for the API's shapes it says all the signature would.

What is folded into a table loses its own docstring in the loaded tree, and mkdocs.yml's
``show_if_no_docstring: false`` leaves it out of the page and its table of contents (its
members stay, so cross-references to them still resolve, as text).  That works the same
whether a page renders an object where it is defined or where it is re-exported.

Loaded by mkdocstrings-python through ``extensions:`` in mkdocs.yml.
"""

from __future__ import annotations

import ast
from typing import Any

import griffe

PACKAGE = "spapi_services"

#: Special methods still listed: a protocol's ``__call__`` is how it is used.
KEPT_SPECIAL = frozenset({"__init__", "__call__"})

#: Where a class shows its fields' table and no signature.
TABLE_ONLY = (f"{PACKAGE}.models.",)

#: A ``bounded(...)`` rule -> how the reference words it ({} is the rule's value).
_RULES = {
    "min_length": "at least {} characters",
    "max_length": "at most {} characters",
    "minimum": "at least {}",
    "maximum": "at most {}",
    "multiple_of": "a multiple of {}",
    "pattern": "matching `{}`",
    "min_items": "at least {} items",
    "max_items": "at most {} items",
    "item_minimum": "each at least {}",
    "item_maximum": "each at most {}",
    "item_min_length": "each at least {} characters",
    "item_max_length": "each at most {} characters",
    "item_pattern": "each matching `{}`",
}


class ReferenceLayout(griffe.Extension):
    """Fields as tables, enum values in a line, no dunders, defaults as values."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != PACKAGE:
            return
        objects = list(_walk(pkg))
        for obj in objects:
            if obj.is_function:
                _show_default_values(obj)  # type: ignore[arg-type]
        classes: list[griffe.Class] = [o for o in objects if o.is_class]  # type: ignore[misc]
        # Read every table before anything is hidden (a subclass lists its bases' fields).
        tables = {cls.path: _field_rows(cls) for cls in classes}
        for cls in classes:
            _hide_special_methods(cls)
            if _is_enum(cls):
                _fold_enum_values(cls)
            _append_attributes(cls, tables[cls.path])
            for field in _fields(cls):
                if field.parent is cls:
                    _hide(field)
        for cls in classes:
            if cls.path.startswith(TABLE_ONLY) and _is_attrs(cls):
                cls.del_member("__init__")


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in list(obj.members.values()):
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


def _hide_special_methods(cls: griffe.Class) -> None:
    for name, member in cls.members.items():
        if name.startswith("__") and name.endswith("__") and name not in KEPT_SPECIAL:
            _hide(member)


def _hide(member: griffe.Object | griffe.Alias) -> None:
    """Leave ``member`` out of the page (mkdocs.yml: ``show_if_no_docstring: false``)."""
    if not member.is_alias:
        member.docstring = None


# --- defaults ---------------------------------------------------------------------------


def _show_default_values(function: griffe.Function) -> None:
    scope = function.parent
    if scope is None:
        return
    for parameter in function.parameters:
        if parameter.default is None:
            continue
        value = constant_value(str(parameter.default), scope)
        if value is not None:
            parameter.default = value


def constant_value(text: str, scope: griffe.Object) -> str | None:
    """The literal value of the package constant ``text`` names, seen from ``scope``."""
    if not text.isidentifier():
        return None
    try:
        path = scope.resolve(text)
    except griffe.NameResolutionError:
        return None
    if not path.startswith(PACKAGE + "."):
        return None
    try:
        target = scope.modules_collection[path]
    except (KeyError, griffe.AliasResolutionError):
        return None
    if target.is_alias:
        target = target.final_target
    value = getattr(target, "value", None)
    if not target.is_attribute or value is None:
        return None
    try:
        ast.literal_eval(str(value))
    except (ValueError, SyntaxError):
        return None
    return str(value)


# --- attrs fields -----------------------------------------------------------------------


def _is_attrs(cls: griffe.Class) -> bool:
    """Whether griffe_sphinx_text wrote this class's signature from its attrs fields."""
    init = cls.members.get("__init__")
    return init is not None and not init.is_alias and "attrs" in init.labels


def _fields(cls: griffe.Class) -> list[griffe.Attribute]:
    """The attributes of ``cls`` its table lists: an attrs class's fields (its attrs bases'
    first, as attrs orders them), or any class's public attributes and properties, but
    those whose docstring needs a block of its own."""
    if _is_enum(cls):  # its properties (its values are listed apart)
        values = set(_enum_members(cls))
        return [m for n, m in cls.members.items() if _tabled(n, m) and n not in values]  # type: ignore[misc]
    if not _is_attrs(cls):
        return [m for name, m in cls.members.items() if _tabled(name, m)]  # type: ignore[misc]
    try:
        owners = [c for c in reversed(cls.mro()) if not c.is_alias and _is_attrs(c)]
    except ValueError:  # a base outside what was loaded
        owners = []
    found: dict[str, griffe.Attribute] = {}
    for owner in [*owners, cls]:
        for name, member in owner.members.items():
            annotation = str(getattr(member, "annotation", None) or "")
            if _tabled(name, member) and not annotation.startswith(("ClassVar", "typing.")):
                found[name] = member  # type: ignore[assignment]
    return list(found.values())


def _tabled(name: str, member: griffe.Object | griffe.Alias) -> bool:
    if member.is_alias or not member.is_attribute or name.startswith("_"):
        return False
    text = member.docstring.value if member.docstring is not None else ""
    return "\n\n" not in text.strip() and "```" not in text


def _field_rows(cls: griffe.Class) -> list[tuple[str, str]]:
    """(name, description) of each attribute the class's table lists."""
    rows = []
    for field in _fields(cls):
        words = [field_note(field, cls)] if _is_attrs(cls) else []
        if not cls.path.startswith(TABLE_ONLY):  # the signature says what is required
            words = [w.replace("*Required.*", "").strip() for w in words]
        if field.docstring is not None:
            words.append(field.docstring.value.strip())
        rows.append((field.name, " ".join(w for w in words if w)))
    return rows


def field_note(field: griffe.Attribute, scope: griffe.Object) -> str:
    """ "Required." for a field without a default; what ``bounded(...)`` checks."""
    if field.value is None:
        return "*Required.*"
    call = ast.parse(str(field.value), mode="eval").body
    if not isinstance(call, ast.Call):
        return ""
    keywords = {k.arg: k.value for k in call.keywords if k.arg}
    function = ast.unparse(call.func).split(".")[-1]
    if function in ("field", "ib", "attrib"):
        has_default = "default" in keywords or "factory" in keywords
        return "" if has_default else "*Required.*"
    if function != "bounded":
        return ""
    required = "required" in keywords and ast.unparse(keywords.pop("required")) == "True"
    rules = []
    for rule, node in keywords.items():
        if rule not in _RULES:
            continue
        text = ast.unparse(node)
        value = constant_value(text, scope) or text
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            literal = value
        shown = f"{literal:,}" if isinstance(literal, int) else str(literal)
        rules.append(_RULES[rule].format(shown))
    note = "*Required.*" if required else ""
    if rules:
        note += f" Checked before sending: {', '.join(rules)}."
    return note.strip()


# --- enums ------------------------------------------------------------------------------


def _is_enum(cls: griffe.Class) -> bool:
    try:
        bases = [str(b.path) for b in cls.mro()]
    except ValueError:
        bases = []
    bases += [str(b) for b in cls.bases]
    return any(b.split(".")[-1] in ("Enum", "StrEnum", "IntEnum", "ApiEnum") for b in bases)


def _enum_members(cls: griffe.Class) -> dict[str, griffe.Attribute]:
    """The enum's values: its public attributes that are assigned (not its properties)."""
    return {
        name: m  # type: ignore[misc]
        for name, m in cls.members.items()
        if not m.is_alias
        and m.is_attribute
        and not name.startswith("_")
        and "property" not in m.labels
        and m.value is not None
    }


def _fold_enum_values(cls: griffe.Class) -> None:
    members = list(_enum_members(cls).values())
    if not members:
        return
    for member in members:
        _hide(member)
    if any(m.docstring is not None for m in members):
        rows = []
        for member in members:
            value = _enum_value(member)
            shown = f"Value `{value}`." if value not in (None, member.name) else ""
            text = member.docstring.value.strip() if member.docstring is not None else ""
            rows.append((member.name, f"{shown} {text}".strip()))
        _append_attributes(cls, rows)
        return
    listed = ", ".join(_enum_entry(m) for m in members)
    _append_text(cls, f"**Values:** {listed}.")


def _enum_value(member: griffe.Object) -> str | None:
    try:
        value = ast.literal_eval(str(member.value))  # type: ignore[attr-defined]
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, str) else None


def _enum_entry(member: griffe.Object) -> str:
    value = _enum_value(member)
    if value is None or value == member.name:
        return f"`{member.name}`"
    return f'`{member.name}` (`"{value}"`)'


# --- the class docstring ----------------------------------------------------------------


def _append_attributes(cls: griffe.Class, rows: list[tuple[str, str]]) -> None:
    """Rows as Sphinx ``:ivar:`` fields, which the parser reads as an Attributes section."""
    if not rows:
        return
    # One line each: a blank line would end the field (descriptions are a sentence or two).
    lines = [f":ivar {name}: {' '.join(text.split())}".rstrip() for name, text in rows]
    _append_text(cls, "\n".join(lines))


def _append_text(cls: griffe.Class, text: str) -> None:
    if cls.docstring is None:
        cls.docstring = griffe.Docstring(text, parent=cls, lineno=cls.lineno)
    else:
        cls.docstring.value = f"{cls.docstring.value.rstrip()}\n\n{text}"
