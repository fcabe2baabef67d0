"""Reading README.md's code blocks, and running them the way a reader would.

How a test finds its block: an HTML comment ``<!-- test: NAME -->`` on the line right
before a fenced Python block names it (anything after NAME in the comment is a note for
readers of the Markdown). Every Python block in the README carries one; tests ask for a
block by that name with :func:`block` and never keep a copy of its code. A block is run
as it stands: a complete program in a subprocess with the settings a reader would export,
a fragment (top-level ``await`` on names its prose introduces) in the test's event loop
with those names provided.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs

from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.__main__ import environment

README = Path(__file__).resolve().parents[2] / "README.md"

#: The marketplace the README's examples default to (the US one).
US = "ATVPDKIKX0DER"

_MARKED = re.compile(r"^<!-- (test|sample): ([\w-]+)[^>]*-->\n```(\w+)\n(.*?)^```$", re.M | re.S)
_FENCE = re.compile(r"^( *)```(\w+)\n(.*?)^\1```$", re.M | re.S)


@attrs.frozen
class Block:
    """One fenced code block of the README."""

    kind: str
    """``test`` for code a test runs, ``sample`` for output a test compares."""
    name: str
    language: str
    code: str
    line: int
    """The README line of the block's first line of code."""


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def marked_blocks() -> list[Block]:
    """Every block with a ``test:`` or ``sample:`` comment, in README order."""
    text = readme_text()
    return [
        Block(m[1], m[2], m[3], m[4], text.count("\n", 0, m.start(4)) + 1)
        for m in _MARKED.finditer(text)
    ]


def fenced_blocks(language: str) -> list[str]:
    """The code of every block fenced as ``language`` (in a list item too), in README order."""
    return [textwrap.dedent(m[3]) for m in _FENCE.finditer(readme_text()) if m[2] == language]


def _find(kind: str, name: str) -> Block:
    found = [b for b in marked_blocks() if b.kind == kind and b.name == name]
    assert len(found) == 1, f"README.md: expected one block marked '{kind}: {name}'"
    return found[0]


def block(name: str) -> Block:
    """The Python block marked ``<!-- test: name -->``."""
    found = _find("test", name)
    assert found.language == "python", f"README.md: block {name!r} is not fenced as python"
    return found


def sample(name: str) -> Block:
    """The block marked ``<!-- sample: name -->`` (output shown to readers)."""
    return _find("sample", name)


def as_script(found: Block) -> str:
    """The block's code, padded so that a traceback's line numbers are README lines."""
    return "\n" * (found.line - 1) + found.code


async def run_fragment(found: Block, namespace: dict[str, Any]) -> None:
    """Run a block in this event loop, top-level ``await`` included, with ``namespace``.

    Names it assigns are left in ``namespace`` for the test to look at.
    """
    tree = ast.parse(found.code, str(README), "exec")
    ast.increment_lineno(tree, found.line - 1)
    code = compile(tree, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    namespace.setdefault("__name__", f"readme_{found.name.replace('-', '_')}")
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result


def load_module(found: Block) -> dict[str, Any]:
    """Execute a block that only defines things (an application), as a module would be."""
    namespace: dict[str, Any] = {"__name__": f"readme_{found.name.replace('-', '_')}"}
    exec(compile(as_script(found), str(README), "exec"), namespace)
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
    """Save ``code`` as a file and run it with this Python, warnings as errors.

    With ``source``, through ``sh``, after ``. source``, as a reader runs it after
    sourcing the emulator's env file.  Asynchronously, so that an emulator in this event
    loop keeps answering meanwhile.
    """
    path = cwd / name
    path.write_text(code, encoding="utf-8")
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

    The README tests pin the emulator's clock there, so they pass on any day: the seeded
    world is built around the emulator's "now", every one of its technicians works on
    Wednesdays (their weeks run Monday to Friday or Tuesday to Saturday) and no seeded
    appointment falls on that day.  Ahead of the real time, so that "the last 90 days"
    seen from this machine's clock covers every seeded job.
    """
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today + timedelta(days=(2 - today.weekday()) % 7 or 7)
