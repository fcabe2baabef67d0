"""Start-up: how long loading the client takes in a fresh interpreter.

``import spapi_services`` alone loads next to nothing (its names load on first use), so
what is timed is what a program's first line does: ``from spapi_services import
ServicesClient``.  Times it against ``python -c "pass"`` in fresh
processes, alternating, and reports the median difference of 10 pairs with its spread;
then runs ``python -X importtime`` once to name the heaviest imports.  The peers'
imports are timed the same way, for context.  ``python benchmarks/bench_startup.py [--quick]``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PEERS, fmt_spread, installed, label, spread, table

#: What each client's README imports first.
IMPORTS = {
    "ours": "from spapi_services import ServicesClient",
    "saleweaver": "import sp_api.asyncio.api",
    "official": "import spapi",
    "asp": "import amzn_selling_partner; amzn_selling_partner.AsyncClient",
}


def _wall(code: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - start


def _import_ms(code: str, reps: int) -> dict[str, float]:
    diffs = []
    for _ in range(reps):
        base = _wall("pass")
        diffs.append((_wall(code) - base) * 1e3)
    return spread(diffs)


def importtime(module: str = "spapi_services", top: int = 8) -> dict[str, Any]:
    """``-X importtime`` once: the total and the heaviest top-level packages (cumulative).

    Our package loads its parts on first use, so each part shows up as a top-level import
    of its own: the total is every top-level import of ours, with what it pulled in.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", IMPORTS["ours"]],
        check=True,
        capture_output=True,
        text=True,
    )
    packages: dict[str, int] = {}
    own_us = 0
    block: list[tuple[str, int]] = []  # importtime prints children before their parent
    total = 0
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        head, cumulative_us, name = line.split("|", 2)
        depth = len(name) - len(name.lstrip()) - 1
        name = name.strip()
        if name.split(".")[0] == module:
            own_us += int(head.split(":")[1])
        if depth > 0:
            block.append((name.split(".")[0], int(cumulative_us)))
            continue
        if name.split(".")[0] == module:
            total += int(cumulative_us)
            for package, cumulative in block:
                if package != module:
                    packages[package] = max(packages.get(package, 0), cumulative)
        block = []
    heaviest = sorted(packages.items(), key=lambda kv: -kv[1])[:top]
    return {
        "total_ms": total / 1e3,
        "own_modules_ms": own_us / 1e3,
        "heaviest_ms": [(k, v / 1e3) for k, v in heaviest],
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Import times (ms over a bare interpreter) for us and each installed peer."""
    reps = 3 if quick else 10
    clients = ["ours", *[p for p in PEERS if installed(p)]]
    return {
        "reps": reps,
        "python": sys.version.split()[0],
        "import_ms": {c: _import_ms(IMPORTS[c], reps) for c in clients},
        "importtime": importtime(),
    }


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    ours = r["import_ms"]["ours"]
    lines = [
        f"Fresh interpreter each time (Python {r['python']}), {r['reps']} pairs, the import's "
        "wall time minus a bare `python -c pass`; median (min–max).",
        "",
        table(
            ["client", "statement", "import ms"],
            [[label(c), f"`{IMPORTS[c]}`", fmt_spread(s, 0)] for c, s in r["import_ms"].items()],
        ),
        "",
        f"**`{IMPORTS['ours']}`: {ours['median']:.0f} ms** "
        f"(`-X importtime` cumulative: {r['importtime']['total_ms']:.0f} ms, of which "
        f"{r['importtime']['own_modules_ms']:.0f} ms in its own modules). "
        "Heaviest imports under it (cumulative ms): "
        + ", ".join(f"{name} {ms:.0f}" for name, ms in r["importtime"]["heaviest_ms"])
        + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(markdown(run(parser.parse_args().quick)))


if __name__ == "__main__":
    main()
