"""What importing costs: the SDK never loads redis-py unless spapi_services.redis is used,
and without redis-py that import says what to install."""

from __future__ import annotations

import subprocess
import sys

from spapi_services._extras import install_command


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_sdk_alone_does_not_import_redis() -> None:
    done = run(
        "import sys\n"
        "import spapi_services\n"
        "from spapi_services import ServicesClient, RateLimits, MemoryTokenCache\n"
        "ServicesClient, RateLimits, MemoryTokenCache\n"
        "print(sorted(m for m in sys.modules if m == 'redis' or m.startswith('redis.')))\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_without_redis_py_the_import_says_what_to_install() -> None:
    done = run(
        "import sys\n"
        "sys.modules['redis'] = None  # as if redis-py were not installed\n"
        "try:\n"
        "    import spapi_services.redis\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr
    # The command that adds the extra where this SDK is installed (not the index's name:
    # the package is not on it), said from the same directory.
    assert done.stdout.strip() == (
        "spapi_services.redis (redis-py) needs the redis extra, which is not installed: "
        + install_command("redis")
    )
    assert " -m pip install " in done.stdout
