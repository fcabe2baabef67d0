"""``spapi-services emulator``: serve the local emulator in the foreground."""

from __future__ import annotations

from collections.abc import Sequence

import click

__all__ = ["emulator"]


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def emulator(args: Sequence[str]) -> None:
    """Serve the Services API emulator until Ctrl+C (options: `emulator --help`).

    The same as `python -m spapi_services.emulator`.  It prints its URL and the
    credentials it accepts; point the tool at it with --endpoint and --token-url.
    """
    from ..emulator.__main__ import main

    code = main(list(args))
    if code:
        raise SystemExit(code)
