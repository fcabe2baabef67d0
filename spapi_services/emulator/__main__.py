"""Run the emulator in the foreground: ``python -m spapi_services.emulator --port 8080``.

It prints where it listens and the credentials it accepts, then serves until Ctrl+C
(or SIGTERM).  ``--json`` prints the same facts as one JSON line, for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence

from .faults import Fault, parse_fault_spec
from .server import ServicesEmulator

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m spapi_services.emulator",
        description="A local, stateful emulator of Amazon's Selling Partner API, Services API v1.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="loopback address (default %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    parser.add_argument("--jobs", type=int, default=200, help="service jobs to seed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world")
    parser.add_argument("--token-ttl", type=int, default=3600, help="access token lifetime, s")
    parser.add_argument(
        "--no-limits", action="store_true", help="do not throttle requests (no 429s)"
    )
    parser.add_argument(
        "--rate-scale", type=float, default=1.0, help="multiply every usage plan's rate"
    )
    parser.add_argument(
        "--static", metavar="PATH", help="replay the sandbox cases of this model file"
    )
    parser.add_argument("--upload-ttl", type=int, default=300, help="upload URL lifetime, s")
    parser.add_argument(
        "--strict-slots",
        action="store_true",
        help="appointments must start on a free hourly slot",
    )
    faults = parser.add_argument_group(
        "faults", "trouble for every operation (or per operation with --fault)"
    )
    faults.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    faults.add_argument("--jitter", type=float, default=0.0, help="up to this many more seconds")
    faults.add_argument("--error-rate", type=float, default=0.0, help="share of 5xx answers")
    faults.add_argument("--error-status", type=int, default=503, help="their status (or 429)")
    faults.add_argument("--html-errors", action="store_true", help="5xx answers as HTML pages")
    faults.add_argument("--drop-rate", type=float, default=0.0, help="share of dropped requests")
    faults.add_argument("--slow-body", type=float, default=0.0, help="seconds to trickle bodies")
    faults.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="OP:key=value,...",
        help="a fault for one operation (or *, token, upload), e.g. "
        "getServiceJobs:latency=0.25,error_rate=0.05,error_status=503,html=true; "
        "mangle=lose|reset|truncate|html|empty spoils the answer after the operation ran",
    )
    parser.add_argument("--json", action="store_true", help="print the connection facts as JSON")
    parser.add_argument("--log-level", default="WARNING", help="logging level")
    return parser


def _emulator(args: argparse.Namespace) -> ServicesEmulator:
    emu = ServicesEmulator(
        jobs=args.jobs,
        seed=args.seed,
        host=args.host,
        port=args.port,
        token_ttl=args.token_ttl,
        enforce_limits=not args.no_limits,
        rate_scale=args.rate_scale,
        static_spec=args.static,
        upload_url_ttl=args.upload_ttl,
        strict_slots=args.strict_slots,
    )
    general = Fault(
        latency=args.latency,
        jitter=args.jitter,
        error_rate=args.error_rate,
        error_status=args.error_status,
        html=args.html_errors,
        drop_rate=args.drop_rate,
        slow_body=args.slow_body,
    )
    if general != Fault():
        emu.faults.set("*", general)
    for spec in args.fault:
        operation, fault = parse_fault_spec(spec)
        emu.faults.set(operation, fault)
    return emu


def _announce(emu: ServicesEmulator, as_json: bool) -> None:
    creds = emu.credentials
    facts = {
        "url": emu.url,
        "token_url": emu.token_url,
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "refresh_token": creds.refresh_token,
        "mode": "static" if emu.static is not None else "live",
        "jobs": len(emu.store.jobs),
    }
    if as_json:
        print(json.dumps(facts), flush=True)
        return
    print(f"Services API emulator ({facts['mode']}, {facts['jobs']} jobs)")
    print(f"  url:           {emu.url}")
    print(f"  token url:     {emu.token_url}")
    print(f"  client id:     {creds.client_id}")
    print(f"  client secret: {creds.client_secret}")
    print(f"  refresh token: {creds.refresh_token}")
    print("Press Ctrl+C to stop.", flush=True)


async def _serve(emu: ServicesEmulator, as_json: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no signal handlers in asyncio; Ctrl+C still ends asyncio.run there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emu:
        _announce(emu, as_json)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        emu = _emulator(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(emu, args.json))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
