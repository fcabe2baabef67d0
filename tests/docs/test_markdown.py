"""The pages as Markdown, read where the README sends a reader (a repository host shows
them as they are), and what the README says to run to build the site.
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path

import pytest
from _pages import DOCS, README, ROOT, pages

from ._site import tooling

hooks = tooling("hooks")

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_LOCAL_MD_LINK = re.compile(r"\]\(((?!https?:)[^)#\s]+\.md)(?:#[^)]*)?\)")
_FENCE = re.compile(r"^( *)```(\w*)[^\n]*\n(.*?)^\1```$", re.M | re.S)
_HEADING = re.compile(r"^#{1,6} ", re.M)


def _readme_pages() -> list[Path]:
    """The Markdown pages the README links to."""
    text = README.read_text(encoding="utf-8")
    return sorted({(ROOT / link).resolve() for link in _LOCAL_MD_LINK.findall(text)})


def test_the_readme_links_to_the_guides() -> None:
    linked = _readme_pages()
    assert DOCS / "index.md" in linked
    assert len([p for p in linked if p.parent == DOCS / "guides"]) >= 15


@pytest.mark.parametrize("page", _readme_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_page_the_readme_links_to_reads_as_markdown(page: Path) -> None:
    visible = _COMMENT.sub("", page.read_text(encoding="utf-8"))
    markers = [line for line in visible.splitlines() if "--8<--" in line or line.startswith(":::")]
    assert markers == [], f"{page.name} shows MkDocs syntax a repository host would print"
    # Where the site shows an example, the page links to it: the link must lead there.
    for match in hooks.EXAMPLE_LINK.finditer(visible):
        target = (page.parent / match["href"].split("#", 1)[0]).resolve()
        assert target == (ROOT / match["path"]).resolve(), match[0]
        assert target.is_file(), match[0]


def test_the_site_shows_each_linked_example_as_code(built_site: Path) -> None:
    index = (built_site / "index.html").read_text(encoding="utf-8")
    assert 'class="filename">examples/quickstart.py<' in index
    first_line = (ROOT / "examples" / "quickstart.py").read_text(encoding="utf-8").splitlines()[0]
    assert first_line.strip('"') in index  # the script's docstring, on the page
    testing = (built_site / "guides" / "testing.html").read_text(encoding="utf-8")
    assert "test_finish_completes_the_job" in testing  # the README's section
    leftovers = [p.name for p in built_site.rglob("*.html") if "--8&lt;--" in p.read_text("utf-8")]
    assert leftovers == []


# --- top-level await ----------------------------------------------------------------------


def _needs_a_running_loop(code: str) -> bool:
    """Whether the code awaits at its top level (fine in ``python -m asyncio`` only)."""
    try:
        compile(code, "<block>", "exec")
    except SyntaxError:
        compile(code, "<block>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        return True
    return False


def _awaiting_blocks() -> list[tuple[Path, int, str]]:
    """(page, line, the prose just before) of every Python block with top-level await."""
    found = []
    for page in [README, *pages()]:
        text = page.read_text(encoding="utf-8")
        for fence in _FENCE.finditer(text):
            if fence[2] != "python" or "--8<--" in fence[3]:
                continue
            if not _needs_a_running_loop(re.sub(r"(?m)^" + fence[1], "", fence[3])):
                continue
            before = text[: fence.start()]
            # The prose since the previous block or heading, without comments.
            start = max([m.end() for m in _FENCE.finditer(before)] + [0])
            start = max([m.start() for m in _HEADING.finditer(before, start)] + [start])
            line = text.count("\n", 0, fence.start()) + 1
            found.append((page, line, _COMMENT.sub("", before[start:])))
    return found


def test_there_are_blocks_with_top_level_await() -> None:
    assert len(_awaiting_blocks()) >= 10


def test_every_block_with_top_level_await_says_where_it_runs() -> None:
    silent = [
        f"{page.relative_to(ROOT)}:{line}"
        for page, line, prose in _awaiting_blocks()
        if not re.search(r"`async def`|python -m asyncio", prose)
    ]
    assert silent == [], (
        "blocks that await at top level, without saying they run inside an `async def` "
        f"(or at the `python -m asyncio` prompt): {silent}"
    )


# --- building the site --------------------------------------------------------------------


def _extras() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    return extras


def _installed(extras: set[str]) -> set[str]:
    """The distributions ``pip install -e ".[extras]"`` brings in by name (not versions)."""
    names: set[str] = set()
    table = _extras()
    for extra in extras:
        for requirement in table[extra]:
            name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
            if name == "spapi-services":
                names |= _installed(set(re.findall(r"\[([^]]+)\]", requirement)[0].split(",")))
            else:
                names.add(name)
    return names


def _documentation_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Documentation\n") :]
    section = section[: section.index("\n## ", 1)]
    (block,) = [m[3] for m in _FENCE.finditer(section) if m[2] == "sh"]
    commands = []
    for line in block.splitlines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words:
                commands.append(words)
    return commands


def test_the_readme_builds_the_site_with_what_it_installs() -> None:
    commands = _documentation_commands()
    installs = [c for c in commands if c[:2] == [".venv/bin/pip", "install"]]
    assert installs, "the README's documentation block installs nothing"
    extras = {x for c in installs for x in re.findall(r"\.\[([\w,-]+)\]", " ".join(c))}
    extras = {e for group in extras for e in group.split(",")}
    provided = _installed(extras)
    tools = [c[0].removeprefix(".venv/bin/") for c in commands if c[0].startswith(".venv/bin/")]
    run = [tool for tool in tools if tool not in ("pip", "python")]
    assert "mkdocs" in run
    missing = [tool for tool in run if tool not in provided]
    assert missing == [], f"the README runs {missing}, which {sorted(extras)} do not install"
    # mkdocstrings formats long signatures only with black or ruff installed.
    assert provided & {"ruff", "black"}, "the docs extra installs no signature formatter"
