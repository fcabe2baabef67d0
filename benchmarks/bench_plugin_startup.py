"""The pytest plugin's cost: what having the SDK installed adds to every pytest start.

Two figures, on an empty project (its own ini, no tests):

- what the plugin's imports cost inside a ``pytest --co`` run, from ``-X importtime``
  (the SDK's packages, the plugin and its fixtures module, with everything they pull
  in), median of 10 runs: the figure held against the target of 10 ms;
- end to end, ``pytest --co`` with the plugin loaded and with it blocked
  (``-p no:spapi_services``), alternating, in fresh processes: the median of the
  pairwise differences of CPU time (user + system) and of wall time, with their spread.
  A pytest start costs hundreds of ms, and on a shared machine its spread between runs
  is tens of ms: this confirms the first figure's order of magnitude, not its last ms.

Then, once each way, it lists the modules loading the plugin adds to the process
(aiohttp, cryptography and the emulator's server should not be among them).
``python benchmarks/bench_plugin_startup.py [--quick] [--reps N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fmt_spread, spread

#: The entry point's name in pyproject.toml, which ``-p no:NAME`` blocks.
PLUGIN = "spapi_services"
TARGET_MS = 10.0
#: Modules a test run that never asks for the fixtures must not pay for.
HEAVY = ("aiohttp", "aiohttp.web", "cryptography", "spapi_services.emulator.server")

_INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\n"

# Runs pytest in-process, then prints the modules it left loaded.
_MODULES = """
import json, sys, pytest
code = pytest.main(sys.argv[1:])
print(json.dumps({"exit": int(code), "modules": sorted(sys.modules)}))
"""


def _pytest_args(project: Path, plugin: bool) -> list[str]:
    args = ["--co", "-q", "-p", "no:cacheprovider", "--rootdir", str(project)]
    args += ["-c", str(project / "pytest.ini"), str(project)]
    return args if plugin else [*args, "-p", f"no:{PLUGIN}"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "PYTEST_ADDOPTS"}


def _timed(project: Path, plugin: bool) -> tuple[float, float]:
    """One ``pytest --co``: its wall time and its CPU time (user + system), in ms."""
    args = [sys.executable, "-m", "pytest", *_pytest_args(project, plugin)]
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=project, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - started) * 1e3
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 5):  # 5: no tests collected, as expected here
        done = subprocess.run(args, cwd=project, env=_env(), capture_output=True, text=True)
        raise RuntimeError(f"pytest failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1e3


def _import_ms(project: Path) -> float:
    """``-X importtime`` of a pytest run: the SDK's imports, with everything they pull in.

    The plugin's parent packages, the plugin and the fixtures module are each imported
    from pytest's own code, outside any import of the SDK: their outermost entries'
    cumulative times add up to the plugin's import cost.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pytest", *_pytest_args(project, True)],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
    )
    entries = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "cumulative" not in line:
            _, cumulative_us, name = line.split("|", 2)
            if name.strip().split(".")[0] == PLUGIN:
                entries.append((len(name) - len(name.lstrip()), int(cumulative_us)))
    if not entries:
        raise RuntimeError(f"the plugin was not imported:\n{done.stdout}{done.stderr}")
    outermost = min(indent for indent, _ in entries)
    return sum(us for indent, us in entries if indent == outermost) / 1e3


def _loaded_modules(project: Path, plugin: bool) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", _MODULES, *_pytest_args(project, plugin)],
        cwd=project,
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1])["modules"])


def run(quick: bool = False, reps: int | None = None) -> dict[str, Any]:
    """The plugin's start-up cost in ms over a pytest run with it blocked, and what it loads."""
    reps = reps or (5 if quick else 40)
    wall: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory(prefix="plugin-startup-") as folder:
        project = Path(folder)
        (project / "pytest.ini").write_text(_INI)
        # Warm the file system caches and the bytecode of both ways first.
        _timed(project, True)
        _timed(project, False)
        for _ in range(reps):
            for plugin in (False, True):
                w, c = _timed(project, plugin)
                wall[plugin].append(w)
                cpu[plugin].append(c)
        imports = [_import_ms(project) for _ in range(min(reps, 10))]
        added = _loaded_modules(project, True) - _loaded_modules(project, False)
    return {
        "reps": reps,
        "python": sys.version.split()[0],
        "pytest_ms": {
            "wall_with_plugin": spread(wall[True]),
            "wall_blocked": spread(wall[False]),
            "cpu_with_plugin": spread(cpu[True]),
            "cpu_blocked": spread(cpu[False]),
        },
        "plugin_ms": {
            "cpu": _difference(cpu[True], cpu[False]),
            "wall": _difference(wall[True], wall[False]),
            "imports": spread(imports),
        },
        "target_ms": TARGET_MS,
        "modules_added": sorted(added),
        "heavy_modules_added": sorted(m for m in added if m in HEAVY),
    }


def _difference(loaded: list[float], blocked: list[float]) -> dict[str, float]:
    """Pairwise differences: median, spread and quartiles."""
    diffs = [a - b for a, b in zip(loaded, blocked, strict=True)]
    quartiles = statistics.quantiles(diffs, n=4) if len(diffs) > 1 else [diffs[0]] * 3
    return {
        **spread(diffs),
        "p25": quartiles[0],
        "p75": quartiles[2],
        # The fastest run of each way: the least disturbed by other processes.
        "of_minimums": min(loaded) - min(blocked),
    }


def target_met(r: dict[str, Any]) -> bool:
    """Imports within the target, and none of the heavy modules loaded."""
    return bool(
        r["plugin_ms"]["imports"]["median"] <= r["target_ms"] and not r["heavy_modules_added"]
    )


def markdown(r: dict[str, Any]) -> str:
    """The figures as markdown."""
    cost = r["plugin_ms"]
    met = target_met(r)
    ours = [m for m in r["modules_added"] if m.startswith(PLUGIN)]
    others = [m for m in r["modules_added"] if not m.startswith(PLUGIN)]
    heavy = ", ".join(f"`{m}`" for m in r["heavy_modules_added"]) or "none"

    def pairs(d: dict[str, float]) -> str:
        return (
            f"{fmt_spread(d, 1, ' ms')}, quartiles {d['p25']:.1f} and {d['p75']:.1f}, "
            f"fastest against fastest {d['of_minimums']:.1f} ms"
        )

    return "\n".join(
        [
            f"An empty project, `pytest --co` (Python {r['python']}); median (min–max).",
            "",
            f"**Loading the plugin costs {fmt_spread(cost['imports'], 1, ' ms')} of imports** "
            f"inside the pytest run (`-X importtime`, {cost['imports']['reps']} runs; target "
            f"≤ {r['target_ms']:.0f} ms: {'met' if met else '**missed**'}).",
            "",
            f"End to end, {r['reps']} pairs of fresh processes, plugin loaded minus "
            f"`-p no:{PLUGIN}`: CPU {pairs(cost['cpu'])}; wall {pairs(cost['wall'])}. "
            f"pytest alone: {r['pytest_ms']['cpu_blocked']['median']:.0f} ms CPU, "
            f"{r['pytest_ms']['wall_blocked']['median']:.0f} ms wall.",
            "",
            f"Modules loading the plugin adds: {len(ours)} of the SDK "
            f"({', '.join(f'`{m}`' for m in ours)}) and {len(others)} others; "
            f"of aiohttp, cryptography and the emulator's server: {heavy}.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--reps", type=int, help="pairs of runs (default 40, quick 5)")
    args = parser.parse_args()
    print(markdown(run(args.quick, args.reps)))


if __name__ == "__main__":
    main()
