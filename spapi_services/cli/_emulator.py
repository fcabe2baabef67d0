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

    It prints export SPAPI_...= lines (credentials, URLs, marketplace) that point this
    tool at it; `--env-file PATH` writes them to a file to `source` in another shell.
    The same as `python -m spapi_services.emulator`.
    """
    from ..emulator.__main__ import CLI_PROG, main

    code = main(list(args), prog=CLI_PROG)
    if code:
        raise SystemExit(code)
