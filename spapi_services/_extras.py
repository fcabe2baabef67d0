"""The optional extras: which one a missing module belongs to, and the install command that
works from where this copy of the SDK was installed.

The package is not on the public index: ``pip install "spapi-services[fleet]"`` fails
for most people.  How it was installed is written in its distribution's
``direct_url.json`` (PEP 610): an editable install from a clone (``pip install -e .``),
a directory, a wheel file, a VCS URL, or nothing for an index.  :func:`install_command`
reads it and says the command that adds an extra the same way, with the interpreter
that runs this program.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = [
    "EXTRAS",
    "corrected",
    "extra_for",
    "install_command",
    "missing_extra_message",
    "requirement",
]

_DISTRIBUTION = "spapi-services"

#: The extra that brings each optional top-level module.
EXTRAS: dict[str, str] = {
    "click": "cli",
    "rich": "cli",
    "redis": "redis",
    "asyncpg": "postgres",
    "taskiq": "fleet",
    "taskiq_redis": "fleet",
    "opentelemetry": "otel",
    "orjson": "speedups",
}


#: Extras that bring others with them: naming the larger one installs everything needed.
_INCLUDES: dict[str, frozenset[str]] = {"fleet": frozenset({"fleet", "postgres", "redis"})}

_INSTALL_HINT = re.compile(r"""pip install (["']?)spapi-services\[(\w+)\]\1""")


def corrected(message: str) -> str:
    """``message`` with any ``pip install "spapi-services[X]"`` in it replaced by the
    command that works for this installation."""
    return _INSTALL_HINT.sub(lambda m: install_command(m[2]), message)


def extra_for(exc: BaseException, within: str | None = None) -> str | None:
    """The extra whose module ``exc`` (an ``ImportError``, or what it was raised from)
    could not import, or ``None`` when it is no extra's.  ``within`` names the extra the
    feature needs (``fleet``): it is the answer when the missing one is part of it."""
    found = _extra_of(exc)
    if found is not None and within is not None and found in _INCLUDES.get(within, ()):
        return within
    return found


def _extra_of(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ImportError) and current.name:
            extra = EXTRAS.get(current.name.split(".")[0])
            if extra is not None:
                return extra
        current = current.__cause__ or current.__context__
    return None


def _direct_url() -> dict[str, object] | None:
    try:
        text = metadata.distribution(_DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _shown_path(path: Path) -> str:
    """``path`` as short as it can be said from the current directory."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    if relative == ".":
        return "."
    return relative if not relative.startswith("..") else str(path)


def requirement(extra: str) -> tuple[str, ...]:
    """The arguments after ``pip install`` that add ``extra`` to this installation."""
    found = _direct_url()
    if found is None:
        return (f"{_DISTRIBUTION}[{extra}]",)
    url = str(found.get("url", ""))
    parts = urlsplit(url)
    if parts.scheme == "file":
        path = Path(unquote(parts.path))
        dir_info = found.get("dir_info")
        editable = isinstance(dir_info, dict) and bool(dir_info.get("editable"))
        target = f"{_shown_path(path)}[{extra}]"
        return ("-e", target) if editable else (target,)
    vcs = found.get("vcs_info")
    if isinstance(vcs, dict) and vcs.get("vcs"):
        return (f"{_DISTRIBUTION}[{extra}] @ {vcs['vcs']}+{url}",)
    return (f"{_DISTRIBUTION}[{extra}] @ {url}",)


def install_command(extra: str) -> str:
    """The shell command that installs ``extra`` where this SDK is installed, with the
    interpreter running now (``.venv/bin/python -m pip install -e ".[fleet]"``)."""
    python = _shown_path(Path(sys.executable))
    if python == Path(sys.executable).name:
        python = f"./{python}"
    return " ".join(
        [shlex.quote(python), "-m", "pip", "install", *map(shlex.quote, requirement(extra))]
    )


def missing_extra_message(extra: str, what: str) -> str:
    """One line: ``what`` needs the extra, and the command that installs it."""
    return f"{what} needs the {extra} extra, which is not installed: {install_command(extra)}"
