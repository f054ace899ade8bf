"""Shared test fixtures: a real database per test (SQLite, and PostgreSQL where it runs)."""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from booking.db import make_engine, upgrade_schema
from local import postgres
from tests.helpers import PG_DSN, TEST_SETTINGS, SharedServer, pg_reachable, run_temp
from tests.schemas import check_webhook_bodies

if TYPE_CHECKING:
    from pytest_httpserver import HTTPServer

    from booking.settings import Settings
    from local.stack import LocalPrefect


@pytest.fixture
def httpserver(httpserver: "HTTPServer") -> Iterator["HTTPServer"]:
    """pytest-httpserver's subscriber; as the test ends, every webhook body it received is
    checked against its trigger's published JSON Schema."""
    yield httpserver
    check_webhook_bodies(request for request, _ in httpserver.log)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "bookings.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    if not pg_reachable():
        pytest.skip("PostgreSQL not reachable")
    name = postgres.create_database("booking_template", dsn=PG_DSN)
    engine = make_engine(postgres.url(PG_DSN, name))
    upgrade_schema(engine)
    engine.dispose()
    yield name
    postgres.drop_database(name, dsn=PG_DSN)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty bookings database for this test only."""
    if request.param == "sqlite":
        path = tmp_path / "bookings.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = postgres.create_database("booking_test", dsn=PG_DSN, template=template)
    yield postgres.url(PG_DSN, name)
    postgres.drop_database(name, dsn=PG_DSN)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def configure(database_url: str, monkeypatch: pytest.MonkeyPatch):
    """Set `BOOKING_*` variables for this test and reload what caches them."""
    from booking.settings import get_settings
    from tasks.clients import http_client

    def apply(**env: str) -> "Settings":
        for key, value in env.items():
            monkeypatch.setenv(f"BOOKING_{key.upper()}", value)
        get_settings.cache_clear()
        http_client.cache_clear()
        return get_settings()

    for key, value in TEST_SETTINGS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BOOKING_DATABASE_URL", database_url)
    # An earlier test in this process that read the settings without this fixture cached
    # the defaults (the repository's own SQLite file): this test reads its own.
    get_settings.cache_clear()
    http_client.cache_clear()
    yield apply
    get_settings.cache_clear()
    http_client.cache_clear()


@pytest.fixture
def settings(configure) -> "Settings":
    """The process's settings, as flows read them, pointed at this test's database."""
    return configure()


@pytest.fixture(scope="session")
def prefect_database() -> Iterator[Callable[[], str | None]]:
    """Makes a fresh PostgreSQL database for a Prefect server (its SQLite backend locks
    under concurrent writes), or gives None (SQLite) where PostgreSQL is not reachable."""
    made: list[str] = []

    def new() -> str | None:
        if url := os.environ.get("BOOKING_TEST_PREFECT_DATABASE_URL"):
            return url
        if not pg_reachable():
            return None
        made.append(postgres.create_database("prefect_test", dsn=PG_DSN, prefect=True))
        return postgres.url(PG_DSN, made[-1], driver="asyncpg")

    yield new
    for name in made:
        postgres.drop_database(name, dsn=PG_DSN)


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator["LocalPrefect"]:
    """A real Prefect server, one for the whole test run: the xdist workers share it (the
    first to need it starts it, the last to finish stops it). Flows called in tests report
    to it; every test uses names of its own, so they do not see each other's work."""
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        temporary_settings,
    )

    with (
        SharedServer(run_temp(tmp_path_factory)) as stack,
        # Flows called here in the test process need no heartbeat (no worker watches them),
        # and Prefect's heartbeat thread holds each run's end for up to a second. The
        # workers the integration tests start keep theirs (`python -m worker` sets 30 s).
        temporary_settings(
            {PREFECT_API_URL: stack.api_url, PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}
        ),
    ):
        yield stack
        APILogWorker.drain_all(timeout=5)  # send the last logs while the server runs


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that talks to a Prefect server is an integration test, wherever it lives, so
    `-m "not integration"` runs exactly the tests that need none.

    The slowest modules, those that start a worker stack of their own, are put first, so
    xdist hands them out before the quick ones and no worker is left with a long tail."""
    for item in items:
        if "prefect_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: SLOWEST_FIRST.get(item.path.name, len(SLOWEST_FIRST)))


# The modules that take longest (`pytest --durations=0`, summed by module), longest first.
SLOWEST_FIRST = {
    name: rank
    for rank, name in enumerate(
        [
            "test_restart.py",
            "test_recovery.py",
            "test_webhooks.py",
            "test_deploying.py",
            "test_end_to_end.py",
            "test_start_path.py",
            "test_webhook_rates.py",
            "test_lifecycle.py",
            "test_scheduling.py",
            "test_dispatch.py",
            "test_retry.py",
        ]
    )
}
