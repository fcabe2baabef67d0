"""Run the emulator in the foreground: ``spapi-services emulator --port 8080`` (or
``python -m spapi_services.emulator``, the same without the ``cli`` extra).

It prints where it listens and the credentials it accepts, as ``export SPAPI_...=`` lines
that point ``spapi-services`` (or a program reading the same variables) at it, then
serves until Ctrl+C (or SIGTERM).  ``--env-file PATH`` writes those lines to a file to
``source`` in another shell; the file holds a client secret, so it is only ever readable
by its owner.  ``--json`` prints the same facts as one JSON line, for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .catalog import MARKETPLACES
from .faults import Fault, parse_fault_spec
from .server import ServicesEmulator

__all__ = ["build_parser", "environment", "main", "write_env_file"]

#: How the ``spapi-services`` command line names this program.
CLI_PROG = "spapi-services emulator"


def build_parser(prog: str = "python -m spapi_services.emulator") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="A local, stateful emulator of Amazon's Selling Partner API, Services API "
        f"v1.  Also run as `{CLI_PROG}` or `python -m spapi_services.emulator`.  It prints "
        "export SPAPI_...= lines; `source` them (or --env-file) in another shell and "
        "`spapi-services` talks to the emulator.",
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
    parser.add_argument(
        "--env-file",
        metavar="PATH",
        help="also write the export lines to PATH (created readable by you only) to source",
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


def environment(emu: ServicesEmulator) -> dict[str, str]:
    """The ``SPAPI_*`` variables that point ``spapi-services`` at ``emu``."""
    creds = emu.credentials
    return {
        "SPAPI_CLIENT_ID": creds.client_id,
        "SPAPI_CLIENT_SECRET": creds.client_secret,
        "SPAPI_REFRESH_TOKEN": creds.refresh_token,
        "SPAPI_ENDPOINT": emu.url,
        "SPAPI_TOKEN_URL": emu.token_url,
        "SPAPI_MARKETPLACE_ID": MARKETPLACES[0].marketplace_id,
    }


def _exports(env: dict[str, str]) -> str:
    # Quoted for the shell: a refresh token holds "|".
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())


def write_env_file(path: str | os.PathLike[str], env: dict[str, str]) -> None:
    """Write ``env`` as export lines to ``path``, readable and writable by its owner only.

    The lines hold a client secret: the file is made with mode 0600 from the start (a
    new file beside the target, then renamed over it), so it is never readable by
    others, not even for a moment, and an existing file or symlink there is replaced,
    not written through.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(_exports(env))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _announce(emu: ServicesEmulator, as_json: bool, env_file: str | None = None) -> None:
    env = environment(emu)
    if env_file is not None:
        write_env_file(env_file, env)
    creds = emu.credentials
    facts = {
        "url": emu.url,
        "token_url": emu.token_url,
        "client_id": creds.client_id,
        "client_secret": creds.client_secret,
        "refresh_token": creds.refresh_token,
        "marketplace_id": env["SPAPI_MARKETPLACE_ID"],
        "mode": "static" if emu.static is not None else "live",
        "jobs": len(emu.store.jobs),
        "env": env,
    }
    if env_file is not None:
        facts["env_file"] = str(env_file)
    if as_json:
        print(json.dumps(facts), flush=True)
        return
    print(f"Services API emulator ({facts['mode']}, {facts['jobs']} jobs) on {emu.url}")
    print("Point spapi-services at it in another shell with these lines:")
    print()
    print(_exports(env))
    if env_file is not None:
        print(f"(also written to {env_file}: run `source {shlex.quote(str(env_file))}` there)")
    print("Press Ctrl+C to stop.", flush=True)


async def _serve(emu: ServicesEmulator, as_json: bool, env_file: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no signal handlers in asyncio; Ctrl+C still ends asyncio.run there.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with emu:
        _announce(emu, as_json, env_file)
        await stop.wait()


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the emulator until stopped; ``prog`` is the name ``--help`` shows."""
    parser = build_parser(prog) if prog else build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        emu = _emulator(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(emu, args.json, args.env_file))
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
