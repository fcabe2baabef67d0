"""Fixtures for the site's tests: an emulator with its clock pinned, a client, and the
site built once per session."""

from pathlib import Path

import pytest
from _pages import client, emulator
from _servers import require_program

from ._site import build

__all__ = ["built_site", "chromium", "client", "emulator"]


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strictly from the repository (a warning fails the build)."""
    site = tmp_path_factory.mktemp("docs") / "site"
    done = build(site)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}{done.stderr}"
    return site


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, which the browser tests drive (skip, or fail in CI, without it)."""
    return require_program("chromium", "chromium")
