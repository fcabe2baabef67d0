"""Every install line shown to a reader works: the package is not on the public index, so
``pip install "spapi-services[x]"`` cannot; from a clone it is ``pip install -e ".[x]"``
(or a wheel built from it), as Getting started says."""

from __future__ import annotations

import re
from pathlib import Path

from _pages import EXAMPLES, README, ROOT, pages

#: ``pip install spapi-services``, quoted or not, with or without extras.
_FROM_THE_INDEX = re.compile(r"""pip install\s+(?:-U\s+)?["']?spapi-services\b""")


def _texts() -> list[Path]:
    return [README, *pages(), *sorted(EXAMPLES.glob("*.py"))]


def test_the_install_lines_name_the_clone_not_the_index() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}"
        for path in _texts()
        for text in [path.read_text(encoding="utf-8")]
        for match in _FROM_THE_INDEX.finditer(text)
    ]
    assert wrong == [], f"install lines that cannot work (not on the index): {wrong}"


def test_the_pattern_finds_the_spellings_that_cannot_work() -> None:
    for line in (
        'pip install "spapi-services[otel]"',
        "pip install spapi-services",
        "pip install 'spapi-services[fleet]'",
    ):
        assert _FROM_THE_INDEX.search(line), line
    for line in ('pip install -e ".[otel]"', 'pip install "$(ls dist/spapi_services-*.whl)[cli]"'):
        assert not _FROM_THE_INDEX.search(line), line
