"""The ``spapi-services`` command line (needs the ``cli`` extra: click and rich).

Every Services API operation from the shell, a resumable bulk sync into SQLite or JSON
Lines and the upkeep of that mirror (pruning, erasing a buyer, rotating keys), a fleet
of sellers synced by worker processes into PostgreSQL (``fleet``: workers, scheduler,
sellers, status page, and a demo of it all), a local demo that needs no credentials, and
the emulator in the foreground.
``spapi-services --help`` lists the commands.
"""

from __future__ import annotations

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

__all__ = ["cli", "main"]

for _command in (
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
):
    cli.add_command(_command)


def main() -> None:
    """The console script's entry point."""
    cli(prog_name="spapi-services")
