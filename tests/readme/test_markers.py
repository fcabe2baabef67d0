"""The README's blocks are all accounted for, its first-run commands are CI's, and it
links to every guide.

The rule that ties a test to its code (see ``_readme``): ``<!-- test: NAME -->`` on the
line right before a fenced Python block.  Here: every Python block has such a comment,
every name is unique and asked for by a test in this directory (but the pytest-fixtures
example, which the pytest plugin's own tests extract and run in a project of their own),
and the rule those tests use to find it still finds exactly that block.
"""

from __future__ import annotations

import re
from pathlib import Path

from _pages import DOCS

from ._readme import README, fenced_blocks, marked_blocks, readme_text

#: Blocks run by tests elsewhere: the plugin's tests run the fixtures example.
RUN_ELSEWHERE = {"pytest-fixtures"}


def test_every_python_block_is_marked_for_a_test() -> None:
    lines = readme_text().splitlines()
    unmarked = [
        number + 1
        for number, line in enumerate(lines)
        if line.strip() == "```python"
        and not re.fullmatch(r"\s*<!-- test: [\w-]+[^>]*-->", lines[number - 1])
    ]
    assert unmarked == [], f"README.md: Python blocks without a test comment at lines {unmarked}"
    names = [b.name for b in marked_blocks() if b.kind == "test"]
    assert len(names) == len(set(names)), "README.md: a test name is used twice"
    assert len(names) == len(fenced_blocks("python"))


def test_every_marked_block_is_run_by_a_test_here() -> None:
    asked = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        asked |= set(re.findall(r'\bblock\("([\w-]+)"\)', path.read_text(encoding="utf-8")))
    named = {b.name for b in marked_blocks() if b.kind == "test"}
    assert named - RUN_ELSEWHERE <= asked, f"blocks no test runs: {named - RUN_ELSEWHERE - asked}"
    assert asked <= named, f"tests ask for blocks the README lacks: {asked - named}"


def test_the_plugin_tests_rule_finds_the_fixtures_example() -> None:
    # Their rule: the first Python block holding both `services_emulator` and `def test_`.
    first = next(
        b
        for b in marked_blocks()
        if b.language == "python" and "services_emulator" in b.code and "def test_" in b.code
    )
    assert first.name == "pytest-fixtures"
    assert "@pytest.mark.asyncio" in first.code  # pytest-asyncio's default, strict, mode


def test_the_first_run_commands_are_the_ones_ci_and_the_cli_use() -> None:
    text = readme_text()
    first_run = text[text.index("## First run\n") : text.index("\n## ", text.index("## First run"))]
    assert (
        'python3 -m venv .venv && .venv/bin/pip install -e ".[cli]" '
        "&& .venv/bin/spapi-services demo" in first_run
    )
    assert (
        'python3 -m venv .venv && .venv/bin/pip install -e ".[test]" '
        "&& .venv/bin/python -m pytest" in first_run
    )
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert '-e ".[test]"' in ci
    assert re.search(r"^\s*python -m pytest$", ci, flags=re.M)


def test_the_readme_links_to_every_guide() -> None:
    linked = set(re.findall(r"\]\((docs/[\w/.-]+\.md)\)", readme_text()))
    guides = {f"docs/{p.relative_to(DOCS).as_posix()}" for p in (DOCS / "guides").glob("*.md")}
    assert guides, "docs/guides/ has no page"
    assert guides | {"docs/index.md"} <= linked, f"guides the README omits: {guides - linked}"
    missing = [link for link in linked if not (README.parent / link).is_file()]
    assert missing == [], f"README.md links to missing pages: {missing}"
