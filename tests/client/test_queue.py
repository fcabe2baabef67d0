"""The request queue: places handed out first come, first served, and never lost."""

from __future__ import annotations

import asyncio

import pytest

from spapi_services._queue import Place, RequestQueue


async def _turns(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_places_go_in_the_order_asked_and_a_newcomer_never_overtakes() -> None:
    queue = RequestQueue(1)
    order: list[str] = []

    async def request(name: str, go: asyncio.Event) -> None:
        with Place(queue) as place:
            await place.take()
            order.append(name)
            await go.wait()

    gates = {name: asyncio.Event() for name in "abcd"}
    tasks = {}
    for name in "abc":
        tasks[name] = asyncio.create_task(request(name, gates[name]))
        await _turns()
    assert order == ["a"]
    assert queue.waiting == 2
    gates["a"].set()  # a's place goes to b, though it has not run yet...
    await asyncio.sleep(0)
    assert not Place(queue).take_now()  # ... so a newcomer finds none free
    tasks["d"] = asyncio.create_task(request("d", gates["d"]))
    for name in "bcd":
        await _turns()
        gates[name].set()
    await asyncio.gather(*tasks.values())
    assert order == ["a", "b", "c", "d"]
    assert queue.in_flight == 0


async def test_a_place_handed_to_a_cancelled_request_goes_to_the_next() -> None:
    queue = RequestQueue(1)
    holder = Place(queue)
    assert holder.take_now()
    handed, next_one = Place(queue), Place(queue)
    first = asyncio.create_task(handed.take())
    second = asyncio.create_task(next_one.take())
    await _turns()
    holder.give_back()  # handed to ``first``, whose task has not run yet
    first.cancel()  # and is cancelled before it does
    with pytest.raises(asyncio.CancelledError):
        await first
    await second
    assert not handed.held
    assert next_one.held
    assert queue.in_flight == 1
    next_one.give_back()
    assert queue.in_flight == 0
    assert queue.has_room()


async def test_a_request_cancelled_in_line_leaves_it() -> None:
    queue = RequestQueue(1)
    holder = Place(queue)
    assert holder.take_now()
    waiting = asyncio.create_task(Place(queue).take())
    await _turns()
    assert queue.waiting == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert queue.waiting == 0
    holder.give_back()
    assert queue.in_flight == 0


async def test_a_place_is_given_back_once_however_its_block_ends() -> None:
    queue = RequestQueue(2)

    async def attempt(place: Place) -> None:
        with place:
            await place.take()
            place.give_back()
            await place.take()  # taken again after a sleep for the plan, say
            assert queue.in_flight == 1
            raise RuntimeError("the attempt failed")

    place = Place(queue)
    with pytest.raises(RuntimeError, match="the attempt failed"):
        await attempt(place)
    assert queue.in_flight == 0
    place.give_back()  # and again: nothing more is given back
    assert queue.in_flight == 0


def test_an_unbounded_queue_never_makes_anyone_wait() -> None:
    queue = RequestQueue(None)
    places = [Place(queue) for _ in range(1000)]
    assert all(place.take_now() for place in places)
    assert queue.in_flight == 1000
    assert queue.has_room()
    for place in places:
        place.give_back()
    assert queue.in_flight == 0
