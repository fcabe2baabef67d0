"""The mirror's files: private from their first byte, rewritten safely, migrated in place.

Modes are checked under a permissive umask (000: what the process asks for is what it
gets) and the usual one (022), on every path that creates a file or a folder.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _mirror_scan import mode_of

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.sync import JsonlSink, SqliteSink, SyncProgress, sync_jobs
from spapi_services.sync import _jsonl as jsonl_module
from spapi_services.sync._files import replace_private

from .conftest import SINCE, US


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


class Boom(Exception):
    pass


def crash_after(pages: int) -> Any:
    def on_progress(p: SyncProgress) -> None:
        if p.pages >= pages:
            raise Boom

    return on_progress


async def sync(emu: ServicesEmulator, client: ServicesClient, sink: Any, **options: Any) -> Any:
    return await sync_jobs(client, sink, since=SINCE, until=emu.clock.now(), **options)


# --- modes -------------------------------------------------------------------------------------


async def test_sqlite_files_and_new_folders_are_private(
    umask: int, emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    folder = tmp_path / "new" / "mirrors"
    sink = SqliteSink(folder / "m.sqlite")
    async with sink:
        await sync(emulator, client, sink)
        names = {p.name: mode_of(p) for p in folder.iterdir()}
        # Open: the write-ahead log and its index are there, with the file's mode.
        assert names == {"m.sqlite": 0o600, "m.sqlite-wal": 0o600, "m.sqlite-shm": 0o600}
        await sink.forget_buyer("A0000000000000")  # VACUUM and a checkpoint make new pages
        await sink.prune(timedelta(days=1), now=emulator.clock.now())
        assert {p.name: mode_of(p) for p in folder.iterdir()} == names
    assert mode_of(folder) == mode_of(tmp_path / "new") == 0o700
    assert mode_of(folder / "m.sqlite") == 0o600


async def test_jsonl_files_and_new_folders_are_private(
    umask: int, emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    folder = tmp_path / "new" / "mirrors"
    sink = JsonlSink(folder / "m.jsonl")
    await sync(emulator, client, sink)
    expected = {"m.jsonl": 0o600, "m.jsonl.checkpoint.json": 0o600, "m.jsonl.hashes": 0o600}
    assert {p.name: mode_of(p) for p in folder.iterdir()} == expected
    # Rewritten whole: the new log and checkpoint are private too, and nothing is left over.
    assert await sink.prune(timedelta(days=1), now=emulator.clock.now()) > 0
    await sink.forget_buyer("A0000000000000")
    assert {p.name: mode_of(p) for p in folder.iterdir()} == expected
    assert mode_of(folder) == mode_of(tmp_path / "new") == 0o700


def test_an_atomic_replacement_is_private_even_over_a_stale_temporary_file(
    umask: int, tmp_path: Path
) -> None:
    target = tmp_path / "state.json"
    stale = tmp_path / "state.json.tmp"
    stale.write_text("left by a crash")
    stale.chmod(0o666)
    replace_private(target, b"{}", durable=True)
    assert mode_of(target) == 0o600
    assert target.read_bytes() == b"{}"
    assert not stale.exists()


@pytest.mark.parametrize("kind", ["sqlite", "jsonl"])
async def test_an_existing_shared_file_is_warned_about_once_and_left_as_it_is(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / f"shared.{kind}"
    sink: Any = SqliteSink(path) if kind == "sqlite" else JsonlSink(path)
    async with sink:
        pass
    path.chmod(0o644)
    caplog.set_level(logging.WARNING, logger="spapi_services.sync")
    for _ in range(3):
        async with SqliteSink(path) if kind == "sqlite" else JsonlSink(path):
            pass
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert str(path) in message
    assert "0644" in message
    assert "chmod 600" in message
    assert "\n" not in message
    assert mode_of(path) == 0o644  # the user's choice, not silently changed


# --- JSON Lines rewrites ------------------------------------------------------------------------


async def test_a_rewrite_stopped_before_the_new_log_replaced_the_old_is_undone(
    emulator: ServicesEmulator,
    client: ServicesClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "m.jsonl"
    await sync(emulator, client, JsonlSink(path))
    before = path.read_bytes()
    buyer = emulator.store.find_jobs(marketplace_id=US)[0].details["buyer"]

    real_replace = os.replace

    def power_cut(src: Any, dst: Any) -> None:
        if Path(dst) == path:
            raise OSError("power cut")
        real_replace(src, dst)

    monkeypatch.setattr(jsonl_module.os, "replace", power_cut)
    with pytest.raises(OSError, match="power cut"):
        await JsonlSink(path).forget_buyer(buyer["buyerId"])
    monkeypatch.undo()
    assert "rewrite" in json.loads((tmp_path / "m.jsonl.checkpoint.json").read_text())
    assert (tmp_path / "m.jsonl.rewrite").exists()

    async with JsonlSink(path) as sink:  # opening undoes it: the old log is whole
        assert not (tmp_path / "m.jsonl.rewrite").exists()
        assert path.read_bytes() == before
        assert await sink.forget_buyer(buyer["buyerId"]) == 1
    assert buyer["name"].encode() not in path.read_bytes() or _shared_name(emulator, buyer)


async def test_a_rewrite_stopped_after_the_new_log_replaced_the_old_is_finished(
    emulator: ServicesEmulator,
    client: ServicesClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "m.jsonl"
    await sync(emulator, client, JsonlSink(path))
    size = path.stat().st_size

    def power_cut(self: JsonlSink) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(JsonlSink, "_finish_rewrite", power_cut)
    with pytest.raises(OSError, match="power cut"):
        await JsonlSink(path).prune(timedelta(days=30), now=emulator.clock.now())
    monkeypatch.undo()
    assert path.stat().st_size < size  # the pruned log is in place...
    checkpoint = json.loads((tmp_path / "m.jsonl.checkpoint.json").read_text())
    assert checkpoint["committed_bytes"] == size  # ...but the checkpoint still counts the old

    async with JsonlSink(path) as sink:  # opening finishes the rewrite
        kept = [j async for j in sink.iter_jobs()]
    checkpoint = json.loads((tmp_path / "m.jsonl.checkpoint.json").read_text())
    assert checkpoint["committed_bytes"] == path.stat().st_size
    assert "rewrite" not in checkpoint
    assert 0 < len(kept) < len(emulator.store.find_jobs(marketplace_id=US))
    assert await JsonlSink(path).prune(timedelta(days=30), now=emulator.clock.now()) == 0


@pytest.mark.emulator(jobs=500)
async def test_a_rewrite_between_an_interrupted_sync_and_its_resumption_loses_nothing(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    path = tmp_path / "m.jsonl"
    await sync(emulator, client, JsonlSink(path))
    us = {j.service_job_id for j in emulator.store.find_jobs(marketplace_id=US)}
    with pytest.raises(Boom):
        await sync(emulator, client, JsonlSink(path), full=True, on_progress=crash_after(3))
    # While the run is unfinished, a buyer with a job on each side of where it began is
    # forgotten: lines before and after the run's start get shorter.
    job = emulator.store.find_jobs(marketplace_id=US)[0]
    assert await JsonlSink(path).forget_buyer(job.details["buyer"]["buyerId"]) == 1

    report = await sync(emulator, client, JsonlSink(path), full=True)
    assert report.resumed
    ids = [json.loads(line)["serviceJobId"] for line in path.read_text().splitlines()]
    # The first sync's line of each job, and the full run's: no job lost, none twice.
    assert sorted(ids) == sorted([*us, *us])
    checkpoint = json.loads((tmp_path / "m.jsonl.checkpoint.json").read_text())
    assert checkpoint["committed_bytes"] == path.stat().st_size
    forgotten = await JsonlSink(path).get(job.service_job_id)
    assert forgotten is not None
    assert forgotten.buyer is not None
    assert forgotten.buyer.buyer_id is None


# --- an older mirror ---------------------------------------------------------------------------


async def test_a_mirror_made_before_retention_is_migrated_in_place(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    path = tmp_path / "old.sqlite"
    await sync(emulator, client, SqliteSink(path))
    db = sqlite3.connect(path)
    try:
        expected = dict(db.execute("SELECT service_job_id, last_activity FROM service_jobs"))
        db.execute("DROP INDEX service_jobs_last_activity")
        db.execute("ALTER TABLE service_jobs DROP COLUMN last_activity")
        db.execute("DROP TABLE erased_buyers")
        db.execute("DROP TABLE mirror_meta")
    finally:
        db.close()
    assert sum(v is not None for v in expected.values()) == len(expected)

    removed = await SqliteSink(path).prune(timedelta(days=30), now=emulator.clock.now())
    assert removed > 0
    db = sqlite3.connect(path)
    try:
        migrated = dict(db.execute("SELECT service_job_id, last_activity FROM service_jobs"))
    finally:
        db.close()
    assert migrated == {k: v for k, v in expected.items() if k in migrated}
    assert len(migrated) == len(expected) - removed


def _shared_name(emu: ServicesEmulator, buyer: dict[str, Any]) -> bool:
    """Whether the buyer's name is also a technician's (the emulator draws both alike)."""
    return any(
        buyer["name"] in j.fragment()
        for j in emu.store.jobs.values()
        if j.details["buyer"] != buyer
    )
