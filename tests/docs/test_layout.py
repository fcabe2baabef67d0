"""The built site as a reader's browser lays it out, 1280 pixels wide.

Headless Chromium (over the DevTools protocol: see ``_browser``) opens every guide and
reference page from the file system at a width of 1280 CSS pixels and measures, for
each signature, parameter list, table and code block, its ``scrollWidth`` against its
``clientWidth``: a box whose content is wider than the box shows a horizontal
scrollbar, and cuts off what is behind it.  It then measures the same boxes with
wrapping turned off, to check that the code itself fits (the site wraps a longer line
rather than hide it, which is a fallback, not a layout).  The same pass reads each
reference page's table of contents and the models' field tables.
"""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path
from typing import Any

import pytest

from ._browser import Page, tabs

WIDTH = 1280

#: Tabs loading pages side by side (the machine has two cores).
TABS = 2

#: One page's measurements, taken in the page (see the module's docstring).
MEASURE = r"""(() => {
  const short = el => el.textContent.trim().replace(/\s+/g, ' ').slice(0, 90);
  const cut = el => el.scrollWidth > el.clientWidth + 1;
  const boxes = [
    ['signature', '.md-content .doc-signature pre > code'],
    ['parameters', '.md-content .doc-contents ul:has(> li.field-body)'],
    ['table', '.md-content .md-typeset__scrollwrap'],
    ['code', '.md-content pre > code'],
  ];
  const overflowing = [];
  for (const [kind, selector] of boxes) {
    for (const el of document.querySelectorAll(selector)) {
      if (cut(el)) overflowing.push([kind, el.scrollWidth, el.clientWidth, short(el)]);
    }
  }
  const page = document.scrollingElement;
  if (cut(page)) overflowing.push(['page', page.scrollWidth, page.clientWidth, '']);
  // The code itself: wider than its box when nothing wraps?
  const unwrapped = [];
  const nowrap = document.createElement('style');  // one layout for all the blocks
  nowrap.textContent = '.md-content pre > code { white-space: pre !important; }';
  document.head.appendChild(nowrap);
  for (const el of document.querySelectorAll('.md-content pre > code')) {
    if (!cut(el)) continue;
    const block = el.closest('.highlight');
    const kind = el.closest('.doc-signature') ? 'signature'
      : block && block.classList.contains('language-python') ? 'python' : 'other';
    const titled = !!(block && block.querySelector('.filename'));
    const longest = el.textContent.split('\n').reduce((a, b) => b.length > a.length ? b : a, '');
    unwrapped.push([kind, titled, longest]);
  }
  nowrap.remove();
  const toc = [...document.querySelectorAll('.md-sidebar--secondary .md-nav__link')]
    .map(a => a.textContent.trim().replace(/\s+/g, ' '));
  const classes = [...document.querySelectorAll('.md-content .doc-class')].map(cls => {
    const heading = cls.querySelector('.doc-heading');
    const contents = cls.querySelector(':scope > .doc-contents');
    const rows = contents ? [...contents.querySelectorAll(
      ':scope > table tr.doc-field, :scope > .md-typeset__scrollwrap tr.doc-field')] : [];
    const values = contents ? [...contents.querySelectorAll(':scope > p')]
      .map(p => p.textContent.trim()).find(t => t.startsWith('Values:')) : undefined;
    return {
      name: heading ? heading.id.split('.').pop() : '',
      values: values || '',
      signature: !!cls.querySelector(
        ':scope > .doc-signature, :scope > .doc-contents > .doc-signature'),
      fields: rows.map(row => [...row.cells].map(
        cell => cell.textContent.trim().replace(/\s+/g, ' '))),
    };
  });
  const signatureLines = Object.fromEntries(
    [...document.querySelectorAll('.md-content .doc-signature pre > code')]
      .map(el => [el.textContent.split('(')[0].trim(), el.textContent.trim().split('\n').length]));
  const article = document.querySelector('.md-content article');
  const opening = article.querySelector(':scope > p').textContent.trim().slice(0, 40);
  return {overflowing, unwrapped, toc, classes, signatureLines,
          intro: article.textContent.split(opening).length - 1};
})()"""


def _pages(site: Path) -> list[str]:
    """The guides, the reference and the first page, as paths under the site."""
    found = ["index.html", "benchmarks/index.html"]
    for folder in ("guides", "reference"):
        found += sorted(f"{folder}/{p.name}" for p in (site / folder).glob("*.html"))
    return found


async def _measure(chromium: str, site: Path, shots: Path) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    waiting = _pages(site)

    async def work(page: Page) -> None:
        while waiting:
            path = waiting.pop(0)
            await page.open((site / path).as_uri(), width=WIDTH)
            measured[path] = await page.evaluate(MEASURE)
            if path == "reference/client.html":
                await page.evaluate(
                    "document.querySelector('[id=\"spapi_services.ServicesClient\"]')"
                    ".scrollIntoView()"
                )
                measured["screenshot"] = await page.screenshot(shots / "client-1280.png")

    async with tabs(chromium, TABS) as pages:
        await asyncio.gather(*(work(page) for page in pages))
    return measured


@pytest.fixture(scope="module")
def layout(
    built_site: Path,
    chromium: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Every page's measurements, taken once for this module's tests."""
    shots = tmp_path_factory.mktemp("screenshots")
    return asyncio.run(_measure(chromium, built_site, shots))


def _png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_every_page_was_measured(layout: dict[str, Any]) -> None:
    assert {"index.html", "reference/client.html", "guides/jobs.html"} <= set(layout)
    assert sum(len(m["classes"]) for p, m in layout.items() if p.startswith("reference/")) > 100


def test_no_signature_parameter_list_table_or_code_is_cut_off_at_1280(
    layout: dict[str, Any],
) -> None:
    cut_off = [
        f"{path}: {kind} {wide}px in {box}px: {text}"
        for path, measured in layout.items()
        if path != "screenshot"
        for kind, wide, box, text in measured["overflowing"]
    ]
    assert cut_off == [], "\n".join(cut_off)
    # The screenshot of ServicesClient's signature, for a reader of the test's output.
    assert _png_size(layout["screenshot"])[0] == WIDTH


def test_signatures_fit_without_wrapping_one_parameter_a_line(layout: dict[str, Any]) -> None:
    wide = [
        f"{path}: {line!r}"
        for path, measured in layout.items()
        if path.startswith("reference/")
        for kind, _, line in measured["unwrapped"]
        if kind == "signature"
    ]
    assert wide == [], "signatures wider than the page:\n" + "\n".join(wide)
    client = layout["reference/client.html"]["signatureLines"]
    # Formatted (ruff, from the docs extra): one parameter a line, not one long line.
    assert client["ServicesClient"] > 20


def test_the_python_written_on_the_pages_fits_without_wrapping(layout: dict[str, Any]) -> None:
    # What the pages show themselves, and whole example scripts (titled with their file,
    # formatted at 88 columns by examples/ruff.toml for this), fit.
    wide = [
        f"{path}: {line!r}"
        for path, measured in layout.items()
        if path != "screenshot"
        for kind, _titled, line in measured["unwrapped"]
        if kind == "python"
    ]
    assert wide == [], "Python lines wider than a code block at 1280 pixels:\n" + "\n".join(wide)


def test_the_reference_lists_no_special_methods(layout: dict[str, Any]) -> None:
    dunders = [
        f"{path}: {entry}"
        for path, measured in layout.items()
        if path.startswith("reference/")
        for entry in measured["toc"]
        if entry.split()[-1].startswith("__") and entry.split()[-1] != "__version__"
    ]
    assert dunders == [], dunders
    toc = layout["reference/client.html"]["toc"]
    assert {"ServicesClient", "with_options", "aclose"} <= set(toc)  # methods still are


def test_each_model_shows_a_table_of_its_fields_each_described(layout: dict[str, Any]) -> None:
    models = layout["reference/models.html"]
    classes = {c["name"]: c for c in models["classes"]}
    assert models["classes"][0]["name"] == "ServiceJob"  # the job first, not Address
    assert models["intro"] == 1  # the page's introduction, once
    job = classes["ServiceJob"]
    assert not job["signature"]
    assert [row[0] for row in job["fields"]][:3] == [
        "create_time",
        "service_job_id",
        "service_job_status",
    ]
    undescribed = [
        f"{name}.{row[0]}"
        for name, c in classes.items()
        for row in c["fields"]
        if len(row) < 3 or not row[2].removeprefix("Required.").strip()
    ]
    assert undescribed == [], f"fields without a description: {undescribed}"
    with_fields = [c for c in classes.values() if c["fields"]]
    assert len(with_fields) > 50
    assert "Required." in {r[0]: r[2] for r in classes["Reservation"]["fields"]}["type"]


def test_enum_values_are_listed_in_a_line(layout: dict[str, Any]) -> None:
    models = layout["reference/models.html"]
    status = next(c for c in models["classes"] if c["name"] == "ServiceJobStatus")
    assert status["values"].startswith("Values: NOT_SERVICED, CANCELLED, COMPLETED,")
    assert "ServiceJobStatus" in models["toc"]
    assert not any(entry.endswith("PENDING_SCHEDULE") for entry in models["toc"])
