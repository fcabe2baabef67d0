"""``spapi-services emulator``: serve the local emulator in the foreground.

The options are the emulator's own table (``spapi_services.emulator.__main__.SETTINGS``),
made into click options here, so this command and ``python -m spapi_services.emulator``
take the same options, with the same defaults and units (milliseconds for durations).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import click

from ..emulator.__main__ import DESCRIPTION, FAULTS_HELP, SETTINGS, Setting, option_rule, serve
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
        kind = click.Choice(setting.choices) if setting.kind == "choice" else _TYPES[setting.kind]
        options.update(
            type=kind,
            default=setting.default,
            show_default=setting.default is not None,
        )
    if setting.read is not None:
        options["callback"] = _reader(setting)
    return click.Option([setting.flag], **options)


def _reader(setting: Setting) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """``setting.read`` as a click callback: a bad value is click's usage error, naming
    the option (the default's text is read too: ``never`` becomes ``None``)."""
    read = setting.read
    assert read is not None

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        try:
            if setting.kind == "many":  # click hands over every repeat at once
                return tuple(read(item) for item in value)
            return read(value)
        except ValueError as exc:
            raise click.BadParameter(option_rule(exc, setting.flag), ctx, param) from None

    return callback


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
