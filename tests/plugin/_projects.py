"""A user's project in a temporary folder, and pytest run on it the way its owner would.

Each project has its own test files and its own ``pytest.ini``, named with ``-c`` and
``--rootdir`` so that nothing of this repository's configuration (nor ``PYTEST_ADDOPTS``)
reaches it.  Outcomes are read from pytest's JUnit XML report.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import textwrap
import venv
import xml.etree.ElementTree as ET
from pathlib import Path

import attrs

#: pytest-asyncio's own warning at start-up when a project leaves this option unset; it
#: comes whether or not the SDK is installed, so the runs below let it through and turn
#: every other warning into an error.
UNSET_LOOP_SCOPE = (
    'ignore:The configuration option "asyncio_default_fixture_loop_scope" is unset'
    ":pytest.PytestDeprecationWarning"
)

#: Environment variables that would bring the developer's settings into a user's run.
_PYTEST_SETTINGS = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


@attrs.frozen
class Outcome:
    """One test of a project's run: ``passed``, ``failed``, ``error`` or ``skipped``."""

    result: str
    message: str = ""


@attrs.frozen
class Run:
    returncode: int
    output: str
    outcomes: dict[str, Outcome]


def write_project(root: Path, ini: str, **files: str) -> Path:
    """A project in ``root``: its ``pytest.ini`` (``[pytest]`` added) and its files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n" + textwrap.dedent(ini), encoding="utf-8")
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def run_pytest(root: Path, *args: str, python: str | Path = sys.executable) -> Run:
    """``python -m pytest`` on the project, warnings as errors, from its own folder."""
    report = root / "report.xml"
    env = {k: v for k, v in os.environ.items() if k not in _PYTEST_SETTINGS}
    done = subprocess.run(
        [
            str(python),
            *("-m", "pytest", "-p", "no:cacheprovider", "-W", "error", "-rA"),
            *("-c", str(root / "pytest.ini"), "--rootdir", str(root)),
            *("--junitxml", str(report)),
            *args,
            str(root),
        ],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    outcomes = _outcomes(report) if report.exists() else {}
    return Run(done.returncode, output, outcomes)


def _outcomes(report: Path) -> dict[str, Outcome]:
    found = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        result, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                result = child.tag if child.tag != "failure" else "failed"
                message = f"{child.get('message', '')}\n{child.text or ''}"
                break
        found[case.get("name", "")] = Outcome(result, message)
    return found


def venv_without(distribution: str, where: Path) -> Path:
    """A real virtual environment with everything of this one but ``distribution``.

    Each entry of this environment's site-packages is linked into the new one, except the
    distribution's own packages and metadata: it can neither be imported nor found as a
    pytest plugin there, as if it had never been installed.  Returns its Python.
    """
    dist = importlib.metadata.distribution(distribution)
    site = Path(str(dist.locate_file("")))
    hidden = {Path(f).parts[0] for f in dist.files or ()} - {".."}
    venv.EnvBuilder(symlinks=True, with_pip=False).create(where)
    paths = {"base": str(where), "platbase": str(where)}
    target = Path(sysconfig.get_path("purelib", scheme="venv", vars=paths))
    for entry in site.iterdir():
        if entry.name not in hidden:
            (target / entry.name).symlink_to(entry)
    return where / ("Scripts" if os.name == "nt" else "bin") / "python"
