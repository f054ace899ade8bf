"""Columns shared by rows that a worker claims: leased rows, and side effects due later."""

from datetime import datetime

from sqlmodel import Field, SQLModel

from booking.enums import WorkStatus
from booking.models.types import UTCDateTime, enum_type
from booking.timeutil import utcnow


class Leased(SQLModel):
    """A row one worker at a time may claim; the lease frees it if that worker dies."""

    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class DueWork(Leased):
    """One side effect of a booking to perform at `due_at`, and how it ended.

    Every row ends SENT, SKIPPED (with `skip_reason`), CANCELLED, or FAILED after its attempts.
    """

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(unique=True)  # a re-run of the planning step stores nothing twice
    booking_id: int = Field(foreign_key="booking.id", index=True)
    due_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    status: WorkStatus = Field(default=WorkStatus.PENDING, sa_type=enum_type(WorkStatus))
    attempts: int = 0
    last_error: str | None = None
    skip_reason: str | None = None
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=True)


class PlannedSweep(SQLModel, table=True):
    """A due-work sweep asked of Prefect for the minute `at`: one row, so one run, per
    minute, however many processes want a sweep then (booking/sweeps.py)."""

    at: datetime = Field(sa_type=UTCDateTime, primary_key=True)
