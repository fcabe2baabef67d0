"""Buyers' data in a synced mirror: protected in every file, read back, pruned, forgotten.

Every check of "not in the file" reads the raw bytes of every file of the mirror while
its connection is open (so SQLite's write-ahead log is there too) and looks for each
personal value in every form (see ``_mirror_scan``).  A check in ``keep`` mode first
shows that the same search finds the values when they are there.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from _mirror_scan import Personal, buyers_data, forms, leaks, mirror_files, personal_values

from spapi_services import ServicesClient, _serde
from spapi_services.emulator import ServicesEmulator
from spapi_services.emulator.store import JobRecord
from spapi_services.models.jobs import ServiceJob
from spapi_services.sync import (
    BuyerData,
    BuyerKey,
    BuyerKeyError,
    BuyerKeys,
    JsonlSink,
    SinkState,
    SqliteSink,
    SyncPlan,
    SyncReport,
    Window,
    last_activity,
    sync_jobs,
)
from spapi_services.sync._buyer import reveal_record
from spapi_services.sync._sink import ThreadedSink, job_record

from .conftest import SINCE, US

KEY = BuyerKey.generate()
NEW_KEY = BuyerKey.generate()

SinkMaker = Callable[..., ThreadedSink]
SINKS: dict[str, SinkMaker] = {
    "sqlite": lambda folder, **kw: SqliteSink(folder / "mirror.sqlite", **kw),
    "jsonl": lambda folder, **kw: JsonlSink(folder / "mirror.jsonl", durable=False, **kw),
}


@pytest.fixture(params=sorted(SINKS))
def make_sink(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., ThreadedSink]:
    """A sink of each kind in a folder of the test's own."""
    maker = SINKS[request.param]
    return lambda **kw: maker(tmp_path, **kw)


def main_file(sink: ThreadedSink) -> Path:
    path: Path = sink.path  # type: ignore[attr-defined]
    return path


async def sync(
    emu: ServicesEmulator, client: ServicesClient, sink: ThreadedSink, **options: Any
) -> SyncReport:
    return await sync_jobs(client, sink, since=SINCE, until=emu.clock.now(), **options)


def wire(emu: ServicesEmulator) -> list[dict[str, Any]]:
    """The US jobs as the API sends them."""
    return [json.loads(j.fragment()) for j in emu.store.find_jobs(marketplace_id=US)]


def us_personal(emu: ServicesEmulator) -> list[Personal]:
    found = buyers_data(wire(emu))
    assert len(found) > 200  # names, phones, addresses, vehicles of ~75 jobs
    return found


def own_values(emu: ServicesEmulator, job_ids: set[str]) -> list[Personal]:
    """The personal values of these US jobs that no other US job holds.

    A city or a state other buyers share stays in the mirror as theirs: it is not looked
    for when these jobs' data should be gone.
    """
    records = wire(emu)
    elsewhere = {v for r in records if r["serviceJobId"] not in job_ids for v in personal_values(r)}
    return [
        v
        for v in us_personal(emu)
        if v not in elsewhere
        and any(v in set(personal_values(r)) for r in records if r["serviceJobId"] in job_ids)
    ]


def in_files(sink: ThreadedSink, values: list[Personal]) -> list[str]:
    files = mirror_files(main_file(sink))
    assert files
    return leaks(files, values)


def share_a_buyer(emu: ServicesEmulator) -> tuple[str, list[JobRecord]]:
    """Two US in-home jobs made one buyer's (as a returning customer's would be)."""
    homes = [
        j
        for j in emu.store.find_jobs(marketplace_id=US)
        if "address" in j.details["serviceLocation"]
        and j.details["serviceLocation"]["serviceLocationType"] == "IN_HOME"
    ]
    first, second = homes[0], homes[1]
    second.details["buyer"] = dict(first.details["buyer"])
    second.details["serviceLocation"] = json.loads(json.dumps(first.details["serviceLocation"]))
    second.invalidate()
    return first.details["buyer"]["buyerId"], [first, second]


# --- protected at rest -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["encrypt", "hash", "drop"])
async def test_no_personal_value_reaches_the_files_in_any_form(
    emulator: ServicesEmulator,
    client: ServicesClient,
    make_sink: SinkMaker,
    mode: BuyerData,
) -> None:
    values = us_personal(emulator)
    async with make_sink(buyer_key=KEY) as sink:
        report = await sync(emulator, client, sink, buyer_data=mode)
        assert report.jobs == len(emulator.store.find_jobs(marketplace_id=US))
        assert in_files(sink, values) == []
        jobs = {j.service_job_id: j async for j in sink.iter_jobs()}

    assert in_files(sink, values) == []  # and after closing
    records = {r["serviceJobId"]: r for r in wire(emulator)}
    assert set(jobs) == set(records)
    for job_id, job in jobs.items():
        read = job_record(job)
        if mode == "encrypt":  # decrypted with the key: exactly what the API sent
            assert read == job_record(_as_model(records[job_id]))
        elif mode == "drop":
            assert list(personal_values(read)) == []
        else:
            assert all(v.value.startswith("spapi:hmac:v1:") for v in personal_values(read))
        assert read["serviceJobStatus"] == records[job_id]["serviceJobStatus"]


async def test_kept_in_clear_the_search_finds_every_value(
    emulator: ServicesEmulator, client: ServicesClient, make_sink: SinkMaker
) -> None:
    values = us_personal(emulator)
    async with make_sink() as sink:
        await sync(emulator, client, sink)
        found = in_files(sink, values)
    assert len(found) >= len(values)  # each value at least once


async def test_hashed_buyer_ids_still_group_a_buyers_jobs(
    emulator: ServicesEmulator, client: ServicesClient, make_sink: SinkMaker
) -> None:
    buyer_id, theirs = share_a_buyer(emulator)
    async with make_sink(buyer_key=KEY) as sink:
        await sync(emulator, client, sink, buyer_data="hash")
        jobs = [j async for j in sink.iter_jobs()]
    pseudonym = {j.service_job_id: j.buyer.buyer_id for j in jobs if j.buyer}
    ours = {pseudonym[j.service_job_id] for j in theirs}
    assert len(ours) == 1
    assert buyer_id not in ours
    assert list(pseudonym.values()).count(ours.pop()) == 2


# --- forgetting a buyer -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["keep", "encrypt", "hash"])
async def test_forgetting_a_buyer_leaves_no_trace_and_keeps_their_jobs(
    emulator: ServicesEmulator,
    client: ServicesClient,
    make_sink: SinkMaker,
    mode: BuyerData,
) -> None:
    buyer_id, theirs = share_a_buyer(emulator)
    their_ids = {j.service_job_id for j in theirs}
    theirs_values = own_values(emulator, their_ids)
    others = own_values(
        emulator, {j.service_job_id for j in emulator.store.jobs.values()} - their_ids
    )
    assert len(theirs_values) >= 5

    async with make_sink(buyer_key=KEY) as sink:
        await sync(emulator, client, sink, buyer_data=mode)
        before = {j.service_job_id: j async for j in sink.iter_jobs()}
        if mode == "keep":
            assert in_files(sink, theirs_values)  # there before
        assert await sink.forget_buyer(buyer_id) == 2
        assert in_files(sink, theirs_values) == []
        if mode == "keep":
            assert len(in_files(sink, others)) >= len(others)  # the others are untouched
        after = {j.service_job_id: j async for j in sink.iter_jobs()}

    assert set(after) == set(before)
    for job_id in their_ids:
        job, was = after[job_id], before[job_id]
        assert job.buyer is not None
        assert job.buyer.buyer_id is None
        assert job.buyer.name is None
        assert job.buyer.is_prime_member == was.buyer.is_prime_member  # type: ignore[union-attr]
        assert job.service_location is not None
        assert job.service_location.address is None
        assert (job.service_job_status, job.appointments, job.payments, job.create_time) == (
            was.service_job_status,
            was.appointments,
            was.payments,
            was.create_time,
        )
    assert all(after[i] == before[i] for i in set(before) - their_ids)

    # The buyer stays forgotten: syncing everything again stores none of their data.
    async with make_sink(buyer_key=KEY) as sink:
        await sync(emulator, client, sink, buyer_data=mode, full=True)
        assert in_files(sink, theirs_values) == []
        again = await sink.get(theirs[0].service_job_id)
    assert again is not None
    assert again.buyer is not None
    assert again.buyer.name is None


async def test_a_buyer_stored_protected_cannot_be_found_without_the_key(
    emulator: ServicesEmulator, client: ServicesClient, make_sink: SinkMaker
) -> None:
    buyer_id, _ = share_a_buyer(emulator)
    async with make_sink(buyer_key=KEY) as sink:
        await sync(emulator, client, sink, buyer_data="encrypt")
    before = main_file(sink).read_bytes()

    with pytest.raises(BuyerKeyError, match=f"encrypted with key {KEY.key_id}; give that key"):
        await make_sink().forget_buyer(buyer_id)
    with pytest.raises(BuyerKeyError, match=KEY.key_id) as refused:
        await make_sink(buyer_key=NEW_KEY).forget_buyer(buyer_id)
    async with make_sink(buyer_key=KEY) as sink:
        theirs = [j async for j in sink.iter_jobs() if j.buyer and j.buyer.buyer_id == buyer_id]
    assert len(theirs) == 2  # nothing was erased
    if isinstance(sink, JsonlSink):
        assert main_file(sink).read_bytes() == before  # not a byte changed
    # With the key it goes through, though the refusal (and its traceback, which saw the
    # refused call's rows being read) is still held: that read left nothing open.
    assert refused.value.__traceback__ is not None
    assert await make_sink(buyer_key=KEY).forget_buyer(buyer_id) == 2


async def test_sqlite_without_secure_delete_would_keep_the_old_rows(tmp_path: Path) -> None:
    """What the mirror's secure_delete and VACUUM are for: a plain SQLite file keeps a
    deleted row's text in its free pages, where the scan finds it."""
    path = tmp_path / "plain.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA secure_delete = OFF")
    db.execute("CREATE TABLE t (x TEXT)")
    db.executemany(
        "INSERT INTO t VALUES (?)", [(f'{{"name":"Erin Vance {i}"}}',) for i in range(50)]
    )
    db.commit()
    db.execute("DELETE FROM t")
    db.commit()
    db.close()
    assert leaks([path], [Personal("name", "Erin Vance 7")]) == ["plain.sqlite: name"]


# --- retention ---------------------------------------------------------------------------------


async def test_prune_removes_closed_jobs_past_the_cutoff_and_every_copy_of_them(
    emulator: ServicesEmulator, client: ServicesClient, make_sink: SinkMaker
) -> None:
    records = {r["serviceJobId"]: r for r in wire(emulator)}
    now = emulator.clock.now()
    cutoff = now - timedelta(days=30)
    closed = {"COMPLETED", "CANCELLED", "NOT_FULFILLABLE"}
    doomed = {
        job_id
        for job_id, r in records.items()
        if r["serviceJobStatus"] in closed and (last_activity(r) or now) < cutoff
    }
    assert 5 < len(doomed) < len(records) - 5
    doomed_values = own_values(emulator, doomed)
    assert len(doomed_values) > 20

    async with make_sink() as sink:
        await sync(emulator, client, sink)
        assert in_files(sink, doomed_values)
        removed = await sink.prune(timedelta(days=30), now=now)
        assert removed == len(doomed)
        left = {j.service_job_id async for j in sink.iter_jobs()}
        assert in_files(sink, doomed_values) == []
    assert left == set(records) - doomed
    # Again: nothing more is due.
    assert await make_sink().prune(timedelta(days=30), now=now) == 0
    # Only the statuses asked for.
    declined = {i for i, r in records.items() if r["serviceJobStatus"] == "PAYMENT_DECLINED"}
    assert declined
    gone = await make_sink().prune(timedelta(0), statuses=["PAYMENT_DECLINED"], now=now)
    assert gone == len(declined)


async def test_prune_checks_its_arguments(tmp_path: Path) -> None:
    sink = SqliteSink(tmp_path / "m.sqlite")
    with pytest.raises(ValueError, match="older_than: must be a timedelta of zero or more"):
        await sink.prune(timedelta(days=-1))
    with pytest.raises(ValueError, match="older_than"):
        await sink.prune(90)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="statuses: expected a list"):
        await sink.prune(timedelta(days=1), statuses="COMPLETED")
    with pytest.raises(ValueError, match="buyer_id"):
        await sink.forget_buyer("")
    assert not (tmp_path / "m.sqlite").exists()  # refused before anything was opened


# --- rotation ----------------------------------------------------------------------------------


async def test_rewrite_encrypts_a_clear_mirror_then_rotates_its_key(
    emulator: ServicesEmulator, client: ServicesClient, make_sink: SinkMaker
) -> None:
    values = us_personal(emulator)
    async with make_sink() as sink:
        await sync(emulator, client, sink)
        clear = {j.service_job_id: j async for j in sink.iter_jobs()}

    report = await make_sink(buyer_key=KEY).rewrite_buyer_data("encrypt")
    assert report.jobs == len(clear)
    assert report.stale_hashes == 0
    async with make_sink(buyer_key=KEY) as sink:
        assert in_files(sink, values) == []
        assert {j.service_job_id: j async for j in sink.iter_jobs()} == clear

    # Rotation: the new key first, the old one kept to read; then the new one alone.
    await make_sink(buyer_key=[NEW_KEY, KEY]).rewrite_buyer_data("encrypt")
    async with make_sink(buyer_key=NEW_KEY) as sink:
        assert {j.service_job_id: j async for j in sink.iter_jobs()} == clear
        assert in_files(sink, values) == []
    async with make_sink(buyer_key=KEY) as sink:
        with pytest.raises(BuyerKeyError, match=f"key {NEW_KEY.key_id}, which buyer_key"):
            [j async for j in sink.iter_jobs()]

    # Hashes made with a key that is not current are counted, not redone.
    await make_sink(buyer_key=[NEW_KEY]).rewrite_buyer_data("hash")
    stale = await make_sink(buyer_key=[KEY, NEW_KEY]).rewrite_buyer_data("hash")
    assert stale.stale_hashes == len(clear)
    assert stale.jobs == 0


# --- reading ------------------------------------------------------------------------------------


async def test_reading_needs_an_open_sink_and_get_opens_its_own(
    emulator: ServicesEmulator, client: ServicesClient, make_sink: SinkMaker
) -> None:
    sink = make_sink(buyer_key=KEY)
    async with sink:
        await sync(emulator, client, sink, buyer_data="encrypt")  # opens and closes inside
        assert len([j async for j in sink.iter_jobs()]) > 0  # still open here
    with pytest.raises(RuntimeError, match="open the sink first"):
        [j async for j in sink.iter_jobs()]
    job = emulator.store.find_jobs(marketplace_id=US)[0]
    read = await sink.get(job.service_job_id)
    assert read is not None
    assert read.buyer is not None
    assert read.buyer.name == job.details["buyer"]["name"]
    assert await sink.get("no-such-job") is None


def _as_model(record: dict[str, Any]) -> ServiceJob:
    return _serde.structure(record, ServiceJob)


def test_the_sinks_folder_holds_only_what_they_made(tmp_path: Path) -> None:
    # mirror_files picks every companion by name: check it on known names.
    for name in ("m.sqlite", "m.sqlite-wal", "m.sqlite-shm", "other.sqlite"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in mirror_files(tmp_path / "m.sqlite")] == [
        "m.sqlite",
        "m.sqlite-shm",
        "m.sqlite-wal",
    ]
    shutil.rmtree(tmp_path)


# --- any sink ------------------------------------------------------------------------------


class ListSink:
    """A sink of one's own, knowing nothing of buyer data: it keeps what it is handed."""

    def __init__(self) -> None:
        self.jobs: list[ServiceJob] = []
        self.states: dict[str, SinkState] = {}

    async def open(self) -> None:
        pass

    async def state(self, scope: str) -> SinkState:
        return self.states.get(scope, SinkState())

    async def begin(self, plan: SyncPlan) -> None:
        pass

    async def write_page(
        self, plan: SyncPlan, window: Window, jobs: Sequence[ServiceJob], next_token: str | None
    ) -> int:
        self.jobs.extend(jobs)
        return len(jobs)

    async def finish(self, plan: SyncPlan) -> None:
        self.states[plan.scope] = SinkState(checkpoint=plan.end)

    async def close(self) -> None:
        pass


@pytest.mark.parametrize("mode", ["encrypt", "hash", "drop"])
async def test_a_sink_of_ones_own_is_handed_protected_jobs(
    emulator: ServicesEmulator, client: ServicesClient, mode: BuyerData
) -> None:
    sink = ListSink()
    await sync(emulator, client, sink, buyer_data=mode, buyer_key=KEY)
    assert len(sink.jobs) == len(emulator.store.find_jobs(marketplace_id=US))
    text = "\n".join(_serde.dumps(job_record(job)) for job in sink.jobs)
    values = us_personal(emulator)
    assert [v for v in values if any(f in text.encode() for f in forms(v))] == []
    if mode == "encrypt":  # and what it stored reads back with the key
        records = {r["serviceJobId"]: r for r in wire(emulator)}
        for job in sink.jobs:
            revealed = reveal_record(job_record(job), BuyerKeys([KEY]))
            assert revealed == job_record(_as_model(records[str(job.service_job_id)]))


async def test_a_mode_that_needs_a_key_is_refused_before_anything_is_opened_or_sent(
    emulator: ServicesEmulator, client: ServicesClient, tmp_path: Path
) -> None:
    for mode in ("encrypt", "hash"):
        with pytest.raises(BuyerKeyError, match=f"buyer_key: required with buyer_data='{mode}'"):
            await sync(emulator, client, SqliteSink(tmp_path / "m.sqlite"), buyer_data=mode)
    with pytest.raises(ValueError, match="buyer_data: must be one of keep, encrypt, hash, drop"):
        await sync(emulator, client, SqliteSink(tmp_path / "m.sqlite"), buyer_data="mask")
    assert emulator.count() == 0
    assert not (tmp_path / "m.sqlite").exists()
