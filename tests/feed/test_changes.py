"""client.service_jobs.changes() against the emulator, over real sockets, its store
changed while the feed runs: each change once, repeats and unchanged jobs never."""

from __future__ import annotations

from datetime import timedelta

from spapi_services.feed import DEFAULT_INTERVAL, DEFAULT_OVERLAP, MARGIN, ChangeKind

from .conftest import US, World, run, summary

LIST = "getServiceJobs"


def script(world: World) -> list[tuple[str, str, str]]:
    """Changes spread over five minutes (the windows overlap by two); the expected feed."""
    a, b = (j.service_job_id for j in world.jobs()[:2])
    t = world.timer
    t.at(3, world.touch(a, "HOLD"))
    t.at(4, world.touch(b, "CANCELLED"))  # two changes in one interval: both
    t.at(12, world.create("NEW-1"))
    t.at(40, world.touch_only(a))  # update time moves, content does not: not a change
    t.at(250, world.touch_only(b))  # ... even once the job has left the window
    t.at(61, world.touch(a, "NOT_FULFILLABLE"))  # a second change of the same job
    t.at(62, world.touch(a, "PAYMENT_DECLINED"))  # ... and a third before the next poll
    t.at(200, world.touch("NEW-1", "COMPLETED"))
    t.stop_after(300)
    return [
        ("updated", a, "HOLD"),
        ("updated", b, "CANCELLED"),
        ("created", "NEW-1", "NOT_SERVICED"),
        ("updated", a, "PAYMENT_DECLINED"),
        ("updated", "NEW-1", "COMPLETED"),
    ]


async def test_each_change_is_yielded_once_however_the_windows_overlap(world: World) -> None:
    expected = script(world)
    feed = world.client.service_jobs.changes()

    changes = await run(feed)

    assert sorted(world.summary(changes)) == sorted(expected)
    # The polls overlap: every change was read again and again, and yielded once.
    polls = world.emu.count(LIST, 200)
    assert polls == feed.polls == feed.requests
    assert polls >= 300 / DEFAULT_INTERVAL
    assert feed.changes == len(expected)
    assert feed.errors == 0
    # Every change was seen within one interval of being made.
    made = {("HOLD", 3), ("CANCELLED", 4), ("NOT_SERVICED", 12), ("PAYMENT_DECLINED", 62)}
    start = world.timer.utcnow() - timedelta(seconds=300)
    for change in changes:
        status = str(change.job.service_job_status)
        for name, second in made:
            if name == status:
                delay = change.seen_at - (start + timedelta(seconds=second))
                assert timedelta(0) <= delay <= timedelta(seconds=DEFAULT_INTERVAL)


async def test_a_job_never_seen_is_yielded_when_its_update_time_moves(world: World) -> None:
    # The feed cannot know what the job was before it saw it: a new update time is
    # all it has, and the job is yielded (updated: it was created before the window).
    job = world.jobs()[5]
    world.timer.at(2, world.touch_only(job.service_job_id))
    world.timer.stop_after(10)

    changes = await run(world.client.service_jobs.changes())

    assert summary(changes) == [("updated", job.service_job_id, job.status)]


async def test_polls_ask_for_the_overlapping_window_newest_first(world: World) -> None:
    world.timer.stop_after(DEFAULT_INTERVAL * 30)
    began = world.timer.utcnow()
    feed = world.client.service_jobs.changes()

    await run(feed)

    queries = [r.query for r in world.emu.requests if r.operation == LIST]
    assert len(queries) == 31
    assert {q["sortOrder"] for q in queries} == {"DESC"}
    assert {q["sortField"] for q in queries} == {"JOB_DATE"}
    starts = [q["lastUpdatedAfter"] for q in queries]
    assert starts == sorted(starts)  # never moves back
    # The first polls ask from the feed's start; later ones trail the poll's start by the
    # margin and the overlap, never more.
    assert starts[0] == began.strftime("%Y-%m-%dT%H:%M:%SZ")
    trail = MARGIN + DEFAULT_OVERLAP
    last_poll = began + timedelta(seconds=DEFAULT_INTERVAL * 29)
    assert starts[-1] == (last_poll - trail).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_created_or_updated_follows_the_window_the_job_was_found_in(
    world: World,
) -> None:
    old = world.jobs("NOT_SERVICED")[0]  # created weeks before ``since``
    since = world.timer.utcnow() - timedelta(hours=1)
    t = world.timer
    t.at(1, world.touch(old.service_job_id, "HOLD"))
    t.at(2, world.create("FRESH-1"))
    t.stop_after(20)

    changes = await run(world.client.service_jobs.changes(since=since))

    kinds = {world.named(c.service_job_id): c.kind for c in changes}
    assert kinds == {old.service_job_id: ChangeKind.UPDATED, "FRESH-1": ChangeKind.CREATED}
    assert kinds["FRESH-1"] == "created"  # compares as its string


async def test_a_job_changed_before_since_is_not_yielded_and_one_changed_after_is(
    world: World,
) -> None:
    first, second = world.jobs()[:2]
    world.store.set_job_status(first.service_job_id, "HOLD")  # before since
    world.timer.clock.advance(60)
    since = world.timer.utcnow()
    world.timer.clock.advance(1)
    world.store.set_job_status(second.service_job_id, "HOLD")
    world.timer.stop_after(10)

    changes = await run(world.client.service_jobs.changes(since=since))

    assert summary(changes) == [("updated", second.service_job_id, "HOLD")]


async def test_a_marketplace_list_watches_each_and_ignores_others(world: World) -> None:
    others = [j for j in world.store.jobs.values() if j.marketplace_id != US]
    assert others, "the seeded world has jobs in other marketplaces"
    other = others[0]
    us_job = world.jobs()[0]
    t = world.timer
    t.at(1, lambda: world.store.set_job_status(other.service_job_id, "HOLD"))
    t.at(2, world.touch(us_job.service_job_id, "HOLD"))
    t.stop_after(12)

    only_us = await run(world.client.service_jobs.changes())
    assert [c.job.service_job_id for c in only_us] == [us_job.service_job_id]


async def test_both_marketplaces_when_asked(world: World) -> None:
    others = [j for j in world.store.jobs.values() if j.marketplace_id != US]
    other = others[0]
    us_job = world.jobs()[0]
    t = world.timer
    t.at(1, lambda: world.store.set_job_status(other.service_job_id, "HOLD"))
    t.at(2, world.touch(us_job.service_job_id, "HOLD"))
    t.stop_after(12)

    feed = world.client.service_jobs.changes(marketplace_ids=[US, other.marketplace_id])
    both = await run(feed)

    assert {c.job.service_job_id for c in both} == {us_job.service_job_id, other.service_job_id}
    assert feed.marketplace_ids == (US, other.marketplace_id)
    assert feed.polls * 2 <= world.emu.count(LIST, 200)  # a request per marketplace a poll


async def test_a_catch_up_pages_through_every_job_updated_since(world: World) -> None:
    since = world.timer.utcnow() - timedelta(days=120)  # every seeded job
    for n in range(15):
        world.create(f"EXTRA-{n}")()
    world.timer.stop_after(1)
    expected = {j.service_job_id for j in world.jobs()}
    assert len(expected) > 20  # more than a page

    feed = world.client.service_jobs.changes(since=since)
    changes = await run(feed)

    assert sorted(c.job.service_job_id for c in changes) == sorted(expected)
    assert feed.requests == -(-len(expected) // 20)
    # Every one was created after ``since``, and none had been seen: all are new.
    assert {c.kind for c in changes} == {ChangeKind.CREATED}
