"""Developer sessions: tests, lint, typecheck, the documentation site, and the benchmarks."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["tests", "lint", "typecheck"]

PYTHONS = ["3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint and formatting."""
    session.install("ruff>=0.8")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[test]", "mypy>=1.13")
    session.run("mypy", "--strict", "spapi_services")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the site into site/ (open site/index.html); any warning fails the build.

    Strict: a broken link or anchor, a reference to a missing object, a snippet that is
    not there or a docstring griffe cannot read stops it.  Arguments go to mkdocs build.
    The same as the README's ``pip install -e ".[docs]"`` then ``mkdocs build``.
    """
    session.install("-e", ".[docs]")
    session.run("mkdocs", "build", "--strict", *session.posargs, env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(name="docs-serve")
def docs_serve(session: nox.Session) -> None:
    """Serve the site on http://127.0.0.1:8000, rebuilt when docs/, the examples, the
    benchmark results or the docstrings change (mkdocs.yml's ``watch``)."""
    session.install("-e", ".[docs]")
    session.run(
        "mkdocs",
        "serve",
        "--dev-addr",
        "127.0.0.1:8000",
        *session.posargs,
        env={"NO_MKDOCS_2_WARNING": "1"},
    )


#: The other SP-API clients, installed in the bench session only.
PEERS = ["python-amazon-sp-api", "sniffio", "amzn-sp-api", "python-dateutil"]


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against a local server and the peers; rewrites benchmarks/RESULTS.md.

    ``nox -s bench`` (about 30 minutes on 2 cores) or ``nox -s bench -- --quick`` (a smoke
    run writing RESULTS.quick.md).  Other arguments go to benchmarks/run_all.py.
    """
    # Ours with the redis and speedups extras (the overhead benchmark then measures it both
    # with orjson and with the standard library's JSON), the fleet with the command line
    # its worker processes run (bench_fleet, bench_webhooks), and what the web-backend and
    # tracing benchmarks serve and export with.
    session.install(
        "-e",
        ".[redis,speedups,otel,fleet,cli]",
        "opentelemetry-sdk",
        "fastapi",
        "uvicorn",
        # bench_webhooks' receiver checks signatures with the reference library.
        "standardwebhooks",
        "matplotlib>=3.8",
        # bench_plugin_startup times pytest with and without our plugin.
        "pytest",
        "pytest-asyncio",
        *PEERS,
    )
    # amzn-selling-partner needs httpx2 and pydantic v2; compare against it when it installs.
    session.run("python", "-m", "pip", "install", "amzn-selling-partner", success_codes=[0, 1])
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@nox.session
def soak(session: nox.Session) -> None:
    """The long soak: 30,000 calls from 1,000 tasks against the emulator with faults."""
    session.install("-e", ".[test]")
    session.run(
        "python",
        "-m",
        "pytest",
        "tests/reliability/test_soak.py",
        "-s",
        *session.posargs,
        env={"SPAPI_SOAK_CALLS": "30000"},
    )


@nox.session
def chaos(session: nox.Session) -> None:
    """The long fault campaign: many seeded schedules against the whole fleet, then a
    summary (schedules, faults by kind, what the fleet did about each kind, each
    invariant's result).

    ``nox -s chaos`` runs 20 schedules (8 sellers, 4 workers, 60 s of 18 faults each,
    the emulator paging with offset or keyset tokens, some expiring, its activity moving
    jobs; about 27 minutes on 2 cores).  ``SPAPI_CHAOS_SCHEDULES``, ``SPAPI_CHAOS_SEED``
    (the first), ``SPAPI_CHAOS_SIZE`` (``long`` or ``short``) and ``SPAPI_CHAOS_KEEP`` (a
    folder for every campaign's logs) change it; a failed schedule prints its timeline
    and is replayed with its seed.  Needs redis-server and PostgreSQL (Debian's packages).
    The summary of a full run goes into benchmarks/CHAOS.md, which every RESULTS.md
    (``nox -s bench``) carries as its last section.
    """
    session.install("-e", ".[test]")
    session.run("python", "tests/chaos/run.py", *session.posargs)
