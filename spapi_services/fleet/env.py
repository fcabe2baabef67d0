"""A fleet built from ``SPAPI_FLEET_*`` variables, for taskiq's own commands::

    taskiq worker spapi_services.fleet.env:broker --workers 2
    taskiq scheduler spapi_services.fleet.env:scheduler

Importing this module builds the fleet (and fails, naming the variable, if one is
missing or wrong); nothing connects until a task runs.
"""

from __future__ import annotations

from ._fleet import Fleet

__all__ = ["broker", "fleet", "scheduler"]

fleet = Fleet.from_env()
broker = fleet.broker
scheduler = fleet.scheduler
