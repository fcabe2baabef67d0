"""A local, stateful emulator of the Services API, for tests, demos and benchmarks.

It is a real HTTP server on 127.0.0.1: Login with Amazon token exchange, all 17
operations over a seeded in-memory world, document uploads with server-side
decryption, usage-plan throttling, injectable faults, and a static mode that replays the
sandbox cases of a model file.  See :class:`ServicesEmulator`; run it from a shell with
``python -m spapi_services.emulator``; use it in pytest through the fixtures of
:mod:`spapi_services.emulator.pytest_plugin`.
"""

from __future__ import annotations

from .auth import LwaCredentials
from .clock import Clock, FakeClock, SystemClock
from .documents import encrypt_document
from .faults import Fault, FaultInjector, FaultPlan
from .introspection import RequestRecord
from .server import ServicesEmulator
from .static import StaticSandbox

__all__ = [
    "Clock",
    "FakeClock",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "LwaCredentials",
    "RequestRecord",
    "ServicesEmulator",
    "StaticSandbox",
    "SystemClock",
    "encrypt_document",
]
