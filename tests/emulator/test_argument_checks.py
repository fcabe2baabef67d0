"""The emulator's Python API refuses what its command line refuses: a fault for an
operation no request carries (with the nearest name), and constructor numbers out of
range, each naming the argument before anything listens."""

from __future__ import annotations

import pytest

from spapi_services._routes import ROUTES
from spapi_services.emulator import FaultInjector, ServicesEmulator
from spapi_services.emulator.faults import FAULT_KEYS, check_fault_key, parse_fault_spec


def test_fault_keys_are_the_operation_ids_and_the_three_others() -> None:
    assert set(FAULT_KEYS) == {*ROUTES, "token", "upload", "*"}
    for key in FAULT_KEYS:
        assert check_fault_key(key) == key


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("getServiceJob", "getServiceJobs"),
        ("getservicejobs", "getServiceJobs"),
        ("tokens", "token"),
        ("createReservaton", "createReservation"),
    ],
)
def test_a_fault_for_a_misspelt_operation_is_refused_with_the_nearest_name(
    typed: str, meant: str
) -> None:
    faults = FaultInjector(operations=FAULT_KEYS)
    with pytest.raises(ValueError, match=rf"operation: '{typed}' .* did you mean {meant}\?"):
        faults.set(typed, latency=1)
    with pytest.raises(ValueError, match=f"did you mean {meant}"):
        faults.clear(typed)
    with pytest.raises(ValueError, match=f"fault spec '{typed}:latency=1': .*{meant}"):
        parse_fault_spec(f"{typed}:latency=1")
    assert faults.active == {}


def test_a_bare_injector_takes_any_key() -> None:
    assert FaultInjector().set("custom", latency=1).latency == 1.0


def test_an_emulators_faults_refuse_an_unknown_operation_and_keep_the_known() -> None:
    emu = ServicesEmulator(jobs=0)
    emu.faults.set("getServiceJobs", latency=0.5)
    with pytest.raises(ValueError, match="no operation of the Services API"):
        emu.faults.set("listServiceJobs", latency=0.5)
    assert set(emu.faults.active) == {"getServiceJobs"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": 99999}, "port: must be from 0 to 65535, got 99999"),
        ({"port": -1}, "port: must be from 0 to 65535, got -1"),
        ({"jobs": -5}, "jobs: must be at least 0, got -5"),
        ({"token_ttl": 0}, "token_ttl: must be a number of seconds more than 0, got 0"),
        ({"upload_url_ttl": -1}, "upload_url_ttl: must be a number of seconds more than 0"),
        ({"host": "0.0.0.0"}, "host: '0.0.0.0': the emulator only listens on the loopback"),
    ],
)
def test_constructor_numbers_out_of_range_are_refused_naming_the_argument(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ServicesEmulator(**options)  # type: ignore[arg-type]


def test_port_and_jobs_must_be_whole_numbers() -> None:
    with pytest.raises(TypeError, match="port: expected a whole number, got str"):
        ServicesEmulator(port="8080")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="jobs: expected a whole number, got float"):
        ServicesEmulator(jobs=2.5)  # type: ignore[arg-type]


def test_a_closed_pipe_under_the_banner_stops_the_emulator_quietly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from spapi_services.emulator import __main__ as command

    def reader_gone(*_: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    silenced: list[bool] = []
    monkeypatch.setattr(command, "_announce", reader_gone)
    monkeypatch.setattr(command, "silence_stdout", lambda: silenced.append(True))
    code = command.serve(command.build_parser().parse_args(["--port", "0", "--jobs", "1"]))
    assert code == 141
    assert silenced == [True]
    assert capsys.readouterr().err == ""
