"""Engines, sessions and schema upgrades for the bookings database (SQLite or PostgreSQL)."""

from contextlib import AbstractContextManager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker
from sqlmodel import Session, create_engine, select

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for the backend: SQLite in WAL mode with foreign keys enforced."""
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def alembic_config(engine: Engine) -> "Config":
    # Alembic is imported here, not at the top: flow runs import this module and never migrate.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def upgrade_schema(engine: Engine) -> None:
    """Bring the database to the newest migration; safe to run on every start."""
    from alembic import command

    command.upgrade(alembic_config(engine), "head")


def session_scope(engine: Engine) -> AbstractContextManager[Session]:
    """A session in one transaction: committed on success, rolled back on any error, closed."""
    return sessionmaker(engine, class_=Session, expire_on_commit=False).begin()


@lru_cache(maxsize=4)
def engine_for(url: str) -> Engine:
    """One engine per URL per process, created on first use (flows share it with subflows)."""
    return make_engine(url)


def insert_once(session: Session, row: Any, key: str = "dedupe_key") -> bool:
    """Add `row` unless a row with its `key` (a unique column) exists; safe against
    concurrent runs."""
    column = getattr(type(row), key)
    if session.exec(select(column).where(column == getattr(row, key))).first() is not None:
        return False
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # a concurrent run stored it first
        return False
    return True


def configured_engine() -> Engine:
    """The engine of the database the settings name: what flows, steps and tools work on."""
    from booking.settings import get_settings

    return engine_for(get_settings().database_url)


def transaction() -> AbstractContextManager[Session]:
    """One transaction on the configured database (`session_scope(configured_engine())`)."""
    return session_scope(configured_engine())
