"""A redis-server for the benchmarks: 127.0.0.1, a free port, a temporary folder, no disk.

``start()`` yields its URL (``redis://127.0.0.1:PORT/0``) and stops it after; without
Debian's ``redis-server`` installed, :func:`available` says so and callers skip their
Redis figures with a note.  (``tests/_servers.py`` does the same for the tests, on
pytest; the benchmarks do not import the tests.)
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

__all__ = ["available", "free_port", "missing", "start"]


def available() -> bool:
    """Whether redis-server is installed."""
    return shutil.which("redis-server") is not None


def missing() -> str | None:
    """Why the Redis figures cannot be measured here, or ``None`` when they can."""
    if not available():
        return "redis-server is not installed (apt-get install redis-server)"
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        return 'redis-py is not installed (pip install "spapi-services[redis]")'
    try:
        from spapi_services.redis import RedisRateLimits, RedisTokenCache  # noqa: F401
    except ImportError as exc:
        return f"spapi_services.redis is not there yet ({exc})"
    return None


def free_port() -> int:
    """A TCP port nobody listens on right now, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as conn:
            conn.sendall(b"*1\r\n$4\r\nPING\r\n")
            return conn.makefile("rb").readline().startswith(b"+PONG")
    except OSError:
        return False


@contextlib.contextmanager
def start(wait: float = 10.0) -> Iterator[str]:
    """Run redis-server for the ``with``; yield its URL."""
    program = shutil.which("redis-server")
    if program is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="spapi-bench-redis-") as folder:
        port = free_port()
        command = [
            program,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", folder,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
        ]  # fmt: skip
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            give_up = time.monotonic() + wait
            while not _answers(port):
                if proc.poll() is not None or time.monotonic() > give_up:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
