"""README.md's example of testing your own code with the fixtures, run as written.

The example is the first Python block of the README that uses ``services_emulator`` and
defines a test.  It is saved as the only test file of a new project with pytest-asyncio
in its default, strict, mode and run with warnings as errors: every test in it passes.
"""

from __future__ import annotations

import ast
from pathlib import Path

from readme._readme import fenced_blocks

from ._projects import UNSET_LOOP_SCOPE, run_pytest, write_project


def fixtures_example() -> str:
    found = [b for b in fenced_blocks("python") if "services_emulator" in b and "def test_" in b]
    assert found, "README.md: no Python block uses services_emulator in a test"
    return found[0]


def test_the_readme_fixtures_example_passes_as_written(tmp_path: Path) -> None:
    example = fixtures_example()
    tests = [
        node.name
        for node in ast.parse(example).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    ]
    project = write_project(tmp_path, "", **{"test_example.py": example})

    run = run_pytest(project, "-W", UNSET_LOOP_SCOPE)

    assert run.returncode == 0, run.output
    assert tests, "the example defines no test function at top level"
    assert {name: o.result for name, o in run.outcomes.items()} == dict.fromkeys(tests, "passed"), (
        run.output
    )
