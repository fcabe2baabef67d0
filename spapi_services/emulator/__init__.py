"""A local, stateful emulator of the Services API, for tests, demos and benchmarks.

It is a real HTTP server on 127.0.0.1: Login with Amazon token exchange, all 17
operations over a seeded in-memory world (which can move: new jobs and status changes
at set rates), document uploads with server-side decryption, usage-plan throttling,
injectable faults, page tokens that are keyset cursors or offsets and may expire, and a
static mode that replays the sandbox cases of a model file.  See
:class:`ServicesEmulator`; run it from a shell with ``python -m spapi_services.emulator``;
use it in pytest through the fixtures of :mod:`spapi_services.emulator.pytest_plugin`.

The names below are imported on first use: the pytest plugin lives in this package and
is loaded by every pytest run of a project that has the SDK installed, so importing the
package must not start aiohttp's server and cryptography for runs that never use them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .activity import Activity, ActivityChange
    from .auth import LwaCredentials
    from .clock import Clock, FakeClock, ShiftedClock, SystemClock
    from .documents import encrypt_document
    from .faults import Fault, FaultInjector, FaultPlan
    from .introspection import RequestRecord
    from .server import EmulatedSeller, ServicesEmulator
    from .static import StaticSandbox
else:
    # Out of type checkers' sight: a module ``__getattr__`` would make any misspelt name
    # an ``Any`` for them, where the imports above keep every name typed.
    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(import_module(f".{home}", __name__), name)
        globals()[name] = value  # later lookups skip this function
        return value


__all__ = [
    "Activity",
    "ActivityChange",
    "Clock",
    "EmulatedSeller",
    "FakeClock",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "LwaCredentials",
    "RequestRecord",
    "ServicesEmulator",
    "ShiftedClock",
    "StaticSandbox",
    "SystemClock",
    "encrypt_document",
]

#: Each public name and the submodule that defines it.
_HOMES = {
    "Activity": "activity",
    "ActivityChange": "activity",
    "Clock": "clock",
    "EmulatedSeller": "server",
    "FakeClock": "clock",
    "Fault": "faults",
    "FaultInjector": "faults",
    "FaultPlan": "faults",
    "LwaCredentials": "auth",
    "RequestRecord": "introspection",
    "ServicesEmulator": "server",
    "ShiftedClock": "clock",
    "StaticSandbox": "static",
    "SystemClock": "clock",
    "encrypt_document": "documents",
}


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
