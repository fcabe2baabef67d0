"""What the benchmark scripts share: running one client process, medians and spreads.

Each measured client runs in a fresh process (``_clients.py``), apart from the server's
process, so imports, caches and the garbage collector of one run never leak into the
next, and ``time.process_time()`` in that process is the client's CPU alone.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import statistics
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

sys.path.insert(0, str(HERE))
import _guard  # noqa: E402

_guard.install()

#: client name -> (import name, distribution name, how it is shown in tables)
CLIENTS: dict[str, tuple[str, str, str]] = {
    "ours": ("spapi_services", "spapi-services", "spapi-services"),
    "raw": ("aiohttp", "aiohttp", "floor: raw aiohttp + json"),
    "saleweaver": ("sp_api", "python-amazon-sp-api", "python-amazon-sp-api (async)"),
    "official": ("spapi", "amzn-sp-api", "amzn-sp-api (official)"),
    "asp": ("amzn_selling_partner", "amzn-selling-partner", "amzn-selling-partner"),
}
PEERS = ("saleweaver", "official", "asp")


def label(client: str) -> str:
    """A client's name as tables show it."""
    return CLIENTS[client][2]


def installed(client: str) -> bool:
    """Whether the client's library can be imported here."""
    return importlib.util.find_spec(CLIENTS[client][0]) is not None


def version(client: str) -> str:
    """The installed version of a client's distribution, or ``"not installed"``."""
    try:
        return importlib.metadata.version(CLIENTS[client][1])
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run_client(
    client: str,
    scenario: str,
    base_url: str,
    *,
    n: int = 1000,
    concurrency: int = 50,
    warmup: int = 0,
    limits: str = "off",
    checkpoints: Iterable[int] = (),
    profile: str | None = None,
    ablate: str = "none",
    timeout: float = 600.0,
) -> dict[str, Any]:
    """Run one client process and return what it measured (``{"failed": ...}`` if it broke)."""
    command = [
        sys.executable,
        str(HERE / "_clients.py"),
        client,
        scenario,
        "--base-url",
        base_url,
        "--n",
        str(n),
        "--concurrency",
        str(concurrency),
        "--warmup",
        str(warmup),
        "--limits",
        limits,
        "--ablate",
        ablate,
    ]
    marks = [str(c) for c in checkpoints]
    if marks:
        command += ["--checkpoints", *marks]
    if profile:
        command += ["--profile", profile]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"client": client, "failed": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            outcome: dict[str, Any] = json.loads(line[len("RESULT ") :])
            return outcome
    tail = (done.stderr or done.stdout).strip().splitlines()[-6:]
    return {"client": client, "failed": f"exit {done.returncode}: " + " | ".join(tail)}


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, smallest and largest of some repetitions."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "reps": len(values),
    }


def fmt_spread(s: dict[str, float], digits: int = 2, unit: str = "") -> str:
    """``median (min–max)`` for a table cell."""
    if s["reps"] <= 1:
        return f"{s['median']:.{digits}f}{unit}"
    return f"{s['median']:.{digits}f}{unit} ({s['min']:.{digits}f}–{s['max']:.{digits}f})"


def fmt_errors(errors: dict[str, int]) -> str:
    """``Name ×count`` pairs, or a dash."""
    if not errors:
        return "none"
    return ", ".join(f"{name} ×{count}" for name, count in sorted(errors.items()))


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
