"""Resume tokens: resuming from any change's token yields exactly the changes after it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spapi_services.feed import JobFeed

from .conftest import US, World, open_world, run, summary

Script = Callable[[World], None]


def spaced(world: World) -> None:
    """Changes at least two intervals apart, so any schedule of polls sees each one."""
    a, b, c = (j.service_job_id for j in world.jobs()[:3])
    t = world.timer
    t.at(2, world.touch(a, "HOLD"))
    t.at(14, world.create("NEW-1"))
    t.at(26, world.touch(b, "CANCELLED"))
    t.at(38, world.touch(a, "COMPLETED"))
    t.at(50, world.touch_only(a))  # not a change
    t.at(62, world.touch("NEW-1", "HOLD"))
    t.at(200, world.touch(c, "HOLD"))  # after the earlier changes left the window
    t.stop_after(260)


def burst(world: World) -> None:
    """25 jobs created at once: one poll, two pages of changes."""

    def create_many() -> None:
        for n in range(25):
            world.create(f"BURST-{n:02d}")()

    world.timer.at(2, create_many)
    world.timer.at(30, world.touch("BURST-03", "HOLD"))
    world.timer.stop_after(60)


async def whole_run(script: Script) -> list[tuple[str, str, str]]:
    async with open_world() as world:
        script(world)
        return world.summary(await run(world.client.service_jobs.changes()))


async def resumed_run(script: Script, stop_after: int) -> tuple[list, list, JobFeed]:
    """A feed broken off after ``stop_after`` changes, then one resumed from the last."""
    async with open_world() as world:
        script(world)
        first = await run(world.client.service_jobs.changes(), limit=stop_after)
        assert len(first) == stop_after
        second = world.client.service_jobs.changes(resume_token=first[-1].resume_token)
        rest = await run(second)
        return world.summary(first), world.summary(rest), second


@pytest.mark.parametrize("stop_after", [1, 2, 3, 4, 5])
async def test_resuming_from_any_change_yields_exactly_the_rest(stop_after: int) -> None:
    everything = await whole_run(spaced)
    assert len(everything) == 6

    first, rest, _ = await resumed_run(spaced, stop_after)

    assert first == everything[:stop_after]
    assert rest == everything[stop_after:]


@pytest.mark.parametrize("stop_after", [1, 19, 20, 21, 25])
async def test_resuming_inside_a_poll_of_several_pages(stop_after: int) -> None:
    everything = await whole_run(burst)
    assert len(everything) == 26
    assert [k for k, _, _ in everything] == ["created"] * 25 + ["updated"]

    first, rest, resumed = await resumed_run(burst, stop_after)

    assert first + rest == everything
    assert resumed.changes == 26 - stop_after


async def test_the_feeds_token_between_changes_resumes_after_its_quiet_polls(
    world: World,
) -> None:
    job = world.jobs()[0].service_job_id
    world.timer.at(2, world.touch(job, "HOLD"))
    world.timer.stop_after(300)
    feed = world.client.service_jobs.changes()
    (change,) = await run(feed)
    # Quiet polls moved the window on (past the change, which it forgot): the feed's own
    # token is further along.
    assert feed.resume_token != change.resume_token
    world.timer.at(5, world.touch(job, "COMPLETED"))
    world.timer.stop_after(20)

    from_feed = world.client.service_jobs.changes(resume_token=feed.resume_token)
    assert summary(await run(from_feed)) == [("updated", job, "COMPLETED")]
    # From the change's own token too: the HOLD it carried is not yielded again.
    world.timer.stop_after(20)
    from_change = world.client.service_jobs.changes(resume_token=change.resume_token)
    assert summary(await run(from_change)) == [("updated", job, "COMPLETED")]


async def test_a_token_names_its_marketplaces(world: World) -> None:
    world.timer.stop_after(1)
    feed = world.client.service_jobs.changes()
    await run(feed)

    resumed = world.client.service_jobs.changes(resume_token=feed.resume_token)
    assert resumed.marketplace_ids == (US,)
    same = world.client.service_jobs.changes(resume_token=feed.resume_token, marketplace_ids=[US])
    assert same.marketplace_ids == (US,)
    with pytest.raises(ValueError, match="marketplace_ids: the resume token is for"):
        world.client.service_jobs.changes(
            resume_token=feed.resume_token, marketplace_ids=["A1F83G8C2ARO7P"]
        )
