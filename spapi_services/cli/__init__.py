"""The ``spapi-services`` command line (needs the ``cli`` extra: click and rich).

Every Services API operation from the shell, a resumable bulk sync into SQLite or JSON
Lines and the upkeep of that mirror (pruning, erasing a buyer, rotating keys), a fleet
of sellers synced by worker processes into PostgreSQL (``fleet``: workers, scheduler,
sellers, status page, and a demo of it all), a local demo that needs no credentials, and
the emulator in the foreground.
``spapi-services --help`` lists the commands.

The commands load on first use of :data:`cli` (or :func:`main`), so that without the
``cli`` extra the console script ends in one line naming it, not in a traceback.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .._extras import extra_for, missing_extra_message

if TYPE_CHECKING:
    from ._app import cli

__all__ = ["cli", "main"]

#: Exit status for a program that cannot run as installed (click's usage errors use 2).
_EXIT_SETUP = 2


def _commands() -> Any:
    """The command group with every command added (imports click and rich)."""
    from ._app import cli
    from ._appointments import appointments, fulfillment
    from ._demo import demo
    from ._emulator import emulator
    from ._fleet import fleet
    from ._jobs import jobs
    from ._mirror import mirror
    from ._scheduling import capacity, documents, reservations, schedules
    from ._sync import sync
    from ._technicians import technicians
    from ._watch import watch

    for command in (
        jobs,
        appointments,
        fulfillment,
        documents,
        schedules,
        reservations,
        capacity,
        technicians,
        sync,
        mirror,
        fleet,
        demo,
        emulator,
        watch,
    ):
        if command.name not in cli.commands:
            cli.add_command(command)
    return cli


def __getattr__(name: str) -> Any:
    if name == "cli":
        return _commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: The extra a command needs beyond ``cli`` (its own group's).
_COMMAND_EXTRAS = {"fleet": "fleet"}


def _say_missing(exc: BaseException, what: str, within: str | None = None) -> bool:
    """Print one line naming the extra ``exc`` lacks; ``False`` if it is no extra's."""
    extra = extra_for(exc, within)
    if extra is None:
        return False
    print(f"Error: {missing_extra_message(extra, what)}", file=sys.stderr)
    return True


def main() -> None:
    """The console script's entry point."""
    try:
        group = _commands()
    except ImportError as exc:
        if _say_missing(exc, "the spapi-services command"):
            raise SystemExit(_EXIT_SETUP) from None
        raise
    try:
        group(prog_name="spapi-services")
    except ImportError as exc:
        words = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
        within = next((_COMMAND_EXTRAS[w] for w in words if w in _COMMAND_EXTRAS), None)
        command = " ".join(words[:2])
        if _say_missing(exc, f"spapi-services {command}".strip(), within):
            raise SystemExit(_EXIT_SETUP) from None
        raise
