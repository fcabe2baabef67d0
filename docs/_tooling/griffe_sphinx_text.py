"""A Griffe extension: the package's docstrings, written for Sphinx, read as Markdown.

The docstrings use reStructuredText's roles (``:class:`RateLimits```) and literal blocks
(a paragraph ending in ``::``).  mkdocstrings renders Markdown, where both would show as
typed.  This rewrites them before rendering: a role becomes a link to the object it names
(resolved from the docstring's own scope, as Sphinx would), shown as code; a literal
block becomes a fenced block.  Names outside the package (the standard library,
aiohttp, redis-py) and private ones stay plain code: the site loads nothing from
elsewhere, so there is no inventory to link them to.

Loaded by mkdocstrings-python through ``extensions:`` in mkdocs.yml.
"""

from __future__ import annotations

import ast
import html
import re
import textwrap
from typing import Any

import griffe

PACKAGE = "spapi_services"

_ROLE = re.compile(r":(?:class|func|meth|attr|data|mod|exc|obj|const):`([^`]+)`")
_TITLED = re.compile(r"^(?P<title>.+?)\s*<(?P<target>[^>]+)>$")
_CALLABLE_ROLES = (":func:", ":meth:")


class SphinxTextToMarkdown(griffe.Extension):
    """Rewrite reST roles and literal blocks in every docstring of the package."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        if pkg.name != PACKAGE:
            return
        objects = list(_walk(pkg))
        for obj in objects:
            if obj.docstring is not None:
                obj.docstring.value = to_markdown(obj.docstring.value, obj)
        for obj in objects:
            if obj.is_class:
                _inherit_docstrings(obj)  # type: ignore[arg-type]
                _attrs_init(obj)  # type: ignore[arg-type]


def _inherit_docstrings(cls: griffe.Class) -> None:
    """A method that overrides a documented one, undocumented itself, takes its docstring.

    As Sphinx's autodoc does: a clock's ``now`` says what the protocol's ``now`` says.
    """
    try:
        ancestors = cls.mro()
    except ValueError:  # a base outside what was loaded
        return
    for name, member in cls.members.items():
        if name.startswith("_") or member.is_alias or member.docstring is not None:
            continue
        for ancestor in ancestors:
            found = ancestor.members.get(name)
            if found is not None and not found.is_alias and found.docstring is not None:
                member.docstring = griffe.Docstring(
                    found.docstring.value, parent=member, lineno=found.docstring.lineno
                )
                break


def _walk(obj: griffe.Object) -> Any:
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _walk(member)  # type: ignore[arg-type]


def to_markdown(text: str, scope: griffe.Object) -> str:
    """``text`` with its roles turned into links and its literal blocks fenced."""
    return _ROLE.sub(lambda m: _link(m, scope), _fence_literal_blocks(text))


def _link(match: re.Match[str], scope: griffe.Object) -> str:
    role_text = match[0]
    content = match[1]
    titled = _TITLED.match(content)
    if titled:
        title, target = titled["title"], titled["target"]
    else:
        target = content
        title = ""
    short = target.startswith("~")
    target = target.lstrip("~.")
    if not title:
        title = target.rsplit(".", 1)[-1] if short else target
        if role_text.startswith(_CALLABLE_ROLES):
            title += "()"
    code = f"<code>{html.escape(title)}</code>"
    path = _resolve(target, scope)
    if path is None:
        return code
    # Optional: a name the reference does not render (a private helper) shows as code.
    return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'


def _resolve(target: str, scope: griffe.Object) -> str | None:
    """The full path of ``target`` seen from ``scope``, if it is in the package."""
    if target == PACKAGE or target.startswith(PACKAGE + "."):
        return target
    first, _, rest = target.partition(".")
    try:
        base = scope.resolve(first)
    except griffe.NameResolutionError:
        return None
    path = f"{base}.{rest}" if rest else base
    return path if path.startswith(PACKAGE + ".") else None


def _fence_literal_blocks(text: str) -> str:
    """reST literal blocks (``::`` then an indented block) as fenced code blocks."""
    lines = text.split("\n")
    out: list[str] = []
    at = 0
    while at < len(lines):
        line = lines[at]
        at += 1
        if not line.rstrip().endswith("::"):
            out.append(line)
            continue
        lead = line.rstrip()[:-2].rstrip()
        if lead:
            out.append(lead + ":")
        indent = len(line) - len(line.lstrip())
        block: list[str] = []
        while at < len(lines) and (
            not lines[at].strip() or len(lines[at]) - len(lines[at].lstrip()) > indent
        ):
            block.append(lines[at])
            at += 1
        while block and not block[-1].strip():
            block.pop()
        code = textwrap.dedent("\n".join(block)).strip("\n")
        pad = " " * indent
        out.append("")
        out.append(f"{pad}```{_language(code)}")
        out.extend(pad + c if c else "" for c in code.split("\n"))
        out.append(f"{pad}```")
        out.append("")
    return "\n".join(out)


def _language(code: str) -> str:
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    try:
        compile(code, "<docstring>", "exec", flags=flags)
    except SyntaxError:
        return "text"
    return "python"


class SphinxAttributeComments(griffe.Extension):
    """Read ``#:`` comments above a module or class attribute as its docstring.

    Sphinx's autodoc takes them as the attribute's documentation, and the package
    documents its constants that way.
    """

    def on_attribute_instance(self, *, attr: griffe.Attribute, **kwargs: Any) -> None:
        if attr.docstring is not None or attr.lineno is None:
            return
        # The whole file's lines (a class's own ``lines`` start at the class).
        try:
            lines = attr.lines_collection[attr.filepath]  # type: ignore[index]
        except (KeyError, TypeError, AttributeError):
            return
        found: list[str] = []
        at = attr.lineno - 2
        while 0 <= at < len(lines) and lines[at].strip().startswith("#:"):
            found.insert(0, lines[at].strip()[2:].strip())
            at -= 1
        if found:
            attr.docstring = griffe.Docstring(
                "\n".join(found), lineno=at + 2, endlineno=attr.lineno - 1, parent=attr
            )


# --- attrs classes -------------------------------------------------------------------
#
# Griffe reads source, and attrs writes a class's __init__ at import time, so an attrs
# class would show no parameters.  This writes the signature attrs would: its fields in
# order (an attrs base's first), keyword-only where the class says so, with defaults.

_ATTRS_DECORATORS = ("attrs.frozen", "attrs.define", "attrs.mutable", "attr.s", "attr.attrs")
_FIELD_CALLS = ("field", "ib", "attrib", "bounded")


def _attrs_options(cls: griffe.Class) -> dict[str, str] | None:
    """The decorator's keywords if ``cls`` is an attrs class, else None."""
    for decorator in cls.decorators:
        text = str(decorator.value)
        if text.split("(", 1)[0] in _ATTRS_DECORATORS:
            call = ast.parse(text, mode="eval").body
            if not isinstance(call, ast.Call):
                return {}
            return {k.arg: ast.unparse(k.value) for k in call.keywords if k.arg}
    return None


def _attrs_fields(cls: griffe.Class) -> list[griffe.Parameter]:
    options = _attrs_options(cls)
    if options is None:
        return []
    kind = (
        griffe.ParameterKind.keyword_only
        if options.get("kw_only") == "True"
        else griffe.ParameterKind.positional_or_keyword
    )
    fields: list[griffe.Parameter] = []
    for member in cls.members.values():
        if member.is_alias or not member.is_attribute or member.annotation is None:
            continue
        if str(member.annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        parameter = _field_parameter(member, kind)  # type: ignore[arg-type]
        if parameter is not None:
            fields.append(parameter)
    return fields


def _field_parameter(attr: griffe.Attribute, kind: griffe.ParameterKind) -> griffe.Parameter | None:
    name = attr.name.lstrip("_") if attr.name.startswith("_") else attr.name
    default: str | None = None if attr.value is None else str(attr.value)
    if default is not None:
        call = ast.parse(default, mode="eval").body
        if isinstance(call, ast.Call) and ast.unparse(call.func).split(".")[-1] in _FIELD_CALLS:
            keywords = {k.arg: k.value for k in call.keywords if k.arg}
            if "init" in keywords and ast.unparse(keywords["init"]) == "False":
                return None
            if "alias" in keywords:
                name = ast.literal_eval(keywords["alias"])
            if "kw_only" in keywords and ast.unparse(keywords["kw_only"]) == "True":
                kind = griffe.ParameterKind.keyword_only
            if "default" in keywords:
                default = ast.unparse(keywords["default"])
            elif "factory" in keywords:
                default = ast.unparse(keywords["factory"]) + "()"
            elif ast.unparse(call.func).endswith("bounded"):
                required = keywords.get("required")
                default = None if required and ast.unparse(required) == "True" else "None"
            else:
                default = None
    return griffe.Parameter(name, annotation=attr.annotation, kind=kind, default=default)


def _attrs_init(cls: griffe.Class) -> None:
    if "__init__" in cls.members or _attrs_options(cls) is None:
        return
    try:
        ancestors = [c for c in reversed(cls.mro()) if not c.is_alias]
    except ValueError:
        ancestors = []
    parameters = [griffe.Parameter("self", kind=griffe.ParameterKind.positional_or_keyword)]
    seen: dict[str, int] = {}
    for owner in [*ancestors, cls]:
        for parameter in _attrs_fields(owner):
            if parameter.name in seen:
                parameters[seen[parameter.name]] = parameter
            else:
                seen[parameter.name] = len(parameters)
                parameters.append(parameter)
    # Keyword-only fields go after the others, as attrs orders them.
    positional = [p for p in parameters if p.kind is not griffe.ParameterKind.keyword_only]
    keyword = [p for p in parameters if p.kind is griffe.ParameterKind.keyword_only]
    init = griffe.Function(
        "__init__",
        lineno=cls.lineno,
        endlineno=cls.lineno,
        parameters=griffe.Parameters(*positional, *keyword),
        returns="None",
    )
    cls.set_member("__init__", init)
    init.labels.add("attrs")
