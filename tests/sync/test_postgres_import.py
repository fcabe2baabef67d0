"""Without asyncpg, the PostgreSQL mirror says which extra to install, and how, here."""

from __future__ import annotations

import subprocess
import sys

from spapi_services._extras import install_command


def test_without_asyncpg_connecting_says_what_to_install() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import asyncio, sys\n"
            "sys.modules['asyncpg'] = None  # as if it were not installed\n"
            "from spapi_services.sync._postgres import connect_pool\n"
            "try:\n"
            "    asyncio.run(connect_pool('postgresql://u@127.0.0.1:1/db'))\n"
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
        "PostgreSQL (asyncpg) needs the postgres extra, which is not installed: "
        + install_command("postgres")
    )
