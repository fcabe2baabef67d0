"""The decoding tests run twice: with the ``speedups`` extra as installed, and without it.

With it, bodies are parsed by orjson and decoded by msgspec's mirrors of the models
(:mod:`spapi_services._mirror`); without it, by the standard library and the attrs hooks
alone.  The two must give the same models and the same problems, so each test module
below runs under both (``[speedups]`` and ``[plain]`` in the test ids).
"""

from __future__ import annotations

import importlib.util

import pytest

from spapi_services import _serde

#: The modules whose tests decode bodies.
DECODING_MODULES = frozenset(
    {
        "test_decode_errors",
        "test_datetimes_and_money",
        "test_error_bodies",
        "test_forward_compat",
        "test_sandbox_cases",
    }
)

SPEEDUPS_INSTALLED = (
    importlib.util.find_spec("orjson") is not None
    and importlib.util.find_spec("msgspec") is not None
)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rpartition(".")[2] in DECODING_MODULES:
        metafunc.parametrize("decoders", ["speedups", "plain"], indirect=True)


@pytest.fixture(autouse=True)
def decoders(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which parser and decoder the test runs with (``speedups`` unless parametrized)."""
    mode: str = getattr(request, "param", "speedups")
    if mode == "plain":
        monkeypatch.setattr(_serde, "_orjson", None)
        monkeypatch.setattr(_serde, "_msgspec", None)
    elif hasattr(request, "param") and not SPEEDUPS_INSTALLED:
        pytest.skip("the speedups extra (orjson, msgspec) is not installed")
    return mode
