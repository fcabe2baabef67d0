"""``spapi-services emulator``'s paging and activity options: ``--page-tokens``,
``--page-token-ttl`` and ``--activity``, the same in both command lines, refused as usage
errors naming the option, and said in the banner."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest

from spapi_services import ServicesClient
from spapi_services.cli import _emulator as emulator_command
from spapi_services.emulator import Activity, ServicesEmulator
from spapi_services.emulator.__main__ import (
    SETTINGS,
    _announce,
    _emulator,
    build_parser,
    read_activity,
    read_page_token_ttl,
)

from .conftest import US, Runner

NEW = ("--page-tokens", "--page-token-ttl", "--activity")


def one_line(text: str) -> str:
    return " ".join(text.split())


def from_click(run: Runner, monkeypatch: pytest.MonkeyPatch, *args: str) -> argparse.Namespace:
    """What ``spapi-services emulator ARGS`` hands to ``serve`` (which is not run)."""
    seen: list[argparse.Namespace] = []
    monkeypatch.setattr(emulator_command, "serve", lambda values: seen.append(values) or 0)
    result = run("emulator", *args)
    assert result.exit_code == 0, result.stderr
    (values,) = seen
    return values


def test_both_command_lines_build_the_emulator_the_options_describe(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [
        "--page-tokens",
        "offset",
        "--page-token-ttl",
        "30s",
        "--activity",
        "created=6,updated=30",
    ]
    for values in (build_parser().parse_args(args), from_click(run, monkeypatch, *args)):
        emu = _emulator(values)
        assert emu.context.paging == "offset"
        assert emu.context.page_token_ttl == 30.0
        assert emu.activity == Activity(created_per_minute=6, updated_per_minute=30)
    # Either part of --activity may be left out; the TTL in milliseconds is the same.
    args = ["--page-token-ttl", "30000", "--activity", "updated=120"]
    for values in (build_parser().parse_args(args), from_click(run, monkeypatch, *args)):
        emu = _emulator(values)
        assert emu.context.page_token_ttl == 30.0
        assert emu.activity == Activity(updated_per_minute=120)


def test_by_default_keyset_tokens_that_never_expire_and_a_world_that_stands_still(
    run: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for values in (build_parser().parse_args([]), from_click(run, monkeypatch)):
        emu = _emulator(values)
        assert emu.context.paging == "keyset"
        assert emu.context.page_token_ttl is None
        assert emu.activity is None
    defaults = {s.flag: s.default for s in SETTINGS}
    assert [defaults[flag] for flag in NEW] == ["keyset", "never", "off"]


def test_the_help_shows_the_new_options_with_their_defaults_and_units(run: Runner) -> None:
    text = one_line(run("emulator", "--help").stdout)
    assert "--page-tokens [keyset|offset]" in text
    assert "[default: keyset]" in text
    assert "--page-token-ttl MS|never" in text
    assert "in ms or with a unit (30s)" in text
    assert "[default: never]" in text
    assert "--activity created=N,updated=N" in text
    assert "e.g. created=6,updated=30 (either part may be left out)" in text
    assert "[default: off]" in text
    plain = one_line(build_parser().format_help())
    for shown in ("{keyset,offset}", "(default: keyset)", "(default: never)", "(default: off)"):
        assert shown in plain, shown


_ARGPARSE_CHOICE = "invalid choice: 'cursor' (choose from 'keyset', 'offset')"


@pytest.mark.parametrize(
    ("option", "value", "rule"),
    [
        ("--page-tokens", "cursor", "'cursor' is not one of 'keyset', 'offset'"),
        ("--page-token-ttl", "soon", "'soon' is not a duration: milliseconds as 250"),
        ("--page-token-ttl", "5-10", "'5-10': give one lifetime, not a range"),
        ("--page-token-ttl", "0", "'0': must be more than 0 (or never)"),
        ("--activity", "speed=3", "'speed=3' is not created=N or updated=N"),
        ("--activity", "created=x", "created=x is not a number"),
        ("--activity", "created=-1", "created: must be zero or more, got -1.0"),
        ("--activity", "created=0", "give created=N or updated=N (changes a minute)"),
        ("--activity", "created=1,created=2", "created is given twice"),
        ("--latency", "soon", "'soon' is not a duration"),
    ],
)
def test_a_bad_value_is_a_usage_error_naming_the_option_in_both_command_lines(
    run: Runner, capsys: pytest.CaptureFixture[str], option: str, value: str, rule: str
) -> None:
    result = run("emulator", option, value)
    assert result.exit_code == 2
    assert f"Error: Invalid value for '{option}': {rule}" in one_line(result.stderr)
    assert "Traceback" not in result.stderr
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([option, value])
    assert exited.value.code == 2
    # argparse words a choice its own way; every other rule is the same words.
    plain = _ARGPARSE_CHOICE if option == "--page-tokens" else rule
    assert f"error: argument {option}: {plain}" in one_line(capsys.readouterr().err)


def test_activity_on_a_static_emulator_is_refused_naming_both_options(
    run: Runner, tmp_path: Any
) -> None:
    model = tmp_path / "model.json"
    model.write_text("{}")
    result = run("emulator", "--static", str(model), "--activity", "created=6")
    assert result.exit_code == 2
    assert "--activity: a static emulator (--static) replays fixed cases" in result.stderr


@pytest.mark.parametrize(
    ("text", "seconds", "note"),
    [
        ("30s", 30.0, None),
        ("30000", 30.0, None),
        ("1500ms", 1.5, None),
        ("never", None, None),
        ("Never", None, None),
        # A bare number under a second is milliseconds, as written, and said so.
        ("500", 0.5, "--page-token-ttl 500: a page token expires 500 ms after it is issued"),
        # A fraction that looks like seconds is read as seconds, as every duration is.
        ("0.5", 0.5, "--page-token-ttl 0.5: read as seconds (500 ms)"),
    ],
)
def test_the_page_token_ttl_is_a_duration_like_the_others(
    text: str, seconds: float | None, note: str | None
) -> None:
    read = read_page_token_ttl(text)
    assert (read.base if read is not None else None) == seconds
    if note is None:
        assert read is None or read.note is None
    else:
        assert read is not None
        assert read.note is not None
        assert read.note.startswith(note)


def test_a_ttl_note_is_collected_for_the_start_up_messages() -> None:
    notes: list[str] = []
    _emulator(build_parser().parse_args(["--page-token-ttl", "500"]), notes)
    assert notes == [
        "--page-token-ttl 500: a page token expires 500 ms after it is issued; durations are "
        "milliseconds: for seconds write 500s"
    ]


def test_activity_off_reads_as_none_and_rates_as_activity() -> None:
    assert read_activity("off") is None
    assert read_activity(" created = 6 ") == Activity(created_per_minute=6)


# --- the banner ----------------------------------------------------------------------------


def test_the_banner_and_its_json_say_the_activity_and_how_tokens_page(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = ServicesEmulator(
        jobs=5,
        port=8080,
        page_tokens="offset",
        page_token_ttl=30,
        activity=Activity(created_per_minute=6, updated_per_minute=30),
    )
    _announce(emu, as_json=True)
    facts = json.loads(capsys.readouterr().out)
    assert facts["activity"] == {
        "created_per_minute": 6.0,
        "updated_per_minute": 30.0,
        "marketplace_id": None,
    }
    assert facts["page_tokens"] == "offset"
    assert facts["page_token_ttl"] == 30.0
    _announce(emu, as_json=False)
    text = capsys.readouterr().out
    assert "Activity on: 6 new jobs and 30 status moves a minute, in every seller's world." in text
    assert "Page tokens: offset (positions in the result set); they expire 30 s after" in text


def test_a_still_world_with_keyset_tokens_adds_nothing_to_the_banner(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = ServicesEmulator(jobs=5, port=8080)
    _announce(emu, as_json=True)
    facts = json.loads(capsys.readouterr().out)
    assert facts["activity"] is None
    assert facts["page_tokens"] == "keyset"
    assert facts["page_token_ttl"] is None
    _announce(emu, as_json=False)
    text = capsys.readouterr().out
    assert "Activity" not in text
    assert "Page tokens" not in text
    one = ServicesEmulator(jobs=5, port=8080, activity=Activity(updated_per_minute=1))
    _announce(one, as_json=False)
    assert "Activity on: 0 new jobs and 1 status move a minute" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"page_tokens": "offset"}, "offset (positions in the result set); they never expire."),
        ({"page_token_ttl": 0.5}, "keyset; they expire 500 ms after they are issued."),
        ({"page_token_ttl": 90}, "keyset; they expire 90 s after they are issued."),
    ],
)
def test_the_banner_says_how_tokens_page_when_not_the_default(
    capsys: pytest.CaptureFixture[str], options: dict[str, Any], said: str
) -> None:
    _announce(ServicesEmulator(jobs=5, port=8080, **options), as_json=False)
    assert f"Page tokens: {said}" in capsys.readouterr().out


# --- the emulator the command line builds pages as it says ----------------------------------


@pytest.mark.parametrize(("paging", "never_served"), [("keyset", 0), ("offset", 1)])
def test_the_emulator_from_the_command_line_pages_as_its_option_says(
    paging: str, never_served: int
) -> None:
    args = build_parser().parse_args(
        ["--port", "0", "--jobs", "40", "--no-limits", "--page-tokens", paging]
    )
    emu = _emulator(args)

    async def scenario() -> tuple[set[str], set[str]]:
        async with (
            emu,
            ServicesClient(
                emu.credentials, endpoint=emu.url, token_url=emu.token_url, marketplace_id=US
            ) as client,
        ):
            end = emu.clock.now() - timedelta(seconds=1)
            window = {
                "last_updated_after": end - timedelta(days=100),
                "last_updated_before": end,
            }
            every = {j.service_job_id for j in emu.store.find_jobs(marketplace_id=US)}
            page = await client.service_jobs.list_page(page_size=5, **window)
            # A job of the first page changes: it leaves the window, and with offset
            # tokens every later page shifts back by one.
            moved = (page.jobs or ())[1].service_job_id
            emu.store.touch_job(moved, end + timedelta(minutes=1))
            seen = {j.service_job_id for j in page.jobs or ()}
            while page.next_page_token is not None:
                page = await client.service_jobs.list_page(
                    page_size=5, page_token=page.next_page_token, **window
                )
                seen |= {j.service_job_id for j in page.jobs or ()}
            return every, seen

    every, seen = asyncio.run(scenario())
    assert len(every) > 10
    assert len(every - seen) == never_served
