"""The test servers' rule: a missing program skips its tests, or fails them when
SPAPI_REQUIRE_SERVERS=1 (as in CI), so a missing install step cannot pass unseen."""

from __future__ import annotations

import pytest
from _servers import REQUIRE_SERVERS, RedisServer, require_program

MISSING = "spapi-no-such-server"


def test_a_missing_program_skips_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_SERVERS, raising=False)
    with pytest.raises(pytest.skip.Exception, match=rf"{MISSING} is not installed \(apt-get"):
        require_program(MISSING, "some-package")


def test_a_missing_program_fails_when_servers_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REQUIRE_SERVERS, "1")
    with pytest.raises(pytest.fail.Exception, match=rf"{REQUIRE_SERVERS}=1 requires it"):
        require_program(MISSING, "some-package")


def test_a_server_answers_once_started_and_not_after_it_is_stopped(
    own_server: RedisServer,
) -> None:
    assert own_server.answers()
    own_server.kill()
    assert not own_server.answers()
    own_server.start()  # on the same port, so clients can reconnect
    assert own_server.call("SET", "k", "v") == b"+OK"
    own_server.stop()
    assert not own_server.answers()
