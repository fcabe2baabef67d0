"""``sync_jobs(on_change=...)``: each change handed over once it is stored, judged by the sink.

Every file sink is tried the same way against the emulator: the first sync reports every
job as created; after jobs change (and one is created) a later sync reports exactly those,
created or updated; a sync that finds nothing new reports nothing, even though its overlap
fetches the changed jobs again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spapi_services import ServicesClient
from spapi_services.emulator import ServicesEmulator
from spapi_services.feed import ChangeKind, JobChange, content_hash
from spapi_services.models import ServiceJob
from spapi_services.sync import (
    BuyerKey,
    ChangeSink,
    JsonlSink,
    PostgresSink,
    SqliteSink,
    sync_jobs,
)

from .conftest import SINCE, US
from .test_sync import ids_of, sync

Factory = Callable[..., Any]

SINKS: dict[str, Factory] = {
    "sqlite": lambda folder, **options: SqliteSink(folder / "jobs.sqlite", **options),
    "jsonl": lambda folder, **options: JsonlSink(folder / "jobs.jsonl", durable=False, **options),
}


class Collected:
    """An ``on_change`` that keeps what it is given."""

    def __init__(self) -> None:
        self.changes: list[JobChange] = []

    async def __call__(self, change: JobChange) -> None:
        self.changes.append(change)

    def by_id(self) -> dict[str, JobChange]:
        return {c.service_job_id: c for c in self.changes}


def move_some(emulator: ServicesEmulator) -> tuple[set[str], str]:
    """Three open jobs cancelled and one job created; their ids."""
    open_jobs = [
        j
        for j in emulator.store.find_jobs(marketplace_id=US)
        if j.status in ("PENDING_SCHEDULE", "NOT_SERVICED", "HOLD")
    ]
    moved = {j.service_job_id for j in open_jobs[:3]}
    for job_id in moved:
        emulator.store.set_job_status(job_id, "CANCELLED")
    new = emulator.store.new_job(marketplace_id=US).service_job_id
    return moved, new


@pytest.mark.parametrize("kind", list(SINKS))
async def test_each_change_is_handed_over_once_as_created_or_updated(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path, kind: str
) -> None:
    make = SINKS[kind]
    first = Collected()
    report = await sync(emulator, client, make(tmp_path), since=SINCE, on_change=first)
    assert {c.service_job_id for c in first.changes} == ids_of(emulator, US)
    assert len(first.changes) == report.changes == report.jobs == report.runs[0].changes
    assert {c.kind for c in first.changes} == {ChangeKind.CREATED}
    for change in first.changes:
        # The hash of the job as fetched: the change id a change feed gives it.
        assert change.content_hash == content_hash(change.job)
        assert change.change_id == f"{change.service_job_id}:{change.content_hash[:32]}"
        assert change.resume_token == ""

    moved, new = move_some(emulator)
    later = Collected()
    report = await sync(emulator, client, make(tmp_path), on_change=later)
    found = later.by_id()
    assert set(found) == moved | {new}
    assert len(later.changes) == report.changes == 4
    assert found[new].kind is ChangeKind.CREATED
    for job_id in moved:
        assert found[job_id].kind is ChangeKind.UPDATED
        assert found[job_id].job.service_job_status == "CANCELLED"
        assert found[job_id].content_hash == content_hash(found[job_id].job)

    # The overlap fetches the four again; unchanged, they are no change.
    again = Collected()
    report = await sync(emulator, client, make(tmp_path), on_change=again)
    assert report.jobs >= 4
    assert again.changes == []
    assert report.changes == 0


@pytest.mark.parametrize("kind", list(SINKS))
async def test_changes_are_counted_without_a_callback(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path, kind: str
) -> None:
    report = await sync(emulator, client, SINKS[kind](tmp_path), since=SINCE)
    assert report.changes == len(ids_of(emulator, US))
    move_some(emulator)
    report = await sync(emulator, client, SINKS[kind](tmp_path))
    assert report.changes == 4


@pytest.mark.parametrize("kind", list(SINKS))
async def test_the_callback_is_awaited_after_its_page_is_stored_and_its_error_stops_the_sync(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path, kind: str
) -> None:
    make = SINKS[kind]
    await sync(emulator, client, make(tmp_path), since=SINCE)
    moved, new = move_some(emulator)
    sink = make(tmp_path)
    stored_when_called: list[ServiceJob | None] = []

    async def refuse(change: JobChange) -> None:
        # The sink holds the change already (read back on the sink's own connection).
        stored_when_called.append(await sink.get(change.service_job_id))
        raise RuntimeError("the receiver is down")

    with pytest.raises(RuntimeError, match="the receiver is down"):
        await sync(emulator, client, sink, on_change=refuse)
    assert len(stored_when_called) == 1
    assert stored_when_called[0] is not None
    assert stored_when_called[0].service_job_id in moved | {new}

    # The page is stored: the rest of its changes are the sink's already, not reported
    # again (the documented at-most-once of on_change).
    after = Collected()
    await sync(emulator, client, make(tmp_path), on_change=after)
    assert after.changes == []
    async with make(tmp_path) as mirror:
        for job_id in moved:
            job = await mirror.get(job_id)
            assert job is not None
            assert job.service_job_status == "CANCELLED"


async def test_a_callback_that_is_not_async_is_refused_at_its_first_change(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    def plain(change: JobChange) -> None:
        return None

    with pytest.raises(TypeError, match="on_change: must be an async callable"):
        await sync(emulator, client, SINKS["sqlite"](tmp_path), since=SINCE, on_change=plain)


class CountsOnly:
    """A sink of the plain Sink protocol: it stores nothing it could compare with."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...


async def test_on_change_needs_a_sink_that_tells_changes_checked_before_anything_is_sent(
    emulator: ServicesEmulator, client: ServicesClient
) -> None:
    async def noted(change: JobChange) -> None: ...

    assert not isinstance(CountsOnly(), ChangeSink)
    with pytest.raises(TypeError, match=r"on_change: CountsOnly does not tell which jobs"):
        await sync_jobs(client, CountsOnly(), since=SINCE, on_change=noted)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"on_change: expected an async callable, got int"):
        await sync_jobs(client, SqliteSink(":memory:"), since=SINCE, on_change=3)  # type: ignore[arg-type]
    assert emulator.count("getServiceJobs") == 0
    for sink in (SqliteSink("x"), JsonlSink("x"), PostgresSink("postgresql://h/d", seller_id="A")):
        assert isinstance(sink, ChangeSink)


@pytest.mark.parametrize("kind", list(SINKS))
async def test_an_encrypted_mirror_judges_by_content_and_hands_over_the_job_decrypted(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path, kind: str
) -> None:
    key = BuyerKey.generate()

    def sink() -> Any:
        return SINKS[kind](tmp_path, buyer_key=key)

    first = Collected()
    await sync(emulator, client, sink(), since=SINCE, buyer_data="encrypt", on_change=first)
    with_buyer = [c for c in first.changes if c.job.buyer is not None and c.job.buyer.name]
    assert with_buyer
    for change in with_buyer:
        record = emulator.store.jobs[change.service_job_id].to_wire()
        assert change.job.buyer is not None
        assert change.job.buyer.name == record["buyer"]["name"]

    moved, new = move_some(emulator)
    later = Collected()
    await sync(emulator, client, sink(), buyer_data="encrypt", on_change=later)
    # Stored encrypted anew each time, yet only what changed is a change.
    assert set(later.by_id()) == moved | {new}


async def test_jsonl_reports_again_the_changes_of_a_page_whose_checkpoint_was_never_saved(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    path = tmp_path / "jobs.jsonl"
    await sync(emulator, client, JsonlSink(path, durable=False), since=SINCE)
    moved, new = move_some(emulator)

    class CrashBeforeCheckpoint(JsonlSink):
        def _save(self) -> None:
            if (self.path.with_name(self.path.name + ".hashes")).stat().st_size > self.indexed:
                raise OSError("power cut before the checkpoint")
            super()._save()

    crashing = CrashBeforeCheckpoint(path, durable=False)
    crashing.indexed = (tmp_path / "jobs.jsonl.hashes").stat().st_size  # type: ignore[attr-defined]
    lost = Collected()
    with pytest.raises(OSError, match="power cut"):
        await sync(emulator, client, crashing, on_change=lost)
    assert lost.changes == []  # the page never counted: nothing was handed over

    again = Collected()
    await sync(emulator, client, JsonlSink(path, durable=False), on_change=again)
    assert set(again.by_id()) == moved | {new}


async def test_a_mirror_without_the_buyers_data_keeps_no_hash_of_it(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    import sqlite3

    seen = Collected()
    await sync(emulator, client, SqliteSink(tmp_path / "m.sqlite"), since=SINCE,
               buyer_data="drop", on_change=seen)  # fmt: skip
    db = sqlite3.connect(tmp_path / "m.sqlite")
    try:
        kept = dict(db.execute("SELECT service_job_id, content_hash FROM service_jobs"))
    finally:
        db.close()
    with_buyer = [
        r for r in (emulator.store.jobs[i].to_wire() for i in kept) if "name" in r.get("buyer", {})
    ]
    assert with_buyer
    for record in with_buyer:
        job_id = record["serviceJobId"]
        assert kept[job_id] != content_hash(record)  # no oracle for the buyer's data
        assert seen.by_id()[job_id].content_hash == kept[job_id]

    # The buyer's data alone changed: the mirror keeps none of it, so it is no change;
    # anything else is.
    renamed = emulator.store.jobs[with_buyer[0]["serviceJobId"]]
    renamed.details["buyer"]["name"] = "Someone Else"
    emulator.store.touch_job(renamed)
    assert renamed.to_wire()["buyer"]["name"] == "Someone Else"
    moved, new = move_some(emulator)
    later = Collected()
    await sync(emulator, client, SqliteSink(tmp_path / "m.sqlite"), buyer_data="drop",
               on_change=later)  # fmt: skip
    assert set(later.by_id()) == moved | {new}
