"""The Benchmarks page: honest figures, and for each missed target, why and what next.

benchmarks/RESULTS.md (which the site's Benchmarks page includes) is written by
benchmarks/run_all.py; its headline's verdicts and the section on missed targets come
from benchmarks/_headline.py, rendered here without running a benchmark.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from _pages import ROOT
from markdown.extensions.toc import slugify

BENCHMARKS = ROOT / "benchmarks"
RESULTS = BENCHMARKS / "RESULTS.md"

_MISSED_CELL = re.compile(r"\*\*missed\*\*(?:: \[[^\]]+\]\(#([\w-]+)\))?")
_LINK = re.compile(r"\]\(#([\w-]+)\)")


@pytest.fixture(scope="module")
def headline() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_headline", BENCHMARKS / "_headline.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _github_slug(heading: str) -> str:
    """The anchor a repository host (GitHub) gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(markdown: str) -> set[str]:
    return {slugify(h, "-") for h in re.findall(r"^#{1,6} (.+)$", markdown, flags=re.M)}


def _headline_table(markdown: str) -> str:
    start = markdown.index("## Headline\n")
    return markdown[start : markdown.index("\n## ", start + 1)]


def test_a_verdict_is_met_or_a_dash_or_a_miss_linked_to_why(headline: ModuleType) -> None:
    verdict = headline.Verdicts()
    assert verdict(True, "overhead") == "met"
    assert verdict(None) == "–"
    cell = verdict(False, "overhead")
    (target,) = _MISSED_CELL.fullmatch(cell).groups()  # type: ignore[union-attr]
    assert verdict.missed == ["overhead"]
    section = "\n".join(verdict.section())
    assert target in _anchors(section)
    assert "**What limits it.**" in section
    assert "**What is being done.**" in section


def test_a_miss_without_an_explanation_says_so(headline: ModuleType) -> None:
    verdict = headline.Verdicts()
    cell = verdict(False, "memory")
    section = "\n".join(verdict.section())
    assert _MISSED_CELL.fullmatch(cell)[1] in _anchors(section)  # type: ignore[index]
    assert headline.NOT_YET[0] in section


def test_every_explanation_has_one_anchor_on_both_renderers(headline: ModuleType) -> None:
    for key, miss in headline.MISSES.items():
        expected = headline.anchor(miss.heading)
        assert expected == slugify(miss.heading, "-") == _github_slug(miss.heading), key
        assert miss.limit.strip()
        assert miss.next.strip()


def test_every_explanation_is_of_a_row_run_all_renders(headline: ModuleType) -> None:
    source = (BENCHMARKS / "run_all.py").read_text(encoding="utf-8")
    keys = set(re.findall(r'verdict\([^\n]*?, "(\w+)"\)', source, flags=re.S))
    assert len(keys) >= 10
    assert set(headline.MISSES) <= keys


def test_results_md_says_why_for_each_miss_of_its_headline(headline: ModuleType) -> None:
    text = RESULTS.read_text(encoding="utf-8")
    table = _headline_table(text)
    cells = list(_MISSED_CELL.finditer(table))
    if not cells:  # every target met: no section of misses either
        assert "## Missed targets" not in text
        return
    unlinked = [m[0] for m in cells if m[1] is None]
    assert unlinked == [], "a missed target in the headline without a link to why"
    anchors = _anchors(text)
    assert {m[1] for m in cells} <= anchors
    # The section is what run_all.py writes for the same misses, word for word.
    keys = {headline.anchor(miss.heading): key for key, miss in headline.MISSES.items()}
    verdict = headline.Verdicts()
    for m in cells:
        verdict(False, keys.get(m[1], m[1]))
    assert "\n".join(verdict.section()) in text
    # Every link in the section leads to a heading of the page.
    section = text[text.index("## Missed targets") : text.index("\n## 1. ")]
    assert set(_LINK.findall(section)) <= anchors


def test_the_benchmarks_page_shows_the_explanations(built_site: Path) -> None:
    page = (built_site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    text = RESULTS.read_text(encoding="utf-8")
    for target in {m[1] for m in _MISSED_CELL.finditer(_headline_table(text))}:
        assert f'id="{target}"' in page
        assert f'href="#{target}"' in page


def test_results_md_carries_the_fault_campaign_as_its_last_section() -> None:
    # run_all.py does not run the campaign (nox -s chaos does): it carries its results.
    source = (BENCHMARKS / "run_all.py").read_text(encoding="utf-8")
    assert 'CHAOS = HERE / "CHAOS.md"' in source
    chaos = (BENCHMARKS / "CHAOS.md").read_text(encoding="utf-8").rstrip("\n")
    assert chaos.startswith("## ")
    assert RESULTS.read_text(encoding="utf-8").rstrip("\n").endswith(chaos)
