"""README.md's code blocks, found by their ``<!-- test: NAME -->`` comments.

The rules and the ways of running a block are those of every page (see ``_pages``); this
module binds them to the README.  Most of what the README once held now lives in the
site's guides (tests/docs) and in examples/ (tests/examples); what stays is what a first
visit needs.
"""

from __future__ import annotations

from _pages import README, Block, find, python_block
from _pages import fenced_blocks as _fenced
from _pages import marked_blocks as _marked


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def marked_blocks() -> list[Block]:
    """Every block with a ``test:`` or ``sample:`` comment, in README order."""
    return _marked(README)


def fenced_blocks(language: str) -> list[str]:
    """The code of every block fenced as ``language`` (in a list item too), in README order."""
    return _fenced(README, language)


def block(name: str) -> Block:
    """The Python block marked ``<!-- test: name -->``."""
    return python_block([README], name)


def sample(name: str) -> Block:
    """The block marked ``<!-- sample: name -->`` (output shown to readers)."""
    return find([README], "sample", name)
