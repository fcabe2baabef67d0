"""The built site, as a newcomer's browser shows it.

Debian's Chromium, headless, loads pages over a local HTTP server on 127.0.0.1 that logs
every request, and straight from the file system (site/index.html opened directly, which
is how the site is also meant to be read).  Without Chromium these tests skip (fail under
SPAPI_REQUIRE_SERVERS=1): ``apt-get install chromium``.
"""

from __future__ import annotations

import contextlib
import html
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import _chromium

#: Elements whose URL the browser loads by itself (links a reader follows are not loads).
_LOADS = re.compile(
    r"<(?:script|img|iframe|source|video|audio)\b[^>]*\bsrc=\"([^\"]+)\""
    r"|<link\b[^>]*\bhref=\"([^\"]+)\"[^>]*>",
)
_CSS_URL = re.compile(r"url\(\s*['\"]?(https?:)?//", re.I)


class _LoggingHandler(SimpleHTTPRequestHandler):
    """Serves the site, and notes each request's path and status."""

    log: list[tuple[str, int]]

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        self.log.append((self.path, int(code)))

    def log_message(self, format: str, *args: object) -> None:
        pass  # the log above is the record; keep the test's output clean


@contextlib.contextmanager
def served(site: Path) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """``site`` over HTTP on a free port of 127.0.0.1: its base URL and its request log."""
    log: list[tuple[str, int]] = []
    handler = type("Handler", (_LoggingHandler,), {"log": log})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dump_dom(chromium: str, url: str) -> str:
    """The page's DOM after its scripts ran, as headless Chromium renders it."""
    done = _chromium.run(
        chromium,
        [
            # Nothing but this machine resolves: a load from elsewhere would fail.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        timeout=90,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def headings(dom: str, level: int) -> list[str]:
    """The text of the page's headings of ``level``, without their permalinks."""
    found = re.findall(rf"<h{level}\b[^>]*>(.*?)</h{level}>", dom, flags=re.S)
    found = [re.sub(r'<a class="headerlink"[^>]*>.*?</a>', "", h, flags=re.S) for h in found]
    return [html.unescape(re.sub(r"<[^>]+>", "", h)).strip() for h in found]


def test_a_newcomer_lands_on_getting_started_and_reaches_a_guide(
    built_site: Path, chromium: str
) -> None:
    with served(built_site) as (base, log):
        home = dump_dom(chromium, f"{base}/index.html")
        guide = dump_dom(chromium, f"{base}/guides/jobs.html")
        bench = dump_dom(chromium, f"{base}/benchmarks/index.html")

    assert headings(home, 1) == ["Getting started"]
    assert {"Install", "Credentials", "A first call, against the emulator"} <= set(
        headings(home, 2)
    )
    assert 'href="guides/jobs.html"' in home  # the nav leads on to the guides
    assert headings(guide, 1) == ["Service jobs and pagination"]
    assert "Resuming where you stopped" in headings(guide, 2)
    assert headings(bench, 1) == ["Benchmark results"]
    assert 'src="bound.png"' in bench
    requested = {path.split("?", 1)[0] for path, _ in log}
    assert "/benchmarks/bound.png" in requested  # the chart, from benchmarks/
    assert any(p.startswith("/assets/javascripts/bundle.") for p in requested)
    assert any(p.startswith("/assets/stylesheets/main.") for p in requested)
    broken = sorted({path for path, status in log if status >= 400})
    assert broken == [], f"requests the site could not answer: {broken}"


def test_search_works_from_the_file_system(built_site: Path, chromium: str) -> None:
    dom = dump_dom(chromium, (built_site / "index.html").as_uri() + "?q=resume_token")

    (meta,) = re.findall(r'class="md-search-result__meta">([^<]*)<', dom)
    assert re.fullmatch(r"\d+ matching documents?", meta), meta
    results = re.findall(r'class="md-search-result__item"><a href="([^"?#]+)', dom)
    assert (built_site / "guides" / "jobs.html").as_uri() in results


def test_the_site_loads_nothing_from_elsewhere(built_site: Path) -> None:
    outside = []
    for page in built_site.rglob("*.html"):
        for match in _LOADS.finditer(page.read_text(encoding="utf-8")):
            url = match[1] or match[2]
            if re.match(r"(https?:)?//", url):
                outside.append(f"{page.relative_to(built_site)}: {url}")
    for sheet in built_site.rglob("*.css"):
        if _CSS_URL.search(sheet.read_text(encoding="utf-8")):
            outside.append(f"{sheet.relative_to(built_site)}: an external url()")
    assert outside == [], f"loads from outside the site: {outside}"
    assert (built_site / "search" / "search_index.js").is_file()  # search without a server
