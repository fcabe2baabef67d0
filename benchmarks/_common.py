"""What the benchmark scripts share: running one client process, medians and spreads.

Each measured client runs in a fresh process (``_clients.py``), apart from the server's
process, so imports, caches and the garbage collector of one run never leak into the
next, and ``time.process_time()`` in that process is the client's CPU alone.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Server:
    """A server process the clients talk to: where it is, what it accepts, its control port."""

    kind: str
    """``"emulator"`` (the project's) or ``"lean"`` (``_servers.py``)."""
    url: str
    control: str
    creds: dict[str, str] | None = None
    ids_url: str | None = None

    def log(self) -> dict[str, Any]:
        """The requests it saw since the last reset, with counters."""
        with urllib.request.urlopen(self.control + "/__log", timeout=30) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def reset(self) -> None:
        """Forget the requests and refill the usage-plan buckets."""
        request = urllib.request.Request(self.control + "/__reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()

    def api_counts(self, operation: str) -> dict[int, int]:
        """Requests of ``operation`` by status, since the last reset."""
        out: dict[int, int] = {}
        for key, count in self.log()["counts"].items():
            op, _, status = key.rpartition(" ")
            if op == operation:
                out[int(status)] = out.get(int(status), 0) + count
        return out


@contextlib.contextmanager
def lean_server(
    *, latency: float = 0.0, enforce: bool = False, pages: int = 50
) -> Iterator[Server]:
    """The lean server (``_servers.py``) in its own process."""
    import _servers

    with _servers.start(latency=latency, enforce=enforce, pages=pages) as url:
        yield Server("lean", url, url)


@contextlib.contextmanager
def emulator_server(
    *,
    latency: float = 0.0,
    enforce: bool = True,
    jobs: int = 500,
    seed: int = 7,
    page_tokens: str = "keyset",
    activity: str | None = None,
) -> Iterator[Server]:
    """The project's emulator in its own process (see ``_emulator_proc.py``): its page
    tokens ``"keyset"`` or ``"offset"``, its world changing at ``activity``
    (``"created=6,updated=30"``, a minute) if given."""
    import _emulator_proc

    with _emulator_proc.start(
        latency=latency,
        enforce=enforce,
        jobs=jobs,
        seed=seed,
        page_tokens=page_tokens,
        activity=activity,
    ) as facts:
        creds = {k: facts[k] for k in ("client_id", "client_secret", "refresh_token")}
        yield Server(
            "emulator", facts["url"], facts["control"], creds, facts["control"] + "/__jobs"
        )


def api_server(
    prefer: str, *, latency: float = 0.0, enforce: bool = False, jobs: int = 500, seed: int = 7
) -> contextlib.AbstractContextManager[Server]:
    """The emulator (seeded with ``jobs``) if asked for and importable, else the lean server."""
    import _emulator_proc

    if prefer == "emulator" and _emulator_proc.available():
        return emulator_server(latency=latency, enforce=enforce, jobs=jobs, seed=seed)
    return lean_server(latency=latency, enforce=enforce, pages=-(-jobs // 20))


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
    server: Server,
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
        server.url,
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
    if server.creds:
        command += ["--creds", json.dumps(server.creds)]
    if server.ids_url:
        command += ["--ids-url", server.ids_url]
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
