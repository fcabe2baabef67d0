"""The fixtures in a user's project with pytest-asyncio, in its strict mode and in auto mode.

Each test runs pytest once on a project of its own (about a second each), warnings as
errors and no ``asyncio_default_fixture_loop_scope`` set by the strict project: the
fixtures give their loop scope themselves, and add no warning of their own.
"""

from __future__ import annotations

from pathlib import Path

from ._projects import UNSET_LOOP_SCOPE, run_pytest, write_project

STRICT_TESTS = """
import pytest


def test_without_the_fixtures():
    pass


@pytest.mark.asyncio
async def test_the_emulator(services_emulator):
    assert len(services_emulator.store.jobs) == 100
    assert services_emulator.seed == 0
    assert services_emulator.url.startswith("http://127.0.0.1:")


@pytest.mark.asyncio
@pytest.mark.services_emulator(jobs=12, seed=5, enforce_limits=False)
async def test_the_client_and_the_marker(services_emulator, services_client):
    assert len(services_emulator.store.jobs) == 12
    assert services_emulator.seed == 5
    assert not services_emulator.limits.enforce
    job = services_emulator.store.find_jobs(marketplace_id="ATVPDKIKX0DER")[0]
    fetched = await services_client.service_jobs.get(job.service_job_id)
    assert fetched.service_job_id == job.service_job_id


@pytest.mark.services_emulator(jobs=7, seed=2)
class TestAClassMarker:
    @pytest.mark.asyncio
    async def test_applies_to_its_tests(self, services_emulator):
        assert (len(services_emulator.store.jobs), services_emulator.seed) == (7, 2)

    @pytest.mark.asyncio
    @pytest.mark.services_emulator(seed=9)
    async def test_and_the_test_marker_wins(self, services_emulator):
        assert (len(services_emulator.store.jobs), services_emulator.seed) == (7, 9)


async def test_not_marked_for_asyncio(services_emulator):
    pass


@pytest.mark.asyncio(loop_scope="module")
async def test_in_a_module_loop(services_emulator):
    pass


@pytest.mark.asyncio
@pytest.mark.services_emulator(job=3)
async def test_a_misspelt_option(services_emulator):
    pass
"""


def test_strict_mode(tmp_path: Path) -> None:
    project = write_project(tmp_path, "", **{"test_strict.py": STRICT_TESTS})

    run = run_pytest(project, "-W", UNSET_LOOP_SCOPE)

    outcomes = run.outcomes
    assert {name: o.result for name, o in outcomes.items()} == {
        "test_without_the_fixtures": "passed",
        "test_the_emulator": "passed",
        "test_the_client_and_the_marker": "passed",
        "test_applies_to_its_tests": "passed",
        "test_and_the_test_marker_wins": "passed",
        "test_not_marked_for_asyncio": "error",
        "test_in_a_module_loop": "error",
        "test_a_misspelt_option": "error",
    }, run.output
    assert "mark it @pytest.mark.asyncio" in outcomes["test_not_marked_for_asyncio"].message
    assert "module-scoped event loop" in outcomes["test_in_a_module_loop"].message
    assert "no option 'job'" in outcomes["test_a_misspelt_option"].message
    assert "warning" not in run.output.lower()


def test_auto_mode(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        """
        asyncio_mode = auto
        asyncio_default_fixture_loop_scope = function
        """,
        **{
            "test_auto.py": """
            import pytest


            async def test_the_emulator(services_emulator):
                assert len(services_emulator.store.jobs) == 100


            @pytest.mark.services_emulator(jobs=4)
            async def test_the_client_and_the_marker(services_emulator, services_client):
                job = next(iter(services_emulator.store.jobs.values()))
                await services_client.service_jobs.get(job.service_job_id)
                assert len(services_emulator.store.jobs) == 4
                assert services_emulator.count("getServiceJobByServiceJobId") == 1
            """
        },
    )

    run = run_pytest(project)

    assert run.returncode == 0, run.output
    assert {name: o.result for name, o in run.outcomes.items()} == {
        "test_the_emulator": "passed",
        "test_the_client_and_the_marker": "passed",
    }
    assert "warning" not in run.output.lower()
