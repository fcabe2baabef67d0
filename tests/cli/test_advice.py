"""Advice a person can act on: the option they meant, support notes only where support can
help, and a missing extra named with the command that installs it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from spapi_services import _extras
from spapi_services.cli._failures import explain
from spapi_services.errors import BadRequestError, RateLimitError

from .conftest import Runner


def one_line(text: str) -> str:
    return " ".join(text.split())


# --- the option meant ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (
            ["sync", "--to", "x.sqlite"],
            "No such option: --to. Did you mean --db PATH (a SQLite file), --jsonl PATH "
            "(a JSON Lines file) or --until?",
        ),
        (["sync", "--output", "x.sqlite"], "Did you mean --db PATH (a SQLite file) or --jsonl"),
        (["jobs", "list", "--since", "1d", "--count", "3"], "Did you mean --limit?"),
        (["appointments", "add", "J", "--at", "now"], "Did you mean --start?"),
        (["fulfillment", "set", "J", "A", "--tech", "T1"], "Did you mean --technician?"),
        (["documents", "upload", "x.png", "--mime", "image/png"], "Did you mean --content-type?"),
        (
            ["jobs", "list", "--since", "1d", "--marketplace", "ATVPDKIKX0DER"],
            "No such option: --marketplace after `jobs list`: it is a global option, given "
            "before the command: cli --marketplace ... jobs list ...",  # cli: the runner's name
        ),
        (["jobs", "list", "--jsn"], "'--json'"),  # click's own guesses, when nothing fits
    ],
)
def test_an_unknown_option_gets_the_option_meant(run: Runner, args: list[str], said: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert said in one_line(result.stderr)


def test_the_advice_is_json_with_json(run: Runner) -> None:
    result = run("--json", "sync", "--to", "x.sqlite")
    (error,) = [json.loads(line)["error"] for line in result.stderr.splitlines()]
    assert error["kind"] == "usage"
    assert "Did you mean --db PATH" in error["message"]


# --- support notes where support can help --------------------------------------------------


@pytest.mark.parametrize(
    ("host", "amazon"),
    [
        ("sellingpartnerapi-na.amazon.com", True),
        ("sandbox.sellingpartnerapi-eu.amazon.com", True),
        ("127.0.0.1", False),
        ("proxy.example", False),
    ],
)
def test_quote_to_amazon_support_only_for_amazons_hosts(host: str, amazon: bool) -> None:
    error = BadRequestError(
        status_code=400, request_id="req-1", operation="getServiceJobs", host=host
    )
    failure = explain(error)
    assert failure is not None
    text = one_line(" ".join(failure.lines))
    assert "request id: req-1" in text
    assert ("(quote both to Amazon support)" in text) is amazon
    throttled = explain(RateLimitError(status_code=429, host=host))
    assert throttled is not None
    said = one_line(" ".join(throttled.lines))
    assert ("Amazon kept answering 429" in said) is amazon
    assert (f"the API ({host}) kept answering 429" in said) is not amazon


def test_against_the_emulator_no_support_note(run: Runner) -> None:
    result = run("jobs", "get", "99999999999999")
    assert result.exit_code == 1
    err = one_line(result.stderr)
    assert "request id:" in err
    assert "Amazon support" not in err


# --- a missing extra: one line, and a command that works from where the SDK was installed ---

_BLOCKING = textwrap.dedent(
    """
    import sys

    blocked = set(sys.argv[1].split(","))

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in blocked:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    sys.argv = ["spapi-services", *sys.argv[2:]]
    from spapi_services.cli import main

    main()
    """
)


def _without(tmp_path: Path, modules: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``spapi-services ARGS`` in a subprocess in which ``modules`` cannot be imported."""
    script = tmp_path / "without.py"
    script.write_text(_BLOCKING, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(script), modules, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("modules", "args", "extra", "what"),
    [
        ("click", ["--help"], "cli", "the spapi-services command"),
        ("rich", ["jobs", "list"], "cli", "the spapi-services command"),
        ("taskiq,taskiq_redis,asyncpg", ["fleet", "demo"], "fleet", "spapi-services fleet demo"),
        ("asyncpg", ["fleet", "status"], "fleet", "spapi-services fleet status"),
    ],
)
def test_a_missing_extra_ends_in_one_line_with_the_install_command(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    modules: str,
    args: list[str],
    extra: str,
    what: str,
) -> None:
    done = _without(tmp_path, modules, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    monkeypatch.chdir(tmp_path)  # where the subprocess ran: the command is said from there
    assert done.stderr.splitlines() == [
        f"Error: {what} needs the {extra} extra, which is not installed: "
        + _extras.install_command(extra)
    ]
    assert " -m pip install " in done.stderr
    assert f"[{extra}]" in done.stderr


def test_the_install_command_follows_how_the_sdk_was_installed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clone = tmp_path / "spapi-services"
    clone.mkdir()
    monkeypatch.chdir(clone)
    cases = [
        (None, ("spapi-services[fleet]",)),
        ({"url": clone.as_uri(), "dir_info": {"editable": True}}, ("-e", ".[fleet]")),
        ({"url": clone.as_uri(), "dir_info": {}}, (".[fleet]",)),
        (
            {"url": (tmp_path / "dist" / "s.whl").as_uri(), "archive_info": {}},
            (f"{tmp_path / 'dist' / 's.whl'}[fleet]",),  # outside the directory: whole
        ),
        (
            {"url": "https://git.example/s.git", "vcs_info": {"vcs": "git"}},
            ("spapi-services[fleet] @ git+https://git.example/s.git",),
        ),
    ]
    for direct_url, expected in cases:
        monkeypatch.setattr(_extras, "_direct_url", lambda found=direct_url: found)
        assert _extras.requirement("fleet") == expected
    editable = {"url": clone.as_uri(), "dir_info": {"editable": True}}
    monkeypatch.setattr(_extras, "_direct_url", lambda: editable)
    assert _extras.install_command("fleet").endswith(" -m pip install -e '.[fleet]'")
    assert _extras.corrected('needs asyncpg: pip install "spapi-services[postgres]"') == (
        "needs asyncpg: " + _extras.install_command("postgres")
    )
