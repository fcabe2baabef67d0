"""Without the fleet extra's libraries, importing spapi_services.fleet says what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

from spapi_services._extras import install_command


@pytest.mark.parametrize("missing", ["taskiq", "taskiq_redis", "asyncpg"])
def test_without_a_library_of_the_extra_the_import_says_what_to_install(missing: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            f"sys.modules[{missing!r}] = None  # as if it were not installed\n"
            "try:\n"
            "    import spapi_services.fleet\n"
            "except ImportError as exc:\n"
            "    print(exc)\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "spapi_services.fleet (taskiq, taskiq-redis and asyncpg) needs the fleet extra, "
        "which is not installed: " + install_command("fleet")
    )
