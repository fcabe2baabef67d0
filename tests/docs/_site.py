"""The built site: one strict build per test session, and the public names it documents."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType

import griffe
from _pages import ROOT

PACKAGE = "spapi_services"

#: Public packages the reference leaves out, and why.
NOT_IN_THE_REFERENCE = {
    f"{PACKAGE}.cli": "the command line: its guide and --help document it, not its Python",
}


def build(site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict`` of the repository's docs into ``site``."""
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
        check=False,
    )


def inventory(site: Path) -> set[str]:
    """The identifiers the site's objects.inv lists (every object the reference renders)."""
    data = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four header lines, then the zlib-compressed entries
        header_end = data.index(b"\n", header_end) + 1
    lines = zlib.decompress(data[header_end:]).decode().splitlines()
    return {line.split(" ", 1)[0] for line in lines if line}


def tooling(name: str) -> ModuleType:
    """A module of docs/_tooling (the site's hooks and Griffe extensions), by file name."""
    path = ROOT / "docs" / "_tooling" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_tooling_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tooling() -> ModuleType:
    """docs/_tooling/griffe_sphinx_text.py, the extensions the site reads docstrings with."""
    return tooling("griffe_sphinx_text")


def load_package() -> griffe.Module:
    """The package as the site's reference sees it (source read, docstrings converted)."""
    tooling = _tooling()
    extensions = griffe.load_extensions(
        tooling.SphinxAttributeComments(), tooling.SphinxTextToMarkdown()
    )
    package = griffe.load(
        PACKAGE, search_paths=[str(ROOT)], extensions=extensions, resolve_aliases=True
    )
    assert isinstance(package, griffe.Module)
    return package


def public_modules(package: griffe.Module) -> list[griffe.Module]:
    """The package, each public subpackage or module of it, and the pytest plugin."""
    found = [package]
    for name, member in package.members.items():
        if name.startswith("_") or member.is_alias or not member.is_module:
            continue
        if member.path not in NOT_IN_THE_REFERENCE:
            found.append(member)  # type: ignore[arg-type]
    found.append(package["emulator.pytest_plugin"])
    return found


def public_names(package: griffe.Module) -> dict[str, griffe.Object]:
    """``module.name`` -> the object, for every name in each public module's ``__all__``."""
    names: dict[str, griffe.Object] = {}
    for module in public_modules(package):
        exported = module.exports
        assert exported, f"{module.path} has no __all__"
        for name in exported:
            member = module[str(name)]
            names[f"{module.path}.{name}"] = member.final_target if member.is_alias else member
    return names
