"""Shared fixtures: the real embedded stack (SeaweedFS + Tansu + PostgreSQL), worker
processes, and a PostgreSQL database of its own per index test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pgserver
import psycopg
import pytest
from pgserver import PostgresServer

from bus.dev.embedded import EmbeddedStack, stop_process
from bus.dev.launcher import Services, served_api
from bus.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
# a throwaway flow family the session's bus loads as a plug-in (tests/test_plugin_family.py)
TEST_PLUGINS = "tests.plugins.cemetery,tests.plugins.traps"
# the session's bus: the test family, and webhook retries capped at a minute (the outage
# test of tests/webhooks waits for them)
TEST_ENV = {"DEMAT_PLUGINS": TEST_PLUGINS, "DEMAT_WEBHOOK_BACKOFF_S": "1,5,30,60"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``session_first`` tests run first and ``session_last`` ones last, so that a
    scenario (a receiver down for ten minutes) spans the rest of the suite."""
    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("session_first"):
            return 0
        return 2 if item.get_closest_marker("session_last") else 1

    items.sort(key=rank)  # stable: the rest keeps its order


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="session")
def stack(var_dir: Path) -> Iterator[EmbeddedStack]:
    """The embedded Kafka + S3 stack on free ports, for the whole session."""
    embedded = EmbeddedStack(var_dir)
    embedded.start()
    yield embedded
    embedded.stop()


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL server (pgserver) of the session's own."""
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode=None)
    yield server
    stop_process(server.get_pid(), sig=signal.SIGINT)


def new_database(server: PostgresServer) -> str:
    """The URL of a new, empty database on ``server``."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.get_uri(database=name)


@pytest.fixture()
def pg_url(pg_server: PostgresServer) -> str:
    """The URL of a new, empty database for this test."""
    return new_database(pg_server)


@pytest.fixture(scope="session")
def bus_env(stack: EmbeddedStack, var_dir: Path) -> dict[str, str]:
    """Environment variables pointing a process at the test stack (and its plug-ins)."""
    return {"DEMAT_VAR_DIR": str(var_dir), **TEST_ENV}


@pytest.fixture(scope="session")
def settings(bus_env: dict[str, str]) -> Settings:
    """The session bus's settings, as its worker processes read them (``TEST_ENV``)."""
    return Settings(var_dir=Path(bus_env["DEMAT_VAR_DIR"]), plugins=TEST_PLUGINS,
                    webhook_backoff_s=TEST_ENV["DEMAT_WEBHOOK_BACKOFF_S"])


@pytest.fixture(scope="session")
def services(stack: EmbeddedStack, var_dir: Path) -> Iterator[Services]:
    """The worker processes, as ``demat run`` starts them (with the test plug-ins)."""
    procs = Services(var_dir, env=TEST_ENV)
    procs.start()
    yield procs
    procs.stop()


@pytest.fixture()
def demat(bus_env: dict[str, str]):
    """Run the ``demat`` CLI in a subprocess against the test stack."""

    def run(*args: str, timeout: float = 240, env: dict[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        env = os.environ | bus_env | (env or {})
        return subprocess.run([sys.executable, "-m", "bus.cli", *args], env=env,
                              capture_output=True, text=True, timeout=timeout, cwd=ROOT)

    return run


@pytest.fixture(scope="session")
def api(bus_env: dict[str, str], var_dir: Path) -> Iterator[str]:
    """``demat serve`` in a subprocess on a free port against the session stack: its URL."""
    with served_api(bus_env, var_dir / "api-test.log", cwd=ROOT) as served:
        yield served.url


def index_text(url: str) -> str:
    """Every row of every table of the index in the bus's database, as text (for
    no-personal-data checks: what a dump of the index would show). The router's document
    states and the API's receipts, in the same database, hold envelopes or their file
    names whole, as they did in the object store."""
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename NOT IN ('document_states', 'api_receipts') ORDER BY 1")]
        assert "events" in tables, tables
        return "\n".join(row[0] for table in tables
                         for row in conn.execute(f'SELECT t::text FROM "{table}" t'))
