"""``--redis``: two commands (two shells) of one seller share its usage plan and token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _servers import RedisServer, running

from spapi_services.emulator import ServicesEmulator

from .conftest import Runner, jobs_in


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running(RedisServer) as server:
        yield server


def test_two_commands_share_the_token_and_the_plan_through_redis(
    run: Runner, emulator: ServicesEmulator, redis_server: RedisServer
) -> None:
    job = jobs_in(emulator, "COMPLETED", set())
    before = emulator.lwa_exchanges
    env: dict[str, str | None] = {"SPAPI_REDIS_URL": redis_server.url}
    first = run("jobs", "get", job.service_job_id, env=env)
    second = run("--redis", redis_server.url, "jobs", "list", "--since", "95d", "--limit", "3")
    assert first.exit_code == 0, first.stderr
    assert second.exit_code == 0, second.stderr
    # The second command found the first one's token in Redis: one exchange for both.
    assert emulator.lwa_exchanges - before == 1
    # A token and the two operations' buckets are kept there (":<count>" is RESP's integer).
    assert int((redis_server.call("DBSIZE") or b":0").decode()[1:]) >= 3


def test_a_redis_url_that_is_not_one_is_refused_before_anything_is_sent(
    run: Runner, emulator: ServicesEmulator
) -> None:
    before = emulator.count()
    result = run("--redis", "http://not-redis", "jobs", "get", "any-job")
    assert result.exit_code == 2
    assert "--redis" in result.stderr
    assert emulator.count() == before
