"""Shared test fixtures: a real database per test (SQLite, and PostgreSQL where it runs)."""

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from booking.db import make_engine, upgrade_schema
from local import postgres
from tests.helpers import TEST_SETTINGS

if TYPE_CHECKING:
    from booking.settings import Settings
    from local.stack import LocalPrefect

# CI sets CI=true: there the PostgreSQL tests must run, never skip.
PG_DSN = os.environ.get("BOOKING_TEST_POSTGRES_DSN", postgres.DEFAULT_DSN)
REQUIRE_PG = os.environ.get("CI", "").lower() == "true"


def _pg_reachable() -> bool:
    try:
        postgres.admin(PG_DSN).close()
    except psycopg.OperationalError:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required in CI but unreachable ({PG_DSN})")
        return False
    return True


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "bookings.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    if not _pg_reachable():
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
    from tasks.clients import http_client, webhook_client

    def apply(**env: str) -> "Settings":
        for key, value in env.items():
            monkeypatch.setenv(f"BOOKING_{key.upper()}", value)
        get_settings.cache_clear()
        http_client.cache_clear()
        webhook_client.cache_clear()
        return get_settings()

    for key, value in TEST_SETTINGS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("BOOKING_DATABASE_URL", database_url)
    yield apply
    get_settings.cache_clear()
    http_client.cache_clear()
    webhook_client.cache_clear()


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
        if not _pg_reachable():
            return None
        made.append(postgres.create_database("prefect_test", dsn=PG_DSN, prefect=True))
        return postgres.url(PG_DSN, made[-1], driver="asyncpg")

    yield new
    for name in made:
        postgres.drop_database(name, dsn=PG_DSN)


@pytest.fixture(scope="session")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, prefect_database: Callable[[], str | None]
) -> Iterator["LocalPrefect"]:
    """A real Prefect server for this test session; flows called in tests report to it."""
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from local.stack import LocalPrefect, free_port

    stack = LocalPrefect(
        home=tmp_path_factory.mktemp("prefect"),
        port=free_port(),
        database_url=prefect_database(),
    )
    stack.start()
    try:
        with temporary_settings({PREFECT_API_URL: stack.api_url}):
            yield stack
            APILogWorker.drain_all(timeout=5)  # send the last logs while the server runs
    finally:
        stack.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that talks to a Prefect server is an integration test, wherever it lives, so
    `-m "not integration"` runs exactly the tests that need none."""
    for item in items:
        if "prefect_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
