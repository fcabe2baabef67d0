"""Without pytest-asyncio, the SDK's plugin leaves a project's test suite alone.

The project runs in a real virtual environment made for the test: every package of this
one linked in, but pytest-asyncio's (so it is neither importable nor an installed pytest
plugin there, as for a user who never installed it).  The messages for pytest-asyncio
installed but not loaded, or too old, are checked in this process.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import pytest_asyncio

from spapi_services.emulator import pytest_plugin

from ._projects import run_pytest, venv_without, write_project

TESTS = """
import importlib.util

import pytest


def test_without_the_fixtures(pytestconfig):
    assert importlib.util.find_spec("pytest_asyncio") is None
    assert pytestconfig.pluginmanager.has_plugin("spapi_services")


async def test_the_emulator(services_emulator):
    pass


def test_the_client(services_client):
    pass
"""


def test_the_suite_runs_and_the_fixtures_say_what_to_install(tmp_path: Path) -> None:
    python = venv_without("pytest-asyncio", tmp_path / "venv")
    project = write_project(tmp_path / "project", "", **{"test_it.py": TESTS})

    run = run_pytest(project, python=python)

    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.output
    outcomes = run.outcomes
    assert outcomes["test_without_the_fixtures"].result == "passed", run.output
    for test, fixture in [
        ("test_the_emulator", "services_emulator"),
        ("test_the_client", "services_client"),
    ]:
        assert outcomes[test].result == "error"
        message = outcomes[test].message
        assert f"the {fixture} fixture (spapi-services) runs on pytest-asyncio" in message
        assert "pip install pytest-asyncio" in message
        assert "Traceback" not in message
    assert len(outcomes) == 3


def test_installed_but_not_loaded_says_how_to_load_it() -> None:
    assert importlib.util.find_spec("pytest_asyncio") is not None

    message = pytest_plugin._needs_pytest_asyncio("services_emulator", "missing")

    assert "installed but not loaded" in message
    assert "-p pytest_asyncio.plugin" in message


def test_this_session_runs_the_fixtures(pytestconfig: pytest.Config) -> None:
    assert pytest_plugin._pytest_asyncio_problem(pytestconfig) is None
    registered = pytestconfig.pluginmanager.get_plugin(pytest_plugin.FIXTURES_PLUGIN)
    assert registered.__name__ == "spapi_services.emulator._pytest_fixtures"


def test_a_pytest_asyncio_without_loop_scopes_is_too_old(
    pytestconfig: pytest.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fixture(fixture_function: object = None, **kwargs: object) -> object:
        """pytest-asyncio 0.23's signature: no loop_scope."""
        return fixture_function

    monkeypatch.setattr(pytest_asyncio, "fixture", fixture)
    monkeypatch.setattr(pytest_asyncio, "__version__", "0.23.8", raising=False)

    problem = pytest_plugin._pytest_asyncio_problem(pytestconfig)

    assert problem == "too old"
    message = pytest_plugin._needs_pytest_asyncio("services_client", problem)
    assert "needs pytest-asyncio 0.24 or later, and 0.23.8 is installed" in message
    assert "pip install -U 'pytest-asyncio>=0.24'" in message
