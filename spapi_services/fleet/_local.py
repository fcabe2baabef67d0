"""Throw-away Redis and PostgreSQL servers on this machine, for the demo and the tests.

Each runs Debian's binaries (``redis-server``; ``postgres`` and ``initdb`` from the
``postgresql`` package) in the foreground, on a free port of 127.0.0.1, in a directory the
caller gives and removes; nothing is written anywhere else and nothing is kept.  A
program that is not installed is a :class:`ProgramMissing` naming the package to install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

__all__ = [
    "LocalServer",
    "PersistentRedisServer",
    "PostgresServer",
    "ProgramMissing",
    "RedisServer",
    "find_program",
    "free_port",
    "running",
]

S = TypeVar("S", bound="LocalServer")


class ProgramMissing(RuntimeError):
    """A server program is not installed; the message names its Debian package."""

    def __init__(self, program: str, package: str) -> None:
        super().__init__(f"{program} is not installed (apt-get install {package})")
        self.program = program
        self.package = package


def find_program(program: str, package: str, *, elsewhere: str | None = None) -> str:
    """The path of ``program``, or :class:`ProgramMissing`.

    ``elsewhere`` is a glob of other places to look when it is not on the PATH (the
    last match in name order wins: the highest version).
    """
    path = shutil.which(program)
    if path is None and elsewhere is not None:
        found = sorted(glob.glob(elsewhere))
        path = found[-1] if found else None
    if path is None:
        raise ProgramMissing(program, package)
    return path


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalServer:
    """A server program run in the foreground: start, stop, and ways to hurt it.

    Subclasses set :attr:`program` and :attr:`package` and write :meth:`command` and
    :meth:`answers`.  The port stays the same across restarts, so clients can reconnect.
    The server runs in a session of its own: a Ctrl-C meant for its owner does not stop
    it behind the owner's back (the owner stops it, in its own order).

    :param directory: where its files go (the caller's to remove).
    :param executable: the program's path (default: found on the PATH, or
        :class:`ProgramMissing`).
    """

    program: ClassVar[str]
    package: ClassVar[str]
    #: Where else the program may be installed (a glob), if not on the PATH.
    elsewhere: ClassVar[str | None] = None
    #: The signal that asks the server to stop (then SIGKILL after 5 s).
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, directory: Path, *, executable: str | None = None) -> None:
        self.executable = executable or find_program(
            self.program, self.package, elsewhere=self.elsewhere
        )
        self.directory = directory
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / f"{self.program}.log"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(127.0.0.1:{self.port})"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (also its session's id)."""
        return None if self._process is None else self._process.pid

    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""
        raise NotImplementedError

    def answers(self) -> bool:
        """Whether the server answers a request right now (a quick probe)."""
        raise NotImplementedError

    def process_options(self) -> dict[str, Any]:
        """Extra ``subprocess.Popen`` arguments for the server (e.g. the user to run as)."""
        return {}

    def start(self, wait: float = 10.0) -> Self:
        """Start the server and return once it answers."""
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self.process_options(),
            )
        give_up = time.monotonic() + wait
        while not self.answers():
            if self._process.poll() is not None or time.monotonic() > give_up:
                self.stop()
                tail = self._log.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"{self!r} did not start:\n{tail}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop the server (politely, then not)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)  # a paused server cannot hear a signal
            process.send_signal(self.stop_signal)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def restart(self, wait: float = 10.0) -> Self:
        """Stop the server and start it again on the same port, with what it kept."""
        self.stop()
        return self.start(wait)

    def kill(self) -> None:
        """Kill the server at once, as a crash would (``start`` brings it back)."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections open, nothing answered."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again."""
        assert self._process is not None
        os.kill(self._process.pid, signal.SIGCONT)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisServer(LocalServer):
    """Debian's ``redis-server``, in memory only (a restart loses everything)."""

    program = "redis-server"
    package = "redis-server"
    #: Whether it keeps an append-only file, every write synced (data survives restarts).
    appendonly: ClassVar[bool] = False

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.executable,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip

    def answers(self) -> bool:
        return self.call("PING") == b"+PONG"

    def call(self, *words: str) -> bytes | None:
        """Send one command over a fresh connection; its raw first line (None: no answer)."""
        request = f"*{len(words)}\r\n".encode()
        for word in words:
            data = word.encode()
            request += b"$%d\r\n%s\r\n" % (len(data), data)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as conn:
                conn.sendall(request)
                return conn.makefile("rb").readline().rstrip(b"\r\n")
        except OSError:
            return None


class PersistentRedisServer(RedisServer):
    """``redis-server`` with an append-only file: a restart keeps its data (in its folder)."""

    appendonly = True


class PostgresServer(LocalServer):
    """PostgreSQL: a new cluster (``initdb``) in the directory, run in the foreground by
    ``postgres`` on 127.0.0.1, with trust authentication for the superuser ``spapi`` and
    nothing flushed to disk (``fsync``, ``synchronous_commit`` and full-page writes off:
    throw-away data need not survive a power cut).

    PostgreSQL refuses to run as root: there, ``initdb`` and ``postgres`` run as the
    ``postgres`` user (which Debian's package creates; ``nobody`` otherwise), and the
    directory is handed to that user (so it must be one it can reach: give each server a
    temporary directory of its own).  Its Unix socket goes in the directory, never in
    /var/run/postgresql.
    """

    program = "postgres"
    package = "postgresql"
    elsewhere = "/usr/lib/postgresql/*/bin/postgres"
    # SIGTERM is a "smart" shutdown that waits for every client to leave; SIGINT ends
    # their sessions and stops at once, cleanly.
    stop_signal = signal.SIGINT
    superuser = "spapi"

    def __init__(self, directory: Path, *, executable: str | None = None) -> None:
        super().__init__(directory, executable=executable)
        self.data = directory / "data"
        self._user = _unprivileged_user() if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(directory, self._user.pw_uid, self._user.pw_gid)

    @property
    def dsn(self) -> str:
        """The superuser's connection string for the ``postgres`` database."""
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/postgres"

    def process_options(self) -> dict[str, Any]:
        if self._user is None:
            return {}
        return {"user": self._user.pw_uid, "group": self._user.pw_gid, "extra_groups": []}

    def start(self, wait: float = 10.0) -> Self:
        if not self.data.exists():
            self._initdb()
        return super().start(wait)

    def _initdb(self) -> None:
        initdb = Path(self.executable).with_name("initdb")
        command = [
            str(initdb),
            "--pgdata", str(self.data),
            "--username", self.superuser,
            "--auth", "trust",
            "--encoding", "UTF8",
            "--locale", "C",
            "--no-sync",
        ]  # fmt: skip
        with self._log.open("ab") as log:
            subprocess.run(
                command,
                cwd=self.directory,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=True,
                **self.process_options(),
            )

    def command(self) -> list[str]:
        return [
            self.executable,
            "-D", str(self.data),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.directory}",
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip

    def answers(self) -> bool:
        """Whether a session can start: a startup message answered by an authentication
        request, not by "the database system is starting up"."""
        fields = f"user\0{self.superuser}\0database\0postgres\0\0".encode()
        body = struct.pack("!i", 196608) + fields  # protocol 3.0
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as conn:
                conn.sendall(struct.pack("!i", len(body) + 4) + body)
                kind = conn.recv(1)
                if kind == b"R":
                    conn.sendall(b"X\0\0\0\4")  # Terminate, so the server logs no error
                return kind == b"R"
        except OSError:
            return False


def _unprivileged_user() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("PostgreSQL cannot run as root, and there is no postgres or nobody user")


@contextlib.contextmanager
def running(server_class: type[S], **options: Any) -> Iterator[S]:
    """A server of ``server_class`` in a temporary directory, stopped and removed after."""
    with (
        tempfile.TemporaryDirectory(prefix=f"spapi-{server_class.program}-") as directory,
        server_class(Path(directory), **options) as server,
    ):
        yield server
