"""The site's pages (docs/), and their code blocks found by ``<!-- test: NAME -->``.

A name is unique across the whole site, so a test asks for a block by its name alone.
"""

from __future__ import annotations

from _pages import Block, find, pages, python_block


def block(name: str) -> Block:
    """The Python block marked ``<!-- test: name -->`` on one of the site's pages."""
    return python_block(pages(), name)


def sample(name: str) -> Block:
    """The block marked ``<!-- sample: name -->`` (output shown to readers)."""
    return find(pages(), "sample", name)
