"""``spapi-services sync --buyer-data`` and ``spapi-services mirror``, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _mirror_scan import Personal, buyers_data, leaks, mirror_files, mode_of, personal_values

from spapi_services.emulator import ServicesEmulator
from spapi_services.models.jobs import ServiceJob
from spapi_services.sync import BuyerKey, BuyerKeys, SqliteSink, last_activity

from .conftest import US, Runner


@pytest.fixture
def umask000() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def us_records(emu: ServicesEmulator) -> list[dict[str, Any]]:
    return [json.loads(j.fragment()) for j in emu.store.find_jobs(marketplace_id=US)]


def stored(db: Path) -> dict[str, dict[str, Any]]:
    conn = sqlite3.connect(db)
    try:
        return {
            r[0]: json.loads(r[1])
            for r in conn.execute("SELECT service_job_id, job FROM service_jobs")
        }
    finally:
        conn.close()


def own_values(emu: ServicesEmulator, job_id: str) -> list[Personal]:
    """The job's personal values that no other US job holds (a city is often shared)."""
    records = us_records(emu)
    others = {v for r in records if r["serviceJobId"] != job_id for v in personal_values(r)}
    mine = {v for r in records if r["serviceJobId"] == job_id for v in personal_values(r)}
    return [v for v in buyers_data(records) if v in mine - others]


def one_line(text: str) -> str:
    return " ".join(text.split())


def test_an_encrypted_mirror_from_the_shell_and_back(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path, umask000: None
) -> None:
    db = tmp_path / "m.sqlite"
    key = BuyerKey.generate()
    keys = {"SPAPI_BUYER_KEYS": key.export()}
    result = run("sync", "--db", str(db), "--since", "95d", "--buyer-data", "encrypt", env=keys)
    assert result.exit_code == 0, result.stderr
    assert mode_of(db) == 0o600  # under umask 000
    values = buyers_data(us_records(emulator))
    assert len(values) > 100
    assert leaks(mirror_files(db), values) == []
    assert key.export() not in result.output

    # Stored again in clear with the key (what `rewrite` does for any mode change).
    back = run("--json", "mirror", "rewrite", "--db", str(db), "--buyer-data", "keep", env=keys)
    assert back.exit_code == 0, back.stderr
    assert json.loads(back.stdout)["jobs"] == len(stored(db))
    records = {r["serviceJobId"]: r for r in us_records(emulator)}
    for job_id, job in stored(db).items():
        assert job["buyer"] == records[job_id]["buyer"]


def test_a_mode_that_needs_a_key_is_refused_before_anything_is_made(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    db = tmp_path / "m.sqlite"
    before = emulator.count()
    result = run("sync", "--db", str(db), "--since", "95d", "--buyer-data", "hash")
    assert result.exit_code == 2
    assert (
        "--buyer-data hash needs a key: set SPAPI_BUYER_KEYS or give --buyer-key-file"
        in one_line(result.stderr)
    )
    assert not db.exists()
    assert emulator.count() == before
    bad = run(
        "sync",
        "--db",
        str(db),
        "--since",
        "95d",
        "--buyer-data",
        "encrypt",
        env={"SPAPI_BUYER_KEYS": "c2hvcnQ"},
    )
    assert bad.exit_code == 2
    assert "$SPAPI_BUYER_KEYS: must decode to 32 bytes, got 5" in one_line(bad.stderr)


def test_new_key_prints_a_key_or_puts_it_first_in_a_private_file(
    run: Runner, tmp_path: Path, umask000: None
) -> None:
    printed = run("--json", "mirror", "new-key")
    assert printed.exit_code == 0
    shown = json.loads(printed.stdout)
    assert BuyerKey.from_text(shown["key"]).key_id == shown["keyId"]

    key_file = tmp_path / "secrets" / "mirror.keys"
    key_file.parent.mkdir()
    first = run("--json", "mirror", "new-key", "--key-file", str(key_file))
    assert first.exit_code == 0, first.stderr
    assert mode_of(key_file) == 0o600
    second = run("--json", "mirror", "new-key", "--key-file", str(key_file))
    ring = BuyerKeys.from_text(key_file.read_text())
    assert [k.key_id for k in ring] == [
        json.loads(second.stdout)["keyId"],
        json.loads(first.stdout)["keyId"],
    ]
    assert json.loads(second.stdout)["keys"] == 2
    assert mode_of(key_file) == 0o600
    assert key_file.read_text().count("# key ") == 2
    assert ring.current.export() not in second.stdout  # the file's keys are not printed


def test_rotation_from_the_shell(run: Runner, emulator: ServicesEmulator, tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    keys = tmp_path / "mirror.keys"
    assert run("mirror", "new-key", "--key-file", str(keys)).exit_code == 0
    old = BuyerKeys.from_text(keys.read_text()).current
    result = run(
        "sync",
        "--db",
        str(db),
        "--since",
        "95d",
        "--buyer-data",
        "encrypt",
        "--buyer-key-file",
        str(keys),
    )
    assert result.exit_code == 0, result.stderr
    assert run("mirror", "new-key", "--key-file", str(keys)).exit_code == 0
    new = BuyerKeys.from_text(keys.read_text()).current

    rotated = run(
        "mirror",
        "rewrite",
        "--db",
        str(db),
        "--buyer-data",
        "encrypt",
        "--buyer-key-file",
        str(keys),
    )
    assert rotated.exit_code == 0, rotated.stderr
    assert f"(key {new.key_id})" in one_line(rotated.stdout)
    names = {json.dumps(j["buyer"]["name"]) for j in stored(db).values()}
    assert all(f"spapi:enc:v1:{new.key_id}:" in n for n in names)
    assert old.key_id != new.key_id


def test_prune_from_the_shell(run: Runner, emulator: ServicesEmulator, tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    assert run("sync", "--db", str(db), "--since", "95d").exit_code == 0
    count = len(stored(db))
    result = run("--json", "mirror", "prune", "--db", str(db), "--older-than", "30d")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert 0 < report["removed"] < count
    assert report["statuses"] == ["CANCELLED", "COMPLETED", "NOT_FULFILLABLE"]
    assert len(stored(db)) == count - report["removed"]
    cutoff = datetime.now(UTC) - timedelta(days=30, minutes=1)
    for job in stored(db).values():
        if job["serviceJobStatus"] in report["statuses"]:
            last = last_activity(job)
            assert last is not None
            assert last >= cutoff

    table = run("mirror", "prune", "--db", str(db), "--older-than", "30d", "--status", "hold")
    assert table.exit_code == 0
    assert "(HOLD) last active before" in one_line(table.stdout)
    bad = run("mirror", "prune", "--db", str(db), "--older-than", "3 months")
    assert bad.exit_code == 2
    assert "'3 months' is not a duration" in one_line(bad.stderr)


def test_forget_buyer_from_the_shell(
    run: Runner, emulator: ServicesEmulator, tmp_path: Path
) -> None:
    db = tmp_path / "m.sqlite"
    assert run("sync", "--db", str(db), "--since", "95d").exit_code == 0
    job = next(
        j
        for j in emulator.store.find_jobs(marketplace_id=US)
        if j.details["serviceLocation"]["serviceLocationType"] == "IN_HOME"
    )
    buyer_id = job.details["buyer"]["buyerId"]
    theirs = own_values(emulator, job.service_job_id)
    assert len(theirs) >= 3  # a street, a postal code, the id (invented phones repeat)
    assert leaks(mirror_files(db), theirs)

    result = run("mirror", "forget-buyer", buyer_id, "--db", str(db))
    assert result.exit_code == 0, result.stderr
    assert "Erased the buyer's data from 1 job" in one_line(result.stdout)
    assert buyer_id not in result.output
    row = stored(db)[job.service_job_id]
    assert "address" not in row["serviceLocation"]
    assert "buyerId" not in row.get("buyer", {})
    assert row["serviceJobStatus"] == job.status
    assert leaks(mirror_files(db), theirs) == []

    # An encrypted mirror: the key is needed to find the buyer, and the option is named.
    enc = tmp_path / "e.sqlite"
    keys = {"SPAPI_BUYER_KEYS": BuyerKey.generate().export()}
    assert (
        run(
            "sync", "--db", str(enc), "--since", "95d", "--buyer-data", "encrypt", env=keys
        ).exit_code
        == 0
    )
    refused = run("mirror", "forget-buyer", buyer_id, "--db", str(enc))
    assert refused.exit_code == 2
    assert "--buyer-key-file" in one_line(refused.stderr)
    assert buyer_id not in refused.stderr
    done = run("--json", "mirror", "forget-buyer", buyer_id, "--db", str(enc), env=keys)
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)["jobs"] == 1


def test_mirror_commands_need_a_mirror(run: Runner, tmp_path: Path) -> None:
    for args in (
        ["prune", "--older-than", "90d"],
        ["forget-buyer", "A1B2C3"],
        ["rewrite", "--buyer-data", "drop"],
    ):
        result = run("mirror", *args, "--db", str(tmp_path / "none.sqlite"))
        assert result.exit_code == 2, args
        assert "no mirror there" in one_line(result.stderr)
    assert list(tmp_path.iterdir()) == []
    both = run("mirror", "prune", "--older-than", "9d", "--db", "a", "--jsonl", "b")
    assert both.exit_code == 2
    assert "not both" in both.stderr


def test_the_default_mirror_is_private_under_any_umask(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask000: None
) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("sync", "--since", "95d", "-q").exit_code == 0
    assert mode_of(tmp_path / "service_jobs.sqlite") == 0o600
    path = tmp_path / "jobs.jsonl"
    assert run("sync", "--jsonl", str(path), "--since", "95d", "-q").exit_code == 0
    assert {p.name: mode_of(p) for p in mirror_files(path)} == {
        "jobs.jsonl": 0o600,
        "jobs.jsonl.checkpoint.json": 0o600,
        "jobs.jsonl.hashes": 0o600,
    }
    assert run("mirror", "prune", "--jsonl", str(path), "--older-than", "1d").exit_code == 0
    assert mode_of(path) == 0o600


def test_the_sdk_reads_what_the_shell_wrote(run: Runner, tmp_path: Path) -> None:
    db = tmp_path / "m.sqlite"
    key = BuyerKey.generate()
    env = {"SPAPI_BUYER_KEYS": key.export()}
    args = ("sync", "--db", str(db), "--since", "95d", "--buyer-data", "encrypt")
    assert run(*args, env=env).exit_code == 0

    async def read() -> list[ServiceJob]:
        async with SqliteSink(db, buyer_key=key) as mirror:
            return [j async for j in mirror.iter_jobs()]

    names = [j.buyer.name for j in asyncio.run(read()) if j.buyer is not None]
    assert names
    assert not any(name is None or name.startswith("spapi:") for name in names)
