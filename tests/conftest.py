"""Shared test fixtures: a real database per test (SQLite, and PostgreSQL where it runs)."""

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

TEST_SETTINGS = {
    # Subscribers in tests are real servers on loopback: allow exactly that.
    "BOOKING_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
    "BOOKING_WEBHOOK_RETRIES": "3",
    "BOOKING_WEBHOOK_RETRY_BASE_SECONDS": "0.05",
    "BOOKING_WEBHOOK_TIMEOUT_SECONDS": "1.0",
    "BOOKING_WEBHOOK_CONNECT_TIMEOUT_SECONDS": "1.0",
    "BOOKING_PROVIDER_RETRIES": "2",
    "BOOKING_PROVIDER_RETRY_BASE_SECONDS": "0.05",
}
# Steps read their retry policy when they are imported (tasks/retry.py), which is before any
# fixture runs: the tests' quick retries must be in the environment first.
os.environ.update(TEST_SETTINGS)

import psycopg  # noqa: E402
import pytest  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from sqlmodel import Session  # noqa: E402

from booking.db import make_engine, upgrade_schema  # noqa: E402

if TYPE_CHECKING:
    from booking.settings import Settings
    from deployments.local import LocalPrefect

# CI sets CI=true: there the PostgreSQL tests must run, never skip.
PG_DSN = os.environ.get("BOOKING_TEST_POSTGRES_DSN", "host=127.0.0.1 port=5432 user=postgres")
REQUIRE_PG = os.environ.get("CI", "").lower() == "true"


def _pg_admin() -> psycopg.Connection | None:
    try:
        return psycopg.connect(PG_DSN, dbname="postgres", autocommit=True, connect_timeout=3)
    except psycopg.OperationalError:
        return None


def _pg_url(dbname: str) -> str:
    params = dict(part.split("=", 1) for part in PG_DSN.split())
    return (
        f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', '5432')}/{dbname}"
    )


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "bookings.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade_schema(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    admin = _pg_admin()
    if admin is None:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required in CI but unreachable ({PG_DSN})")
        pytest.skip("PostgreSQL not reachable")
    name = f"booking_template_{uuid.uuid4().hex[:8]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    engine = make_engine(_pg_url(name))
    upgrade_schema(engine)
    engine.dispose()
    yield name
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A freshly migrated, empty bookings database for this test only."""
    if request.param == "sqlite":
        path = tmp_path / "bookings.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("pg_template")
    name = f"booking_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_DSN, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield _pg_url(name)
    with psycopg.connect(PG_DSN, dbname="postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


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
        admin = _pg_admin()
        if admin is None:
            if REQUIRE_PG:
                pytest.fail(f"PostgreSQL is required in CI but unreachable ({PG_DSN})")
            return None
        name = f"prefect_test_{uuid.uuid4().hex[:8]}"
        with admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        with psycopg.connect(PG_DSN, dbname=name, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        made.append(name)
        return _pg_url(name).replace("+psycopg", "+asyncpg")

    yield new
    if made and (admin := _pg_admin()) is not None:
        with admin:
            for name in made:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def prefect_server(
    tmp_path_factory: pytest.TempPathFactory, prefect_database: Callable[[], str | None]
) -> Iterator["LocalPrefect"]:
    """A real Prefect server for this test session; flows called in tests report to it."""
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.local import LocalPrefect, free_port

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
