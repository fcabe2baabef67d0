"""Real servers for the tests: each started on a free loopback port, in a temporary
directory, with nothing kept on disk, and stopped when its tests end.

The servers themselves are the package's (:mod:`spapi_services.fleet._local`, which the
fleet's demo runs too); here a missing program does not raise but skips its tests,
saying what to install, and with ``SPAPI_REQUIRE_SERVERS=1`` in the environment (CI sets
it) fails them instead, so a missing install step cannot pass as a green run.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from spapi_services.fleet import _local
from spapi_services.fleet._local import ProgramMissing, find_program, free_port

__all__ = [
    "REQUIRE_SERVERS",
    "LocalServer",
    "PersistentRedisServer",
    "PostgresServer",
    "RedisServer",
    "free_port",
    "require_program",
    "running",
]

REQUIRE_SERVERS = "SPAPI_REQUIRE_SERVERS"

S = TypeVar("S", bound="LocalServer")


def require_program(program: str, package: str, *, elsewhere: str | None = None) -> str:
    """The path of ``program``, or skip (fail under ``SPAPI_REQUIRE_SERVERS=1``)."""
    try:
        return find_program(program, package, elsewhere=elsewhere)
    except ProgramMissing as missing:
        reason = str(missing)
    if os.environ.get(REQUIRE_SERVERS) == "1":
        pytest.fail(f"{reason}, and {REQUIRE_SERVERS}=1 requires it", pytrace=False)
    pytest.skip(reason)


class LocalServer(_local.LocalServer):
    """A package server whose missing program skips the test (or fails it in CI)."""

    def __init__(self, directory: Path) -> None:
        executable = require_program(self.program, self.package, elsewhere=self.elsewhere)
        super().__init__(directory, executable=executable)


class RedisServer(LocalServer, _local.RedisServer):
    """Debian's ``redis-server``, in memory only."""


class PersistentRedisServer(LocalServer, _local.PersistentRedisServer):
    """``redis-server`` with an append-only file: its data survives ``restart()``."""


class PostgresServer(LocalServer, _local.PostgresServer):
    """A throw-away PostgreSQL cluster (see :class:`spapi_services.fleet._local.PostgresServer`)."""


@contextlib.contextmanager
def running(server_class: type[S]) -> Iterator[S]:
    """A server of ``server_class`` in a temporary directory, stopped and removed after."""
    with (
        tempfile.TemporaryDirectory(prefix=f"spapi-{server_class.program}-") as directory,
        server_class(Path(directory)) as server,
    ):
        yield server
