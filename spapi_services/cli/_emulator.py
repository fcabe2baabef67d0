"""``spapi-services emulator``: serve the local emulator in the foreground.

The options are the emulator's own table (``spapi_services.emulator.__main__.SETTINGS``),
made into click options here, so this command and ``python -m spapi_services.emulator``
take the same options, with the same defaults and units (milliseconds for durations).
"""

from __future__ import annotations

import argparse
from typing import Any

import click

from ..emulator.__main__ import DESCRIPTION, FAULTS_HELP, SETTINGS, Setting, serve
from ._app import Command

__all__ = ["emulator"]

_TYPES: dict[str, Any] = {"int": int, "float": float, "text": str, "duration": str}


def _option(setting: Setting) -> click.Option:
    options: dict[str, Any] = {"help": setting.help, "metavar": setting.metavar}
    if setting.kind == "flag":
        options.update(is_flag=True, default=False)
    elif setting.kind == "many":
        options.update(multiple=True)
    else:
        options.update(
            type=_TYPES[setting.kind],
            default=setting.default,
            show_default=setting.default is not None,
        )
    return click.Option([setting.flag], **options)


def _run(**values: Any) -> None:
    code = serve(argparse.Namespace(**values))
    if code:
        raise SystemExit(code)


emulator = Command(
    "emulator",
    callback=_run,
    params=[_option(setting) for setting in SETTINGS],
    help=DESCRIPTION,
    epilog=FAULTS_HELP,
    short_help="Serve the Services API emulator until Ctrl+C (prints export lines).",
)
