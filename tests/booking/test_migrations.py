from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine
from sqlmodel import SQLModel

import booking.models  # noqa: F401  (registers the tables)


def test_the_migrations_build_exactly_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, SQLModel.metadata) == []


def test_upgrading_keeps_co_hosts_and_drops_the_organizers_own_host_rows(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import text

    from booking.db import alembic_config, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user (id, name, email, locale, time_zone, time_format)"
                " VALUES (1, 'O', 'o@x.example', 'en', 'UTC', 24),"
                " (2, 'C', 'c@x.example', 'en', 'UTC', 24)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO eventtype (id, slug, title, length_minutes, price,"
                " currency, requires_confirmation) VALUES (1, 's', 'T', 30, 0, 'usd', 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO booking (id, uid, event_type_id, user_id, title, start_time,"
                " end_time, status, metadata, responses, rescheduled) VALUES (1, 'u1', 1, 1, 't',"
                " '2031-01-01 09:00:00', '2031-01-01 09:30:00', 'ACCEPTED', '{}', '{}', 0)"
            )
        )
        conn.execute(text("INSERT INTO bookinghost (booking_id, user_id) VALUES (1, 1), (1, 2)"))

    command.upgrade(alembic_config(engine), "head")

    with engine.connect() as conn:
        rows = conn.execute(text("SELECT user_id FROM bookinghost")).all()
    assert [row.user_id for row in rows] == [2]
