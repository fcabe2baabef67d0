"""The campaign's own parts, checked on their own: a harness that cannot see a fault
would pass every fleet.

* the link proxy (``tests/_proxy.py``) forwards, holds everything while paused with its
  sockets open, delivers it on the resume, and closes a client's connection to a server
  that is down;
* the schedule is the seed's, and never puts two faults on one resource at once;
* each invariant finds a violation planted in otherwise clean data, and none in it;
* what the fleet did about a fault is read in its window, from the processes it hit.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from _proxy import Proxy

from ._campaign import Campaign
from ._faults import FAULTS, FaultEvent, FaultKind, draw_schedule
from ._invariants import checkpoint_not_ahead, every_job_once, no_job_differs, stale_moments
from ._reactions import ProbeAnswer, reactions, read_logs, world_reactions
from ._workload import Version, Versions
from ._world import Settings, tasks_never_ended

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- the proxy ------------------------------------------------------------------------------


async def echo_server() -> tuple[asyncio.Server, int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def closed(server: asyncio.Server, link: Proxy, writer: asyncio.StreamWriter) -> None:
    writer.close()
    await link.aclose()
    await asyncio.sleep(0.1)  # the echo's end of the connection sees the close
    server.close()
    await server.wait_closed()


async def test_a_paused_link_holds_the_bytes_with_its_socket_open_and_delivers_them_on_resume() -> (
    None
):
    server, port = await echo_server()
    link = await Proxy(port).start()
    reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
    try:
        writer.write(b"ping")
        assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
        link.pause()
        writer.write(b"held")
        await writer.drain()
        read = asyncio.ensure_future(reader.readexactly(4))
        done, _ = await asyncio.wait([read], timeout=0.5)
        assert not done  # nothing comes back, and nothing is closed
        assert not reader.at_eof()
        link.resume()
        assert await asyncio.wait_for(read, 5) == b"held"
    finally:
        await closed(server, link, writer)


async def test_a_link_to_a_server_that_is_down_closes_the_clients_connection() -> None:
    server, port = await echo_server()
    server.close()
    await server.wait_closed()
    link = await Proxy(port).start()
    reader, writer = await asyncio.open_connection("127.0.0.1", link.port)
    try:
        assert await asyncio.wait_for(reader.read(10), 5) == b""
    finally:
        writer.close()
        await link.aclose()
        await asyncio.sleep(0.1)


# --- the schedule ---------------------------------------------------------------------------


def test_a_seed_gives_one_schedule_and_no_resource_takes_two_faults_at_once() -> None:
    def draw(seed: int) -> list[tuple[float, str, float, str]]:
        events = draw_schedule(
            random.Random(seed), count=40, span=120.0, lease=2.5, slots=["w1", "w2", "w3"]
        )
        return [(e.at, e.kind.name, e.duration, e.target) for e in events]

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)
    events = draw_schedule(
        random.Random(5), count=40, span=120.0, lease=2.5, slots=["w1", "w2", "w3"]
    )
    assert {e.kind.name for e in events} == {k.name for k in FAULTS}
    for first in events:
        for second in events:
            if first is second or first.target != second.target:
                continue
            assert first.at + first.duration <= second.at or second.at + second.duration <= (
                first.at
            )


# --- the invariants -------------------------------------------------------------------------


def world() -> Versions:
    """Seller S00 with two US jobs; job A changed once, at t=10 s."""
    versions = Versions()
    for job_id, statuses in (("A", ["HOLD", "CANCELLED"]), ("B", ["COMPLETED"])):
        key = ("S00", job_id)
        versions.jobs[key] = [
            Version(at(10.0 * i), {"serviceJobId": job_id, "serviceJobStatus": status})
            for i, status in enumerate(statuses)
        ]
        versions.marketplace[key] = "US"
    return versions


def record(job_id: str, status: str) -> dict[str, Any]:
    return {"serviceJobId": job_id, "serviceJobStatus": status}


async def test_a_fault_waits_until_the_last_one_on_its_resource_has_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Seed 9 of the long run: Redis, slow to come back under load, was still starting
    # when the next Redis fault stopped it.
    campaign = Campaign(9, Settings(), tmp_path)
    monkeypatch.setattr(campaign, "_answers", Counter)  # no emulator here
    moments: list[tuple[str, float]] = []

    async def start(_: Campaign, event: FaultEvent) -> str:
        moments.append(("start", event.at))
        return ""

    async def slow_end(_: Campaign, event: FaultEvent) -> str:
        moments.append(("ending", event.at))
        await asyncio.sleep(0.3)
        moments.append(("ended", event.at))
        return ""

    kind = FaultKind("slow", "redis", 1, (0.1, 0.1), False, start, slow_end, "ends late")
    began = time.monotonic()
    await asyncio.gather(
        campaign._fire(FaultEvent(0.0, kind, 0.05, "redis"), began),
        campaign._fire(FaultEvent(0.1, kind, 0.05, "redis"), began),
    )
    assert moments == [
        ("start", 0.0), ("ending", 0.0), ("ended", 0.0),
        ("start", 0.1), ("ending", 0.1), ("ended", 0.1),
    ]  # fmt: skip
    assert campaign.faults["slow"] == 2


def test_the_final_state_checks_find_missing_extra_stale_and_ahead() -> None:
    versions = world()
    clean = {("S00", "A"): [record("A", "CANCELLED")], ("S00", "B"): [record("B", "COMPLETED")]}
    marks = {("S00", "US"): at(20)}
    assert every_job_once(clean, versions) == []
    assert no_job_differs(clean, versions) == []
    assert checkpoint_not_ahead(clean, marks, versions, ["S00"], ["US"]) == []

    planted = {("S00", "A"): [record("A", "HOLD")], ("S00", "X"): [record("X", "HOLD")]}
    assert {f.subject for f in every_job_once(planted, versions)} == {"S00/B", "S00/X"}
    assert [f.subject for f in no_job_differs(planted, versions)] == ["S00/A"]
    ahead = checkpoint_not_ahead(planted, marks, versions, ["S00"], ["US", "CA"])
    assert {f.subject for f in ahead} == {"S00/A", "S00/B", "S00/CA"}
    # A checkpoint from before job A's change does not claim its new version.
    earlier = checkpoint_not_ahead(planted, {("S00", "US"): at(5)}, versions, ["S00"], ["US"])
    assert [f.subject for f in earlier] == ["S00/B"]


def audit(
    row_id: int, seconds: float, table: str, item: str, *, status: str = "", mark: float = 0
) -> dict[str, Any]:
    return {
        "id": row_id,
        "at": at(seconds),
        "tbl": table,
        "op": "UPDATE",
        "seller_id": "S00",
        "item": item,
        "job": json.dumps(record(item, status)) if table == "job" else None,
        "synced_until": at(mark) if table == "checkpoint" else None,
        "writer": "worker-w1",
    }


def test_the_audit_replay_finds_a_stale_write_after_the_checkpoint_and_nothing_else() -> None:
    versions = world()
    clean = [
        audit(1, 1, "job", "A", status="HOLD"),
        audit(2, 1, "job", "B", status="COMPLETED"),
        audit(3, 2, "checkpoint", "US", mark=1.5),
        # A changes at t=10; a run from t=15 stores it, then moves the checkpoint.
        audit(4, 16, "job", "A", status="CANCELLED"),
        audit(5, 17, "checkpoint", "US", mark=15),
    ]
    assert stale_moments(clean, versions) == []
    # A paused holder wakes up and writes the copy of A it fetched before the change.
    zombie = [*clean, audit(6, 18, "job", "A", status="HOLD")]
    found = stale_moments(zombie, versions)
    assert [f.subject for f in found] == ["S00/A"]
    assert "worker-w1 wrote version 0" in found[0].detail
    # A checkpoint moved past A's change without A's new version stored.
    ahead = [*clean[:3], audit(5, 17, "checkpoint", "US", mark=15)]
    assert [f.subject for f in stale_moments(ahead, versions)] == ["S00/A"]


# --- what the fleet did ---------------------------------------------------------------------


def test_reactions_are_read_in_the_faults_window_from_the_processes_it_hit(
    tmp_path: Path,
) -> None:
    start = datetime(2026, 6, 1, 12, 0, 0).timestamp()  # local time, as the logs stamp it

    def log(role: str, *lines: tuple[float, str]) -> tuple[str, Path]:
        path = tmp_path / f"{role}.log"
        stamped = [
            f"[{datetime.fromtimestamp(start + t):%Y-%m-%d %H:%M:%S},{int(t * 1000) % 1000:03d}]"
            f"[spapi_services.fleet][WARNING][worker-0] {text}"
            for t, text in lines
        ]
        path.write_text("\n".join(["fleet worker: a banner without a stamp", *stamped]) + "\n")
        return role, path

    lines = read_logs(
        [
            log(
                "w1",
                (
                    10.5,
                    "seller S01: lost its sync lock (not renewed within 2s of the last renewal)",
                ),
                (11.0, "seller S01: this sync holds fencing token 4, but token 5 was issued since"),
                (12.0, "seller S04: synced, 30 jobs in 4.9 s"),
                (40.0, "seller S02: lost its sync lock (not renewed within 2s ...)"),  # too late
            ),
            log(
                "w2",
                (9.0, "seller S03: lost its sync lock (not renewed within 2s ...)"),  # not hit
                (14.0, "taking over task 1-0 from a worker that went quiet"),
                (15.0, "ATVPDKIKX0DER: 2 jobs left window 1 while it was paged; paging it again"),
            ),
        ],
        start,
    )
    assert [round(line.t, 1) for line in lines] == [10.5, 11.0, 12.0, 40.0, 9.0, 14.0, 15.0]

    def seen(target: str, kind_target: str, **more: Any) -> dict[str, int]:
        found = reactions(
            target=target,
            kind_target=kind_target,
            start=8.0,
            end=12.0,
            grace=7.0,
            lines=lines,
            answers=more.get("answers", Counter()),
            probe=more.get("probe", []),
        )
        return dict(found)

    assert seen("w1", "worker") == {
        "a sync stopped itself, its lease not renewed in time": 1,
        "a write refused by the fencing token (FencedOut), the sync stopped": 1,
        "another worker took over the quiet worker's task": 1,
        "a sync of the worker finished": 1,
    }
    # A server's fault is every process's: both leases lost in its window count.
    redis = seen("redis", "redis")
    assert redis["a sync stopped itself, its lease not renewed in time"] == 2
    assert "a sync of the worker finished" not in redis
    # A 503 storm is answered by retries, not by the leases lost in its window.
    api = seen("api", "api", answers=Counter({429: 7, 200: 3}))
    assert api == {"the API answered 429": 7, "the API answered 200": 3}
    assert world_reactions(lines) == {"jobs left a window while it was paged: paged again": 1}
    probe = [ProbeAnswer(9.0, 0.2, True), ProbeAnswer(11.0, 0.1, False), ProbeAnswer(30, 0.1, True)]
    assert seen("status", "status", probe=probe) == {
        "status answered 'Redis unreachable' from PostgreSQL alone": 1,
        "status answered in full": 1,
    }


def test_a_stopped_worker_left_waiting_for_a_task_is_found(tmp_path: Path) -> None:
    log = tmp_path / "w1.log"
    clean = "[...] Stopping prefetching messages...\n[...] Shutting down the broker.\n"
    log.write_text(clean)
    assert tasks_never_ended(log) == 0
    log.write_text(
        "[...] Waiting for 2 running tasks to complete...\n[...] No more tasks to wait for."
        " Shutting down.\n"
    )
    assert tasks_never_ended(log) == 0
    log.write_text(
        "[...] Stopping prefetching messages...\n[...] Waiting for 1 running tasks to complete...\n"
    )
    assert tasks_never_ended(log) == 1
