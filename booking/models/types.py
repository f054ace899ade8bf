"""Column types that behave the same on SQLite and PostgreSQL."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Enum, Table
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, so neither do we."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def enum_type(enum_cls: type) -> Enum:
    """A portable enum column: a VARCHAR of the member values, no native database type."""
    return Enum(
        enum_cls,
        native_enum=False,
        length=40,
        values_callable=lambda members: [member.value for member in members],
    )


def table(model: type) -> Table:
    """The Core table of a model, for plain INSERTs where the ORM's bookkeeping costs more
    than the write (rows keyed by column name)."""
    return model.__table__  # type: ignore[attr-defined,no-any-return]
