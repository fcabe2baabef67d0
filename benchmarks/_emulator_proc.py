"""The project's emulator in a process of its own, with a small control port for benchmarks.

``python -m spapi_services.emulator`` serves the API but keeps its request log in its own
process.  This script runs the same :class:`ServicesEmulator` (seeded jobs, LWA, the
published usage plans enforced unless ``--no-limits``, ``--latency`` as a fault on every
operation, ``--page-tokens keyset|offset`` for how getServiceJobs pages and
``--activity created=N,updated=N`` for a world that changes while it is measured, read
as ``spapi-services emulator`` reads them) and, beside it on another loopback port:

* ``GET /__log``: the API requests since the last reset, as
  ``[seconds since the first, operationId, status]`` rows, with counters and the number
  of client connections they came on;
* ``POST /__reset``: ``emu.reset()`` (log, counters, usage) with the latency put back;
* ``GET /__jobs``: the seeded service job ids, so clients ask for jobs that exist (the
  ones the activity created since included).

It prints ``READY <json>`` with the API URL, the token URL, the credentials, the control
URL and how it pages and changes.  :func:`start` runs it and yields those facts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _guard
from _servers import spawn


def available() -> bool:
    """Whether the emulator (with latency faults and usage plans) can be imported."""
    try:
        from spapi_services.emulator import ServicesEmulator  # noqa: F401
        from spapi_services.emulator.faults import Fault  # noqa: F401
    except ImportError:
        return False
    return True


@contextlib.contextmanager
def start(
    *,
    latency: float = 0.0,
    enforce: bool = True,
    jobs: int = 500,
    seed: int = 7,
    page_tokens: str = "keyset",
    activity: str | None = None,
) -> Iterator[dict[str, Any]]:
    """Run the emulator process for the ``with``; yield its facts (``url``, ``control``...).

    ``page_tokens`` is ``"keyset"`` or ``"offset"``; ``activity`` the world's changes a
    minute as ``spapi-services emulator --activity`` takes them (``"created=6,updated=30"``).
    """
    command = [sys.executable, str(Path(__file__).resolve()), "--latency", str(latency)]
    command += ["--jobs", str(jobs), "--seed", str(seed), "--page-tokens", page_tokens]
    command += [] if activity is None else ["--activity", activity]
    command += [] if enforce else ["--no-limits"]
    with spawn(command, "READY ", timeout=120.0) as line:
        yield json.loads(line[len("READY ") :])


async def _serve(args: argparse.Namespace) -> None:
    import attrs
    from aiohttp import web

    from spapi_services.emulator import ServicesEmulator
    from spapi_services.emulator.faults import Fault

    peers: set[object] = set()

    class Emulator(ServicesEmulator):
        def _build_app(self) -> web.Application:  # count connections, nothing else
            app = super()._build_app()

            async def seen(request: web.Request, _: web.StreamResponse) -> None:
                if request.transport is not None:
                    peers.add(request.transport.get_extra_info("peername"))

            app.on_response_prepare.append(seen)
            return app

    emu = Emulator(
        jobs=args.jobs,
        seed=args.seed,
        enforce_limits=not args.no_limits,
        page_tokens=args.page_tokens,
        activity=args.activity,
    )

    def configure() -> None:
        if args.latency > 0:
            emu.faults.set("*", Fault(latency=args.latency))

    configure()

    async def log(_: web.Request) -> web.Response:
        records = [r for r in emu.requests if r.operation not in (None, "token", "upload")]
        t0 = records[0].time if records else 0.0
        rows = [[round(r.time - t0, 6), r.operation, r.status] for r in records]
        counts = Counter(f"{r.operation} {r.status}" for r in records)
        return web.json_response(
            {
                "records": rows,
                "counts": dict(counts),
                "tokens_issued": emu.lwa_exchanges,
                "connections": len(peers),
            }
        )

    async def reset(_: web.Request) -> web.Response:
        emu.reset()
        peers.clear()
        configure()
        return web.json_response({"ok": True})

    async def job_ids(_: web.Request) -> web.Response:
        emu.run_activity()
        return web.json_response(sorted(emu.store.jobs))

    control = web.Application()
    control.router.add_get("/__log", log)
    control.router.add_post("/__reset", reset)
    control.router.add_get("/__jobs", job_ids)
    runner = web.AppRunner(control, access_log=None, handle_signals=False)
    async with emu:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        creds = emu.credentials
        facts = {
            "url": emu.url,
            "token_url": emu.token_url,
            "control": f"http://127.0.0.1:{port}",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "refresh_token": creds.refresh_token,
            "jobs": len(emu.store.jobs),
            "page_tokens": emu.context.paging,
            "activity": None if emu.activity is None else attrs.asdict(emu.activity),
        }
        print("READY " + json.dumps(facts), flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()


def _activity(text: str) -> Any:
    from spapi_services.emulator.__main__ import option_rule, read_activity

    try:
        return read_activity(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(option_rule(exc, "--activity")) from None


def main() -> None:
    _guard.install()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-limits", action="store_true")
    # Read as `spapi-services emulator` reads them, with the same messages.
    parser.add_argument("--page-tokens", choices=("keyset", "offset"), default="keyset")
    parser.add_argument("--activity", type=_activity, default=None, metavar="created=N,updated=N")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
