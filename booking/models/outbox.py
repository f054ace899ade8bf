"""The transactional outbox: one event per committed booking change, dispatched after commit."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field

from booking.models.types import UTCDateTime
from booking.models.work import Leased
from booking.timeutil import utcnow

POST_COMMIT_KIND = "booking.post_commit"
COMPLETED = "Completed"
NOT_TRACKED = "not tracked"  # finished before outcomes were recorded (migration 0003)
# An event finished with one of these needs nothing more; any other outcome is not done.
DONE = (COMPLETED, NOT_TRACKED)
# The same, as the predicate of a partial index (the queries render it with these literals).
NOT_DONE_SQL = "finished_at IS NOT NULL AND outcome NOT IN ('Completed', 'not tracked')"


class OutboxEvent(Leased, table=True):
    """The post-commit payload snapshot, and what became of its dispatch."""

    __table_args__ = (
        Index("ix_outboxevent_pending", "dispatched_at", "created_at"),
        Index("ix_outboxevent_unfinished", "finished_at", "dispatched_at"),
        Index("ix_outboxevent_booking_order", "booking_uid", "created_at"),
        # `booking outbox status` counts these among a year of Completed events.
        Index(
            "ix_outboxevent_not_done",
            "finished_at",
            postgresql_where=text(NOT_DONE_SQL),
            sqlite_where=text(NOT_DONE_SQL),
        ),
    )

    id: str = Field(primary_key=True)  # UUID4 text; part of every idempotency key
    booking_uid: str = Field(index=True)
    kind: str = POST_COMMIT_KIND
    schema_version: int
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    dispatch_mode: str
    flow_run_ids: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    dispatched_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    dispatch_attempts: int = 0
    last_error: str | None = None
    # Set by the relay once every run of the event reached a final state; `outcome` is the
    # worst of their states (Completed, Failed, Cancelled, Crashed after `restarts`).
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    outcome: str | None = None
    restarts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime()))
