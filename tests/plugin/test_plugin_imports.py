"""Loading the plugin, as pytest does at every start, imports nothing heavy.

One pytest run of an empty user project, in a subprocess, reports the modules it left
loaded; ``benchmarks/bench_plugin_startup.py`` measures what loading the plugin costs.
And ``spapi_services.emulator`` imports its public names on first use, all of them.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

import spapi_services.emulator as emulator
from spapi_services.emulator import pytest_plugin

from ._projects import write_project

# pytest.main in this interpreter, then what it left in sys.modules.
_REPORT = """
import json, sys, pytest

class Report:
    def pytest_sessionfinish(self, session):
        manager = session.config.pluginmanager
        found["fixtures_registered"] = manager.has_plugin(sys.argv[1])

found = {}
found["exit"] = int(pytest.main(sys.argv[2:], plugins=[Report()]))
found["modules"] = sorted(sys.modules)
print(json.dumps(found))
"""

#: The server side (aiohttp.web), document encryption, and the emulator itself.
EMULATOR = ("aiohttp.web", "cryptography", "spapi_services.emulator.server")
#: The client's stack, imported by the package's ``__init__``.
CLIENT = ("aiohttp", "spapi_services._client", "spapi_services.models")


@pytest.fixture(scope="module")
def after_start(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    project = write_project(
        tmp_path_factory.mktemp("project"),
        "asyncio_default_fixture_loop_scope = function\n",
        **{"test_plain.py": "def test_plain():\n    pass\n"},
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    args = ["-p", "no:cacheprovider", "-q", "-c", str(project / "pytest.ini")]
    done = subprocess.run(
        [sys.executable, "-c", _REPORT, pytest_plugin.FIXTURES_PLUGIN, *args, str(project)],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["exit"] == 0, done.stdout
    assert found["fixtures_registered"] is True
    return found


def test_a_pytest_run_does_not_load_the_emulator(after_start: dict[str, object]) -> None:
    modules = after_start["modules"]
    assert isinstance(modules, list)
    assert "spapi_services.emulator.pytest_plugin" in modules
    assert [m for m in EMULATOR if m in modules] == []


def test_a_pytest_run_does_not_load_the_client(after_start: dict[str, object]) -> None:
    modules = after_start["modules"]
    assert isinstance(modules, list)
    assert [m for m in CLIENT if m in modules] == []


def test_each_public_name_of_the_emulator_comes_from_its_module() -> None:
    assert sorted(emulator._HOMES) == sorted(emulator.__all__)
    for name, home in emulator._HOMES.items():
        module = importlib.import_module(f"spapi_services.emulator.{home}")
        assert getattr(emulator, name) is getattr(module, name)
    assert set(emulator.__all__) <= set(dir(emulator))
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        emulator.Nothing  # noqa: B018
