"""Throwaway PostgreSQL databases on a local server, for the tests and the benches: one for
the bookings, or one a Prefect server can use (SQLite locks under concurrent writes; Prefect
needs the `pg_trgm` extension)."""

import uuid

import psycopg

DEFAULT_DSN = "host=127.0.0.1 port=5432 user=postgres"


def _params(dsn: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in dsn.split())


def url(dsn: str, dbname: str, driver: str = "psycopg") -> str:
    """The SQLAlchemy URL of `dbname` on the server of a libpq `dsn`."""
    params = _params(dsn)
    return (
        f"postgresql+{driver}://{params.get('user', 'postgres')}@"
        f"{params.get('host', '127.0.0.1')}:{params.get('port', '5432')}/{dbname}"
    )


def admin(dsn: str = DEFAULT_DSN, connect_timeout: int = 3) -> psycopg.Connection:
    """An autocommit connection to the server's `postgres` database."""
    return psycopg.connect(dsn, dbname="postgres", autocommit=True, connect_timeout=connect_timeout)


def create_database(
    prefix: str, *, dsn: str = DEFAULT_DSN, template: str | None = None, prefect: bool = False
) -> str:
    """A new database named `<prefix>_<random>`, copied from `template` if given; with
    `prefect`, ready for a Prefect server. Returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin(dsn) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    if prefect:
        with psycopg.connect(dsn, dbname=name, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    return name


def drop_database(name: str, *, dsn: str = DEFAULT_DSN) -> None:
    with admin(dsn) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def prefect_database_url(prefix: str = "prefect", *, dsn: str = DEFAULT_DSN) -> str:
    """A new database for a Prefect server, as its `PREFECT_SERVER_DATABASE_CONNECTION_URL`."""
    return url(dsn, create_database(prefix, dsn=dsn, prefect=True), driver="asyncpg")
