"""The examples take their settings as the guides say a reader should: ``ServicesClient()``
reads the SPAPI_* variables itself, so no example reads them again for it (a reader
copying such code would think the client does not, and would hard-code a default)."""

from __future__ import annotations

import re
from pathlib import Path

from _pages import EXAMPLES, ROOT

#: What the client reads itself: ``os.environ["SPAPI_ENDPOINT"]``, ``os.getenv(...)``...
_RE_READ = re.compile(
    r"""(?:environ(?:\.get)?\s*[\[(]|getenv\s*\()\s*["'](SPAPI_(?:ENDPOINT|TOKEN_URL|MARKETPLACE_ID|REGION|SANDBOX))["']"""
)


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.py"))


def test_no_example_reads_again_what_the_client_reads_itself() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {match[1]}"
        for path in _examples()
        for match in _RE_READ.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == [], f"examples reading settings ServicesClient() reads itself: {found}"


def test_the_pattern_finds_a_re_read() -> None:
    assert _RE_READ.search('os.environ.get("SPAPI_ENDPOINT")')
    assert _RE_READ.search("os.environ['SPAPI_MARKETPLACE_ID']")
    assert _RE_READ.search('os.getenv("SPAPI_TOKEN_URL")')
    assert not _RE_READ.search('os.environ["SPAPI_REDIS_URL"]')
