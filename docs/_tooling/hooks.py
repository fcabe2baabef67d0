"""MkDocs hooks: files the site shows from outside docs/, and two shorthands of its pages.

**Files from outside docs/.**  The benchmark page includes benchmarks/RESULTS.md, which
shows its chart as ``bound.png`` beside it: the chart is served from benchmarks/bound.png
as it stands, at the same place beside the page, so the lead's next run refreshes both
without a copy.

**An example, shown where a page links to it.**  A line that is only a link to a file of
the repository, its text the file's path in code, shows that file's code on the site::

    [`examples/quickstart.py`](../examples/quickstart.py)
    [`README.md:pytest-fixtures`](../README.md#testing-your-code)

On a repository host the page shows a link to the script (the page reads as Markdown);
on the site the line becomes the script itself, included by pymdownx.snippets and titled
with its path.  After a colon, the text names a section of the file marked
``--8<-- [start:NAME]`` and ``--8<-- [end:NAME]``: that section's Markdown (a fenced
block of the README, say) is included as it is.  Tests find these lines with :data:`EXAMPLE_LINK`.

**A module's names, on a reference page.**  A line (on one line in the page)::

    <!-- reference: spapi_services.models.jobs as spapi_services.models
         first ServiceJob JobListing level 3 -->

becomes one ``::: spapi_services.models.NAME`` block per name in that module's
``__all__``, the ``first`` ones first, then the others in the order the module defines
them (a package re-exporting names: in its ``__all__``'s order), but those after
``skip`` (a name another page shows): a name added to the module's ``__all__`` appears
on the page with no edit, under the path users import it from (``as``: then only the
names that package's ``__all__`` has; the module's own path without it), with headings of
``level`` (2 without it).  A name after ``first`` or
``skip`` that the module does not export stops the build.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]

#: Site path -> the repository file served there.
BORROWED = {"benchmarks/bound.png": ROOT / "benchmarks" / "bound.png"}

#: A line that is only a link to a repository file, its text the path in code.
EXAMPLE_LINK = re.compile(
    r"^(?P<indent> *)\[`(?P<path>[\w./-]+?)(?::(?P<section>[\w-]+))?`\]\((?P<href>[^)\s]+)\)$",
    re.M,
)

#: ``<!-- reference: MODULE [as PACKAGE] [first NAME...] [skip NAME...] [level N] -->``
REFERENCE = re.compile(
    r"^<!-- reference: (?P<module>[\w.]+)"
    r"(?: as (?P<package>[\w.]+))?"
    r"(?: first (?P<first>[\w ]+?))?"
    r"(?: skip (?P<skip>[\w ]+?))?"
    r"(?: level (?P<level>\d))?"
    r" -->$",
    re.M,
)

_LANGUAGES = {".py": "python", ".sh": "sh", ".toml": "toml"}


def on_files(files: Files, config: Any) -> Files:
    for src_uri, source in BORROWED.items():
        files.append(File.generated(config, src_uri, abs_src_path=str(source)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    here = (Path(config["docs_dir"]) / page.file.src_uri).parent
    markdown = EXAMPLE_LINK.sub(lambda m: _included(m, here), markdown)
    return REFERENCE.sub(_reference_blocks, markdown)


def on_post_build(config: Any) -> None:
    # Like a virtual environment or pytest's cache, the built site ignores itself, so
    # a build in a checkout never shows up as changes to commit.
    (Path(config["site_dir"]) / ".gitignore").write_text("*\n", encoding="utf-8")


# --- examples ---------------------------------------------------------------------------


def _included(match: re.Match[str], here: Path) -> str:
    path, section, indent = match["path"], match["section"], match["indent"]
    linked = (here / match["href"].split("#", 1)[0]).resolve()
    if linked != (ROOT / path).resolve():
        return match[0]  # a link whose text is not the file it leads to: an ordinary link
    if not linked.is_file():
        raise ValueError(f"a page links to {path} to show it, but there is no such file")
    if section:  # a section of a page brings its own Markdown (its fenced block)
        return f'{indent}--8<-- "{path}:{section}"'
    language = _LANGUAGES.get(Path(path).suffix, "text")
    lines = [f'```{language} title="{path}"', f'--8<-- "{path}"', "```"]
    return "\n".join(indent + line for line in lines)


# --- reference pages --------------------------------------------------------------------


def _reference_blocks(match: re.Match[str]) -> str:
    module = match["module"]
    package = match["package"] or module
    first = (match["first"] or "").split()
    skip = (match["skip"] or "").split()
    level = int(match["level"] or 2)
    names = module_names(module)
    if match["package"]:  # only what the package exports (not the module's helpers)
        exported = set(module_names(package))
        names = [name for name in names if name in exported]
    unknown = [name for name in first + skip if name not in names]
    if unknown:
        raise ValueError(f"reference: {module} does not export {', '.join(unknown)}")
    ordered = first + [name for name in names if name not in first and name not in skip]
    blocks = [
        f"::: {package}.{name}\n"
        f"    options:\n"
        f"      heading_level: {level}\n"
        f"      show_root_full_path: false\n"
        for name in ordered
    ]
    return "\n".join(blocks)


def module_names(module: str) -> list[str]:
    """The names of ``module``'s ``__all__``, in the order the module defines them."""
    base = ROOT / module.replace(".", "/")
    path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    exported: list[str] = []
    defined: dict[str, int] = {}
    for node in tree.body:
        targets: list[str] = []
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            targets = [node.name]
        elif isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            targets = [node.target.id]
        if "__all__" in targets:
            exported = [str(ast.literal_eval(e)) for e in node.value.elts]  # type: ignore[union-attr]
        for name in targets:
            defined.setdefault(name, node.lineno)
    if not exported:
        raise ValueError(f"reference: {module} has no __all__")
    # Defined here: in source order; re-exported: after them, as __all__ lists them.
    return sorted(exported, key=lambda name: (name not in defined, defined.get(name, 0)))
