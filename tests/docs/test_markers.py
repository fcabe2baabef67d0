"""The site's code is all accounted for, and its shell lines name real commands.

Every Python block of a page is either marked ``<!-- test: NAME -->`` and run by a test
here, or a whole example shown from examples/ (a line that is only the link
``[`examples/NAME.py`](../examples/NAME.py)``, which the site's hook replaces with the
script: see docs/_tooling/hooks.py), which tests/examples runs.  Every example is shown on
some page, and run by some test.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click.testing
import pytest
from _pages import DOCS, EXAMPLES, README, ROOT, fenced_blocks, marked_blocks, pages

from spapi_services.cli import cli
from spapi_services.emulator.__main__ import build_parser

from ._site import tooling

EXAMPLE_LINK = tooling("hooks").EXAMPLE_LINK


def _python_blocks() -> list[tuple[Path, str]]:
    return [(page, code) for page in pages() for code in fenced_blocks(page, "python")]


def _included_examples() -> set[str]:
    found = set()
    for page in pages():
        for match in EXAMPLE_LINK.finditer(page.read_text(encoding="utf-8")):
            if match["path"].startswith("examples/"):
                found.add(match["path"].removeprefix("examples/"))
    return found


def test_every_python_block_is_tested_or_an_example() -> None:
    marked = {(b.path, b.code) for page in pages() for b in marked_blocks(page)}
    loose = [
        f"{page.relative_to(ROOT)}: {code.splitlines()[0]!r}"
        for page, code in _python_blocks()
        if (page, code) not in marked
    ]
    assert loose == [], f"Python blocks neither marked for a test nor an example: {loose}"
    names = [b.name for page in pages() for b in marked_blocks(page) if b.kind == "test"]
    assert len(names) == len(set(names)), "a test name is used twice on the site"


def test_every_marked_block_is_run_by_a_test_here() -> None:
    asked = set()
    for path in Path(__file__).parent.glob("test_*.py"):
        asked |= set(re.findall(r'\bblock\("([\w-]+)"\)', path.read_text(encoding="utf-8")))
    named = {b.name for page in pages() for b in marked_blocks(page) if b.kind == "test"}
    assert named <= asked, f"blocks no test runs: {named - asked}"
    assert asked <= named, f"tests ask for blocks the site lacks: {asked - named}"


def test_every_example_is_shown_on_a_page_and_run_by_a_test() -> None:
    examples = {p.name for p in EXAMPLES.glob("*.py")}
    assert examples, "examples/ is empty"
    assert examples - _included_examples() == set(), "examples no page shows"
    tests = Path(__file__).parents[1] / "examples"
    named = set()
    for path in tests.glob("test_*.py"):
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r'\b(?:example|load_example)\("([\w.]+)"\)', text))
    assert examples - named == set(), "examples no test in tests/examples runs"
    assert named <= examples, f"tests name missing examples: {named - examples}"


def _command_lines() -> list[list[str]]:
    """Each ``spapi-services ...`` line of the shell blocks of the README and the site."""
    found = []
    for page in [README, *pages()]:
        for code in fenced_blocks(page, "sh"):
            for line in code.replace("\\\n", " ").splitlines():
                words = shlex.split(line, comments=True)
                if words[:1] == ["spapi-services"]:
                    found.append(words[1:])
    return found


def test_the_pages_show_commands() -> None:
    assert len(_command_lines()) >= 10


@pytest.mark.parametrize("args", _command_lines(), ids=" ".join)
def test_each_command_line_parses(args: list[str]) -> None:
    if "emulator" in args:
        # Handed to the emulator's own parser (which `--help` would not check).
        at = args.index("emulator")
        build_parser().parse_args(args[at + 1 :])
        return
    result = click.testing.CliRunner().invoke(cli, [*args, "--help"])
    assert result.exit_code == 0, result.output


def test_the_command_groups_named_are_the_cli_s() -> None:
    text = (DOCS / "guides" / "cli.md").read_text(encoding="utf-8")
    (listed,) = re.findall(r"Every operation has a command \(([^)]*)\)", text)
    groups = set(re.findall(r"`([\w-]+)`", listed))
    assert len(groups) == 7
    assert groups <= set(cli.commands)
