"""``_emulator_proc.py`` with more selling partners: ``--sellers N`` refresh tokens accepted.

Each added seller's refresh token is ``seller_token(i)`` (``i`` from 0); the emulator
meters each seller's usage plans apart, as Amazon does.  Everything else, the control
port and the ``READY`` line included, is ``_emulator_proc.py``'s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Server

__all__ = ["seller_token", "start"]


def seller_token(i: int) -> str:
    """The refresh token of the ``i``-th added seller."""
    return f"Atzr|bench-seller-{i:05d}"


@contextlib.contextmanager
def start(
    sellers: int, *, enforce: bool = True, latency: float = 0.0, jobs: int = 500
) -> Iterator[Server]:
    """The emulator process with ``sellers`` more refresh tokens, as a :class:`Server`."""
    from _servers import spawn

    command = [sys.executable, str(Path(__file__).resolve()), "--sellers", str(sellers)]
    command += ["--latency", str(latency), "--jobs", str(jobs)]
    command += [] if enforce else ["--no-limits"]
    with spawn(command, "READY ", timeout=120.0) as line:
        facts: dict[str, Any] = json.loads(line[len("READY ") :])
        creds = {k: facts[k] for k in ("client_id", "client_secret", "refresh_token")}
        yield Server(
            "emulator", facts["url"], facts["control"], creds, facts["control"] + "/__jobs"
        )


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--sellers", type=int, default=0)
    ours, rest = parser.parse_known_args()
    if not 0 <= ours.sellers <= 10_000:
        raise SystemExit("--sellers: 0..10000")

    import spapi_services.emulator as package
    from spapi_services.emulator import ServicesEmulator

    class WithSellers(ServicesEmulator):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            for i in range(ours.sellers):
                self.auth.add_refresh_token(seller_token(i))

    # _emulator_proc imports the class by name when it serves: it gets this one.
    package.ServicesEmulator = WithSellers  # type: ignore[misc]
    import _emulator_proc

    sys.argv = [sys.argv[0], *rest]
    _emulator_proc.main()


if __name__ == "__main__":
    main()
