"""The command line's settings: the SDK's own reader of the SPAPI_* variables, options
first, and marketplace ids checked before anything is sent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spapi_services import LwaCredentials, ServicesClient
from spapi_services._env import ENVIRONMENT
from spapi_services.emulator import ServicesEmulator

from .conftest import US, Runner


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_options_come_before_the_environment(run: Runner, emulator: ServicesEmulator) -> None:
    # SPAPI_MARKETPLACE_ID says the US; --marketplace says Canada, and is what is sent.
    result = run("--marketplace", "A2EUQ1WTGCTBG2", "jobs", "list", "--since", "95d", "--json")
    assert result.exit_code == 0, result.stderr
    assert {job["marketplaceId"] for job in json.loads(result.stdout)} == {"A2EUQ1WTGCTBG2"}
    last = [r for r in emulator.requests if r.operation == "getServiceJobs"][-1]
    assert last.query["marketplaceIds"] == "A2EUQ1WTGCTBG2"


def test_a_malformed_marketplace_is_refused_before_anything_is_sent(
    run: Runner, emulator: ServicesEmulator
) -> None:
    before = emulator.count()
    result = run("--marketplace", "XYZ", "jobs", "list", "--since", "1d")
    assert result.exit_code == 2
    err = one_line(result.stderr)
    assert "Invalid argument: --marketplace: 'XYZ' is not a marketplace id" in err
    assert "Nothing was sent." in err
    lower = run("--marketplace", "atvpdkikx0der", "jobs", "list", "--since", "1d")
    assert lower.exit_code == 2
    assert "did you mean ATVPDKIKX0DER (US, United States)?" in one_line(lower.stderr)
    country = run("jobs", "list", "--since", "1d", env={"SPAPI_MARKETPLACE_ID": "de"})
    assert country.exit_code == 2
    assert (
        "SPAPI_MARKETPLACE_ID: 'de' is a country code, not a marketplace id; the marketplace "
        "of Germany is A1PA6795UKMFR9"
    ) in one_line(country.stderr)
    assert emulator.count() == before


def test_an_unknown_marketplace_is_sent_with_one_warning_line(run: Runner) -> None:
    result = run("--marketplace", "A9NEWMARKET01", "jobs", "list", "--since", "1d")
    err = one_line(result.stderr)
    assert "warning marketplace id A9NEWMARKET01 is not one of Amazon's marketplaces" in err
    assert "UnknownMarketplaceWarning" not in err  # Python's file-and-line form
    as_json = run("--json", "--marketplace", "A9NEWMARKET02", "jobs", "list", "--since", "1d")
    notes = [json.loads(line) for line in as_json.stderr.splitlines() if line.startswith("{")]
    assert {"warning": "unknown_marketplace"}.items() <= notes[0].items()


def test_a_marketplace_of_another_region_names_the_region(run: Runner) -> None:
    result = run(
        "--region", "eu", "--marketplace", US, "jobs", "list", "--since", "1d",
        env={"SPAPI_ENDPOINT": None, "SPAPI_TOKEN_URL": None},
    )  # fmt: skip
    assert result.exit_code == 2
    assert (
        "--marketplace: ATVPDKIKX0DER (US, United States) is served by Amazon's NA region, "
        "not EU: choose region NA"
    ) in one_line(result.stderr)


def test_sandbox_and_an_endpoint_are_not_both_taken(run: Runner) -> None:
    result = run("--sandbox", "jobs", "list", "--since", "1d")
    assert result.exit_code == 2
    err = one_line(result.stderr)
    assert "--sandbox / SPAPI_ENDPOINT: give one of them" in err


def test_a_bad_variable_is_named(run: Runner) -> None:
    result = run("jobs", "get", "1", env={"SPAPI_REGION": "mars"})
    assert result.exit_code == 2
    assert "SPAPI_REGION: 'mars' is not one of NA, EU, FE" in one_line(result.stderr)
    # A command that needs no connection is not held up by it.
    assert run("emulator", "--help", env={"SPAPI_REGION": "mars"}).exit_code == 0


# --- the developer's shell does not reach the tests -----------------------------------------

#: Settings a developer may have exported; none of them may reach a test.
LEAKED = {
    "SPAPI_CLIENT_ID": "amzn1.application-oa2-client.leaked",
    "SPAPI_CLIENT_SECRET": "leaked-secret",
    "SPAPI_REFRESH_TOKEN": "Atzr|leaked",
    "SPAPI_ENDPOINT": "http://127.0.0.1:9",
    "SPAPI_MARKETPLACE_ID": "A1PA6795UKMFR9",
    "SPAPI_REGION": "FE",
    "SPAPI_REDIS_URL": "redis://127.0.0.1:9/0",
}


def test_no_spapi_setting_is_set_inside_a_test() -> None:
    settings = sorted(
        name
        for name in os.environ
        if name.startswith("SPAPI_") and name not in ("SPAPI_REQUIRE_SERVERS", "SPAPI_SOAK_CALLS")
    )
    assert settings == []
    assert all(variable.name not in os.environ for variable in ENVIRONMENT)
    # Nor in a process a test starts.
    child = subprocess.run(
        [sys.executable, "-c", "import os; print([k for k in os.environ if k in %r])" % [*LEAKED]],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout.strip() == "[]"
    # So ServicesClient() finds no credentials, rather than a shell's.
    with pytest.raises(ValueError, match="LWA credentials not found"):
        ServicesClient()


def test_a_test_sets_what_it_needs_with_monkeypatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPAPI_MARKETPLACE_ID", "A2EUQ1WTGCTBG2")
    client = ServicesClient(LwaCredentials("id", "secret", "Atzr|token"))
    assert client.marketplace_id == "A2EUQ1WTGCTBG2"


def test_a_developers_spapi_settings_do_not_reach_the_tests() -> None:
    """The test above, run by pytest in a shell where a developer exported settings."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"{Path(__file__)}::test_no_spapi_setting_is_set_inside_a_test",
         f"{Path(__file__)}::test_a_test_sets_what_it_needs_with_monkeypatch"],
        env={**env, **LEAKED},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
