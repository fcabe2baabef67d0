"""Feeds started together spread their polls: each one's second poll comes at a share of
the interval drawn for it, and every poll after that a whole interval later.

Hundreds of sellers' feeds started at once would otherwise poll at the same moments,
each round of requests queued behind itself (``benchmarks/bench_feed.py`` at 1,000
sellers and 1 s).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from spapi_services.feed import _feed

from .conftest import World, run

LIST = "getServiceJobs"


@pytest.mark.parametrize("phase", [0.3, 0.0, 1.0])
async def test_the_second_poll_comes_at_the_feeds_phase_then_every_interval(
    world: World, monkeypatch: pytest.MonkeyPatch, phase: float
) -> None:
    monkeypatch.setattr(_feed, "_phase", lambda: phase)
    start = world.timer.clock.monotonic()
    world.timer.stop_after(35)

    feed = world.client.service_jobs.changes(interval=10)
    await run(feed)

    polled = [r.time - start for r in world.emu.requests if r.operation == LIST]
    second = 10 * phase
    assert polled == pytest.approx(
        [0, second, second + 10, second + 20, second + 30][: len(polled)]
    )
    assert len(polled) == (5 if second + 30 <= 35 else 4)


def test_each_feed_draws_its_own_phase_within_the_interval(
    whole_interval_phase: Callable[[], float],
) -> None:
    draws = [whole_interval_phase() for _ in range(200)]
    assert all(0.0 <= d < 1.0 for d in draws)
    # Spread over the interval, not bunched: every tenth of it has some.
    assert {int(d * 10) for d in draws} == set(range(10))


async def test_each_feed_draws_once_when_it_is_made(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws = iter([0.25, 0.75])
    monkeypatch.setattr(_feed, "_phase", lambda: next(draws))
    start = world.timer.clock.monotonic()
    world.timer.stop_after(25)

    first, second = (world.client.service_jobs.changes(interval=10) for _ in range(2))
    await run(first)
    polled = [r.time - start for r in world.emu.requests if r.operation == LIST]
    assert polled == pytest.approx([0, 2.5, 12.5, 22.5])
    assert second._phase == 0.75
