"""The examples as the site shows them: whole, where a page links to them, in code blocks
that fit at 1280 pixels without wrapping (about 93 columns; tests/docs/test_layout.py
measures the pages' own blocks in a browser)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from _pages import EXAMPLES, ROOT, pages

#: The columns of a Python code block on the site, 1280 pixels wide.
SITE_COLUMNS = 93


def _example_link() -> re.Pattern[str]:
    """The pattern by which the site's hook finds a link that shows a file."""
    spec = importlib.util.spec_from_file_location("hooks", ROOT / "docs/_tooling/hooks.py")
    assert spec is not None
    assert spec.loader is not None
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    link: re.Pattern[str] = hooks.EXAMPLE_LINK
    return link


def shown_examples() -> list[Path]:
    """The examples some page shows whole."""
    link = _example_link()
    found = {
        ROOT / match["path"]
        for page in pages()
        for match in link.finditer(page.read_text(encoding="utf-8"))
        if match["path"].startswith("examples/") and not match["section"]
    }
    return sorted(found)


def _wide(path: Path, columns: int) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        f"{path.name}:{number}: {len(line)} columns"
        for number, line in enumerate(lines, 1)
        if len(line) > columns
    ]


#: Examples still wider than the site's code blocks, and who narrows them.  Strict: the
#: day one fits, its test fails until it leaves this list.
NOT_YET: dict[str, str] = {}


def test_the_site_shows_the_examples() -> None:
    assert len(shown_examples()) >= 8


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            path,
            id=path.name,
            marks=[pytest.mark.xfail(strict=True, reason=NOT_YET[path.name])]
            if path.name in NOT_YET
            else [],
        )
        for path in shown_examples()
    ],
)
def test_every_example_a_page_shows_fits_its_code_block(path: Path) -> None:
    wide = _wide(path, SITE_COLUMNS)
    assert wide == [], "lines the site would wrap:\n" + "\n".join(wide)


def test_the_examples_are_formatted_narrower_than_the_project() -> None:
    config = tomllib.loads((EXAMPLES / "ruff.toml").read_text(encoding="utf-8"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["extend"] == "../pyproject.toml"
    width = config["line-length"]
    assert width <= SITE_COLUMNS < project["tool"]["ruff"]["line-length"]
    # Every example the formatter takes is within its width (the rest are named there).
    skipped = set(config.get("format", {}).get("exclude", ()))
    formatted = [p for p in sorted(EXAMPLES.glob("*.py")) if p.name not in skipped]
    assert len(formatted) >= 8
    wide = [found for path in formatted for found in _wide(path, width)]
    assert wide == [], "\n".join(wide)
