"""Code shown to readers (README.md, the site's pages under docs/, examples/), run as
readers would run it.

How a test finds a block of a page: an HTML comment ``<!-- test: NAME -->`` on the line
right before a fenced code block names it (anything after NAME in the comment is a note
for readers of the Markdown); ``<!-- sample: NAME -->`` marks output shown to readers,
which a test compares.  Tests ask for a block by that name and never keep a copy of its
code.  A block is run as it stands: a complete program in a subprocess with the settings
a reader would export, a fragment (top-level ``await`` on names its prose introduces) in
the test's event loop with those names provided.  The scripts of examples/ are run the
same ways, from their files.

The emulator and client fixtures the page tests share are defined here and imported by
the conftest of each directory that uses them.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest_asyncio
from _emulators import emulators

from spapi_services import ServicesClient
from spapi_services.emulator import FakeClock, ServicesEmulator
from spapi_services.emulator.__main__ import environment

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"

#: The marketplace the examples default to (the US one).
US = "ATVPDKIKX0DER"

_MARKED = re.compile(r"^<!-- (test|sample): ([\w-]+)[^>]*-->\n```(\w+)\n(.*?)^```$", re.M | re.S)
_FENCE = re.compile(r"^( *)```(\w+)\n(.*?)^\1```$", re.M | re.S)


@attrs.frozen
class Block:
    """One fenced code block of a page."""

    kind: str
    """``test`` for code a test runs, ``sample`` for output a test compares."""
    name: str
    language: str
    code: str
    path: Path
    """The page it is on."""
    line: int
    """The page's line of the block's first line of code."""


def pages() -> list[Path]:
    """The site's pages, in a stable order."""
    return sorted(DOCS.rglob("*.md"))


def marked_blocks(path: Path) -> list[Block]:
    """Every block of ``path`` with a ``test:`` or ``sample:`` comment, in page order."""
    text = path.read_text(encoding="utf-8")
    return [
        Block(m[1], m[2], m[3], m[4], path, text.count("\n", 0, m.start(4)) + 1)
        for m in _MARKED.finditer(text)
    ]


def fenced_blocks(path: Path, language: str) -> list[str]:
    """The code of every block of ``path`` fenced as ``language`` (in a list item too)."""
    text = path.read_text(encoding="utf-8")
    return [textwrap.dedent(m[3]) for m in _FENCE.finditer(text) if m[2] == language]


def find(paths: list[Path], kind: str, name: str) -> Block:
    """The one block marked ``kind: name`` among ``paths``."""
    found = [b for path in paths for b in marked_blocks(path) if (b.kind, b.name) == (kind, name)]
    where = ", ".join(str(p.relative_to(ROOT)) for p in paths) if len(paths) < 3 else "docs/"
    assert len(found) == 1, f"{where}: expected one block marked '{kind}: {name}'"
    return found[0]


def python_block(paths: list[Path], name: str) -> Block:
    """The Python block marked ``<!-- test: name -->`` among ``paths``."""
    found = find(paths, "test", name)
    assert found.language == "python", f"{found.path}: block {name!r} is not fenced as python"
    return found


def as_script(found: Block) -> str:
    """The block's code, padded so that a traceback's line numbers are the page's lines."""
    return "\n" * (found.line - 1) + found.code


async def run_fragment(found: Block, namespace: dict[str, Any]) -> None:
    """Run a block in this event loop, top-level ``await`` included, with ``namespace``.

    Names it assigns are left in ``namespace`` for the test to look at.
    """
    tree = ast.parse(found.code, str(found.path), "exec")
    ast.increment_lineno(tree, found.line - 1)
    code = compile(tree, str(found.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace.setdefault("__name__", f"page_{found.name.replace('-', '_')}")
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result


def load_module(found: Block) -> dict[str, Any]:
    """Execute a block that only defines things (an application), as a module would be."""
    namespace: dict[str, Any] = {"__name__": f"page_{found.name.replace('-', '_')}"}
    exec(compile(as_script(found), str(found.path), "exec"), namespace)
    return namespace


def example(name: str) -> Path:
    """The path of an example script, which must exist."""
    path = EXAMPLES / name
    assert path.is_file(), f"examples/{name} is missing"
    return path


def load_example(name: str) -> dict[str, Any]:
    """Execute an example as an imported module would be (not as ``__main__``)."""
    path = example(name)
    namespace: dict[str, Any] = {"__name__": f"example_{path.stem}", "__file__": str(path)}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    return namespace


def settings_env(emu: ServicesEmulator, **extra: str) -> dict[str, str]:
    """This process's environment with the variables the emulator's command line exports.

    Any ``SPAPI_*`` variable already set is dropped first: an example must not reach
    beyond the emulator, whatever the machine running the tests has configured.
    """
    env = without_settings()
    env.update(environment(emu), **extra)
    return env


def without_settings() -> dict[str, str]:
    """This process's environment less every ``SPAPI_*`` variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SPAPI_")}


@attrs.frozen
class Finished:
    returncode: int
    stdout: str
    stderr: str


async def run_script(
    code: str,
    args: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    name: str = "example.py",
    source: Path | None = None,
) -> Finished:
    """Save ``code`` as a file in ``cwd`` and run it: see :func:`run_file`."""
    path = cwd / name
    path.write_text(code, encoding="utf-8")
    return await run_file(path, args, env=env, cwd=cwd, source=source)


async def run_file(
    path: Path,
    args: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    source: Path | None = None,
) -> Finished:
    """Run a Python file with this Python, warnings as errors, in ``cwd``.

    With ``source``, through ``sh``, after ``. source``, as a reader runs it after
    sourcing the emulator's env file.  Asynchronously, so that an emulator in this event
    loop keeps answering meanwhile.
    """
    command = [sys.executable, "-W", "error", str(path), *args]
    if source is not None:
        command = ["sh", "-c", '. "$0" && exec "$@"', str(source), *command]
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())


def next_wednesday() -> datetime:
    """Midnight UTC of the next Wednesday after today.

    The page tests pin the emulator's clock there, so they pass on any day: the seeded
    world is built around the emulator's "now", every one of its technicians works on
    Wednesdays (their weeks run Monday to Friday or Tuesday to Saturday) and no seeded
    appointment falls on that day.  Ahead of the real time, so that "the last 90 days"
    seen from this machine's clock covers every seeded job.
    """
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=(2 - today.weekday()) % 7 or 7)


# --- fixtures (imported by the conftest of each directory of page tests) -----------------


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[ServicesEmulator]:
    """A running emulator whose clock stands still at midnight of the next Wednesday."""
    async with emulators(jobs=60, seed=3, clock=FakeClock(next_wednesday())) as start:
        yield await start()


@pytest_asyncio.fixture
async def client(emulator: ServicesEmulator) -> AsyncIterator[ServicesClient]:
    """A client of the emulator in the US marketplace, as the pages' prose assumes."""
    async with ServicesClient(
        emulator.credentials,
        endpoint=emulator.url,
        token_url=emulator.token_url,
        marketplace_id=US,
    ) as services:
        yield services
